/* A client of ferryd's CLI over its UNIX socket or its TLS management port. */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* The longest answer taken: a MAC table of millions of entries fits. */
#define ANSWER_MAX (64u << 20)

struct client {
	int fd;
	SSL *tls; /* NULL on the UNIX socket */
	char buf[65536];
	size_t len;
	char error[128];
};

static struct client *client_new(void)
{
	struct client *client = calloc(1, sizeof(*client));

	if (client != NULL)
		client->fd = -1;
	return client;
}

int client_open_unix(struct client **out, const char *path, char *why, size_t why_size)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct client *client;
	int ret;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(why, why_size, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	if ((client = client_new()) == NULL) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	client->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (client->fd < 0 || connect(client->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = -errno;
		snprintf(why, why_size, "cannot reach ferryd at %s: %s", path, strerror(errno));
		client_close(client);
		return ret;
	}
	*out = client;
	return 0;
}

int client_split_address(const char *address, char *host, size_t host_size, const char **port)
{
	const char *colon = strrchr(address, ':');
	const char *start = address, *end = colon;

	if (address[0] == '[') {
		start++;
		end = strchr(address, ']');
		if (end == NULL || end + 1 != colon)
			return -EINVAL;
	}
	if (colon == NULL || colon[1] == '\0' || (size_t)(end - start) >= host_size)
		return -EINVAL;
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';
	*port = colon + 1;
	return 0;
}

static void tls_reason(char *why, size_t why_size, const char *what)
{
	unsigned long reason = ERR_get_error();

	snprintf(why, why_size, "%s: %s", what,
	         reason != 0 ? ERR_reason_error_string(reason) : "TLS failed");
	ERR_clear_error();
}

/* The TLS session over a connected socket, ferryd's certificate checked. */
static int tls_connect(struct client *client, const struct client_tls *tls, const char *host,
                       char *why, size_t why_size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, tls->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, tls->ca, NULL) != 1) {
		tls_reason(why, why_size, "certificate, key or CA");
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	client->tls = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the session holds it */
	if (client->tls == NULL) {
		tls_reason(why, why_size, "TLS");
		return -ENOMEM;
	}
	X509_VERIFY_PARAM *param = SSL_get0_param(client->tls);
	struct in6_addr ip;
	bool numeric = inet_pton(AF_INET, host, &ip) == 1 || inet_pton(AF_INET6, host, &ip) == 1;
	if (SSL_set_fd(client->tls, client->fd) != 1 ||
	    (numeric ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
	             : X509_VERIFY_PARAM_set1_host(param, host, 0)) != 1 ||
	    (!numeric && SSL_set_tlsext_host_name(client->tls, host) != 1) ||
	    SSL_connect(client->tls) != 1) {
		long verify = SSL_get_verify_result(client->tls);
		if (verify != X509_V_OK)
			snprintf(why, why_size, "ferryd at %s: %s", tls->address,
			         X509_verify_cert_error_string(verify));
		else
			tls_reason(why, why_size, "TLS handshake with ferryd");
		return -EACCES;
	}
	return 0;
}

int client_open_tls(struct client **out, const struct client_tls *tls, char *why, size_t why_size)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *found = NULL;
	struct client *client;
	const char *port;
	char host[256];
	int ret;

	if (tls->cert == NULL || tls->key == NULL || tls->ca == NULL) {
		snprintf(why, why_size, "the management port needs a certificate, a key and a CA");
		return -EINVAL;
	}
	if (client_split_address(tls->address, host, sizeof(host), &port) < 0) {
		snprintf(why, why_size, "%s: give host:port or [v6]:port", tls->address);
		return -EINVAL;
	}
	if ((ret = getaddrinfo(host, port, &hints, &found)) != 0) {
		snprintf(why, why_size, "%s: %s", tls->address, gai_strerror(ret));
		return -EINVAL;
	}
	if ((client = client_new()) == NULL) {
		freeaddrinfo(found);
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	client->fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* On Linux the send timeout bounds connect() too. */
	if (client->fd >= 0 && tls->timeout_ms != 0)
		client_set_timeout(client, tls->timeout_ms);
	if (client->fd < 0 || connect(client->fd, found->ai_addr, found->ai_addrlen) < 0) {
		ret = -errno;
		snprintf(why, why_size, "cannot reach ferryd at %s: %s", tls->address,
		         strerror(errno));
	} else {
		ret = tls_connect(client, tls, host, why, why_size);
	}
	freeaddrinfo(found);
	if (ret < 0) {
		client_close(client);
		return ret;
	}
	*out = client;
	return 0;
}

int client_set_timeout(struct client *client, unsigned int timeout_ms)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

	if (setsockopt(client->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(client->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

int client_peer_fingerprint(const struct client *client, char *out, size_t size)
{
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (client->tls == NULL)
		return -ENOENT;
	X509 *cert = SSL_get1_peer_certificate(client->tls);
	if (cert == NULL)
		return -ENOENT;
	int ok = X509_digest(cert, EVP_sha256(), digest, &len);
	X509_free(cert);
	if (ok != 1 || size < (size_t)len * 3)
		return -EINVAL;
	for (unsigned int i = 0; i < len; i++)
		snprintf(out + i * 3, size - i * 3, "%02X%s", digest[i], i + 1 < len ? ":" : "");
	return 0;
}

static int write_all(struct client *client, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = client->tls != NULL ? SSL_write(client->tls, data,
		                                            (int)(len > INT_MAX ? INT_MAX : len))
		                                : send(client->fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && client->tls == NULL && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads exactly len bytes, what is buffered first. */
static int read_exact(struct client *client, char *out, size_t len)
{
	while (len > 0) {
		if (client->len == 0) {
			ssize_t n = client->tls != NULL
			                    ? SSL_read(client->tls, client->buf,
			                               (int)sizeof(client->buf))
			                    : read(client->fd, client->buf, sizeof(client->buf));
			if (n < 0 && client->tls == NULL && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
			client->len = (size_t)n;
		}
		size_t take = client->len < len ? client->len : len;
		memcpy(out, client->buf, take);
		memmove(client->buf, client->buf + take, client->len - take);
		client->len -= take;
		out += take;
		len -= take;
	}
	return 0;
}

enum client_status client_call(struct client *client, const char *line, char **body)
{
	char header[64], status[8];
	size_t n = 0, len;

	*body = NULL;
	if (write_all(client, line, strlen(line)) < 0 || write_all(client, "\n", 1) < 0)
		goto lost;
	while (n + 1 < sizeof(header)) {
		if (read_exact(client, &header[n], 1) < 0)
			goto lost;
		if (header[n++] == '\n')
			break;
	}
	header[n] = '\0';
	if (sscanf(header, "%7s %zu", status, &len) != 2 || len > ANSWER_MAX ||
	    (strcmp(status, "OK") != 0 && strcmp(status, "ERR") != 0)) {
		snprintf(client->error, sizeof(client->error),
		         "malformed answer from ferryd: %.40s", header);
		return CLIENT_LOST;
	}
	*body = malloc(len + 1);
	if (*body == NULL || read_exact(client, *body, len) < 0)
		goto lost;
	(*body)[len] = '\0';
	return strcmp(status, "OK") == 0 ? CLIENT_OK : CLIENT_REFUSED;
lost:
	free(*body);
	*body = NULL;
	snprintf(client->error, sizeof(client->error), "connection to ferryd lost");
	return CLIENT_LOST;
}

const char *client_error(const struct client *client)
{
	return client->error;
}

void client_close(struct client *client)
{
	if (client == NULL)
		return;
	if (client->tls != NULL) {
		SSL_shutdown(client->tls);
		SSL_free(client->tls);
	}
	if (client->fd >= 0)
		close(client->fd);
	free(client);
}
