/* The CLI socket: a control thread serves clients, the worker runs their commands. */
#include "ctlsock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_ring.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cli.h"
#include "client.h"
#include "reply.h"

static RTE_LOG_REGISTER(ctlsock_logtype, ferry.ctlsock, INFO);

#define CTL_LOG(level, fmt, ...)                                                                   \
	rte_log(RTE_LOG_##level, ctlsock_logtype, "ctlsock: " fmt "\n", ##__VA_ARGS__)

#define CTL_RING_SIZE    1024 /* requests in flight, one per client at most */
#define CTL_OUT_HIGH     (1u << 20)
#define CTL_WORKER_BURST 8
#define CTL_LISTENERS    3 /* poll slots before the clients': wake-up, UNIX, TLS */
/* Unauthenticated TCP clients must not crowd out the local ones: a TLS client has this long to
 * finish its handshake, and TLS clients take at most half the slots. */
#define CTL_TLS_HANDSHAKE_S 10

/* One command on its way to the worker and back. */
struct ctl_request {
	unsigned int conn_index;
	uint64_t conn_generation;
	struct cli_session session; /* the worker may change it; copied back on return */
	struct reply *reply;
	char line[];
};

struct ctl_conn {
	int fd; /* -1 when the slot is free */
	uint64_t generation;
	struct cli_session session;
	bool busy;        /* a request is with the worker */
	bool discarding;  /* skipping the rest of an over-long line */
	bool peer_closed; /* the client shut down its sending side */
	size_t in_len;
	char *in; /* CLI_LINE_MAX + 1 bytes: one line and its newline */
	char *out;
	size_t out_len, out_sent, out_size;
	/* A management client over TCP: its TLS session (NULL on the UNIX socket), and whether
	 * TLS waits to write (a handshake's message) before it can go on. */
	SSL *tls;
	bool tls_wants_write;
	struct timespec
	        accepted; /* a TLS client must finish its handshake in CTL_TLS_HANDSHAKE_S */
	char peer[64];    /* its address, for the log */
};

struct ctlsock {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int tls_fd; /* the management listener (ctlsock_listen_tls), -1 without */
	SSL_CTX *tls_ctx;
	int wake_fd; /* eventfd: the worker has answers, or it is time to stop */
	struct cli_table *table;
	struct rte_ring *to_worker;
	struct rte_ring *to_control;
	void (*worker_wake)(void *arg); /* called after a request is queued; NULL: none */
	void *worker_wake_arg;
	pthread_t thread;
	bool thread_started;
	volatile bool stopping;
	unsigned int max_clients;
	struct ctl_conn *conns;
	struct pollfd *pollfds;
	unsigned int *poll_conn; /* pollfds[i + 2] belongs to conns[poll_conn[i]] */
};

static struct rte_ring *ctl_ring_create(const char *name)
{
	/* Rings in our own memory need no memzone, so two sockets in one process can't clash. */
	ssize_t size = rte_ring_get_memsize(CTL_RING_SIZE);
	struct rte_ring *ring = aligned_alloc(RTE_CACHE_LINE_SIZE,
	                                      RTE_ALIGN_CEIL((size_t)size, RTE_CACHE_LINE_SIZE));

	if (ring == NULL)
		return NULL;
	if (rte_ring_init(ring, name, CTL_RING_SIZE, RING_F_SP_ENQ | RING_F_SC_DEQ) < 0) {
		free(ring);
		return NULL;
	}
	return ring;
}

static int ctl_make_dir(const char *path)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	/* mkdir -p, one component at a time. */
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0750) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	/* A directory of ours (not a shared one such as /tmp, which is sticky) gives others no
	 * way in, whatever mode an earlier run or an administrator left it with. */
	struct stat st;
	if (stat(dir, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & S_ISVTX) &&
	    (st.st_mode & 0007) != 0 && chmod(dir, st.st_mode & 07770) < 0)
		return -errno;
	return 0;
}

/* Binds the socket to its path; a stale file left by a crashed daemon is replaced, a live
 * daemon's is not. Returns 0 or a negative errno. */
static int ctl_bind(int fd, const char *path, const struct sockaddr_un *addr)
{
	if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0)
		return 0;
	int ret = -errno;
	if (ret == -EADDRINUSE) {
		/* A live daemon answers a connect; a stale file left by a crash does not. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool alive = probe >= 0 &&
		             connect(probe, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
		if (probe >= 0)
			close(probe);
		if (alive) {
			CTL_LOG(ERR, "%s: another ferryd is listening there", path);
			return -EADDRINUSE;
		}
		unlink(path);
		ret = bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 ? -errno : 0;
	}
	if (ret < 0)
		CTL_LOG(ERR, "cannot bind %s: %s", path, strerror(-ret));
	return ret;
}

static int ctl_listen(struct ctlsock *ctl)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int ret;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", ctl->path);
	ret = ctl_make_dir(ctl->path);
	if (ret < 0) {
		CTL_LOG(ERR, "cannot create the directory of %s: %s", ctl->path, strerror(-ret));
		return ret;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* The socket is born 0660: never, even for a moment, open to others before the chmod. */
	mode_t old_umask = umask(0117);
	ret = ctl_bind(fd, ctl->path, &addr);
	umask(old_umask);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	if (chmod(ctl->path, 0660) < 0 || listen(fd, 64) < 0) {
		ret = -errno;
		CTL_LOG(ERR, "cannot listen on %s: %s", ctl->path, strerror(errno));
		close(fd);
		unlink(ctl->path);
		return ret;
	}
	ctl->listen_fd = fd;
	return 0;
}

int ctlsock_open(struct ctlsock **out, const char *path, unsigned int max_clients,
                 struct cli_table *table)
{
	struct ctlsock *ctl = calloc(1, sizeof(*ctl));
	int ret = -ENOMEM;

	if (ctl == NULL)
		return -ENOMEM;
	ctl->listen_fd = -1;
	ctl->tls_fd = -1;
	ctl->wake_fd = -1;
	ctl->table = table;
	ctl->max_clients = max_clients != 0 ? max_clients : CTLSOCK_DEFAULT_MAX_CLIENTS;
	if (strlen(path) >= sizeof(ctl->path)) {
		CTL_LOG(ERR, "socket path too long (at most %zu bytes): %s", sizeof(ctl->path) - 1,
		        path);
		ret = -ENAMETOOLONG;
		goto fail;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	ctl->conns = calloc(ctl->max_clients, sizeof(*ctl->conns));
	ctl->pollfds = calloc(ctl->max_clients + CTL_LISTENERS, sizeof(*ctl->pollfds));
	ctl->poll_conn = calloc(ctl->max_clients, sizeof(*ctl->poll_conn));
	ctl->to_worker = ctl_ring_create("ctl_to_worker");
	ctl->to_control = ctl_ring_create("ctl_to_control");
	if (ctl->conns == NULL || ctl->pollfds == NULL || ctl->poll_conn == NULL ||
	    ctl->to_worker == NULL || ctl->to_control == NULL)
		goto fail;
	for (unsigned int i = 0; i < ctl->max_clients; i++)
		ctl->conns[i].fd = -1;
	ctl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctl->wake_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = ctl_listen(ctl);
	if (ret < 0)
		goto fail;
	*out = ctl;
	return 0;
fail:
	ctlsock_close(ctl);
	return ret;
}

/* The server's TLS context: its certificate and key, TLS 1.2 at least, and clients that must
 * present a certificate from the CA (anything else fails the handshake, before any command). */
static SSL_CTX *ctl_tls_context(const struct ctlsock_tls_config *config)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, config->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, config->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, config->ca, NULL) != 1) {
		unsigned long reason = ERR_get_error();
		CTL_LOG(ERR, "TLS: %s (certificate %s, key %s, CA %s)",
		        reason != 0 ? ERR_reason_error_string(reason) : "cannot set up",
		        config->cert, config->key, config->ca);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

int ctlsock_listen_tls(struct ctlsock *ctl, const struct ctlsock_tls_config *config)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *found = NULL;
	char host[256];
	const char *port;
	int ret;

	if (client_split_address(config->address, host, sizeof(host), &port) < 0) {
		CTL_LOG(ERR, "management address '%s': give host:port, [v6]:port or :port",
		        config->address);
		return -EINVAL;
	}
	ret = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &found);
	if (ret != 0) {
		CTL_LOG(ERR, "management address '%s': %s", config->address, gai_strerror(ret));
		return -EINVAL;
	}
	ctl->tls_ctx = ctl_tls_context(config);
	if (ctl->tls_ctx == NULL) {
		freeaddrinfo(found);
		return -EINVAL;
	}
	int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int on = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    bind(fd, found->ai_addr, found->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		ret = -errno;
		CTL_LOG(ERR, "cannot listen on %s: %s", config->address, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(found);
		return ret;
	}
	freeaddrinfo(found);
	ctl->tls_fd = fd;
	CTL_LOG(INFO, "management (TLS, client certificates from %s) on %s", config->ca,
	        config->address);
	return 0;
}

static void ctl_wake(struct ctlsock *ctl)
{
	uint64_t one = 1;
	ssize_t n = write(ctl->wake_fd, &one, sizeof(one));
	(void)n; /* EAGAIN means the counter is already set: the thread wakes anyway */
}

void ctlsock_set_worker_wake(struct ctlsock *ctl, void (*wake)(void *arg), void *arg)
{
	ctl->worker_wake_arg = arg;
	ctl->worker_wake = wake;
}

unsigned int ctlsock_worker_poll(void *arg)
{
	struct ctlsock *ctl = arg;
	struct ctl_request *requests[CTL_WORKER_BURST];
	unsigned int n =
	        rte_ring_dequeue_burst(ctl->to_worker, (void **)requests, CTL_WORKER_BURST, NULL);

	for (unsigned int i = 0; i < n; i++) {
		struct ctl_request *req = requests[i];
		req->reply = reply_new();
		if (req->reply != NULL)
			cli_execute(ctl->table, &req->session, req->line, req->reply);
		/* The return ring is as large as the request ring: this cannot fail. */
		rte_ring_enqueue(ctl->to_control, req);
	}
	if (n > 0)
		ctl_wake(ctl);
	return n;
}

static void ctl_conn_close(struct ctl_conn *conn)
{
	if (conn->tls != NULL) {
		SSL_shutdown(conn->tls); /* one close_notify, never waiting for the peer's */
		SSL_free(conn->tls);
	}
	close(conn->fd);
	free(conn->in);
	free(conn->out);
	/* A request still with the worker finds a new generation and its answer is dropped. */
	*conn = (struct ctl_conn){.fd = -1, .generation = conn->generation + 1};
}

static int ctl_conn_queue_output(struct ctl_conn *conn, bool ok, const char *body, size_t len)
{
	char header[48];
	int header_len = snprintf(header, sizeof(header), "%s %zu\n", ok ? "OK" : "ERR", len);
	size_t need = conn->out_len + (size_t)header_len + len;

	if (need > conn->out_size) {
		size_t size = conn->out_size != 0 ? conn->out_size : 4096;
		while (size < need)
			size *= 2;
		char *out = realloc(conn->out, size);
		if (out == NULL)
			return -ENOMEM;
		conn->out = out;
		conn->out_size = size;
	}
	memcpy(conn->out + conn->out_len, header, (size_t)header_len);
	memcpy(conn->out + conn->out_len + header_len, body, len);
	conn->out_len = need;
	return 0;
}

/* Answers without bothering the worker (malformed input). */
static int ctl_conn_reply_error(struct ctl_conn *conn, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int ctl_conn_reply_error(struct ctl_conn *conn, const char *fmt, ...)
{
	struct reply *reply = reply_new();
	va_list ap;
	size_t len;

	if (reply == NULL)
		return -ENOMEM;
	va_start(ap, fmt);
	reply_verror(reply, -EINVAL, fmt, ap);
	va_end(ap);
	char *text = reply_render(reply, conn->session.format, &len);
	reply_free(reply);
	if (text == NULL)
		return -ENOMEM;
	int ret = ctl_conn_queue_output(conn, false, text, len);
	free(text);
	return ret;
}

static int ctl_conn_send_line(struct ctlsock *ctl, unsigned int index, const char *line, size_t len)
{
	struct ctl_conn *conn = &ctl->conns[index];
	const char *nul = memchr(line, '\0', len);

	if (nul != NULL)
		return ctl_conn_reply_error(conn, "invalid byte 0x00 at column %zu",
		                            (size_t)(nul - line) + 1);
	struct ctl_request *req = malloc(sizeof(*req) + len + 1);
	if (req == NULL)
		return ctl_conn_reply_error(conn, "out of memory");
	req->conn_index = index;
	req->conn_generation = conn->generation;
	req->session = conn->session;
	req->reply = NULL;
	memcpy(req->line, line, len);
	req->line[len] = '\0';
	if (rte_ring_enqueue(ctl->to_worker, req) < 0) {
		free(req);
		return ctl_conn_reply_error(conn, "daemon busy, try again");
	}
	if (ctl->worker_wake != NULL)
		ctl->worker_wake(ctl->worker_wake_arg);
	conn->busy = true;
	return 0;
}

/* Sends the next complete line of a connection to the worker, if it has one and is idle. */
static int ctl_conn_process_input(struct ctlsock *ctl, unsigned int index)
{
	struct ctl_conn *conn = &ctl->conns[index];

	while (!conn->busy && conn->in_len > 0 && conn->out_len - conn->out_sent < CTL_OUT_HIGH) {
		char *newline = memchr(conn->in, '\n', conn->in_len);
		int ret = 0;

		if (newline == NULL) {
			if (conn->in_len <= CLI_LINE_MAX && !conn->peer_closed)
				return 0; /* wait for the rest of the line */
			if (conn->in_len > CLI_LINE_MAX) {
				if (!conn->discarding)
					ret = ctl_conn_reply_error(
					        conn, "line too long (more than %u bytes)",
					        CLI_LINE_MAX);
				conn->discarding = true;
				conn->in_len = 0;
				return ret;
			}
			/* The client closed its side after a last line without a newline. */
			newline = conn->in + conn->in_len;
		}
		size_t line_len = (size_t)(newline - conn->in);
		size_t consumed = RTE_MIN(line_len + 1, conn->in_len);
		if (conn->discarding)
			conn->discarding = false; /* the tail of the long line ends here */
		else
			ret = ctl_conn_send_line(ctl, index, conn->in, line_len);
		memmove(conn->in, conn->in + consumed, conn->in_len - consumed);
		conn->in_len -= consumed;
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* What a TLS call that did not complete means: -EAGAIN to wait (for reading, or for writing:
 * tls_wants_write), 0 for the peer's close_notify, -EIO for a failure, logged once with why (a
 * client refused in the handshake: no certificate, another CA, expired). */
static ssize_t ctl_tls_result(struct ctl_conn *conn, int ret)
{
	int error = SSL_get_error(conn->tls, ret);

	if (error == SSL_ERROR_WANT_READ)
		return -EAGAIN;
	if (error == SSL_ERROR_WANT_WRITE) {
		conn->tls_wants_write = true;
		return -EAGAIN;
	}
	if (error == SSL_ERROR_ZERO_RETURN)
		return 0;
	unsigned long reason = ERR_get_error();
	long verify = SSL_get_verify_result(conn->tls);
	if (!SSL_is_init_finished(conn->tls))
		CTL_LOG(NOTICE, "management client %s refused: %s%s%s", conn->peer,
		        reason != 0 ? ERR_reason_error_string(reason) : "handshake failed",
		        verify != X509_V_OK ? ": " : "",
		        verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "");
	ERR_clear_error();
	return -EIO;
}

/* Reads what the connection has: > 0 bytes, 0 at the end, -EAGAIN to wait, -EIO. */
static ssize_t ctl_conn_recv(struct ctl_conn *conn, char *buf, size_t len)
{
	if (conn->tls == NULL) {
		ssize_t n = read(conn->fd, buf, len);
		return n >= 0 ? n : errno == EAGAIN || errno == EINTR ? -EAGAIN : -EIO;
	}
	conn->tls_wants_write = false;
	int n = SSL_read(conn->tls, buf, (int)len);
	return n > 0 ? n : ctl_tls_result(conn, n);
}

/* Sends what it can: > 0 bytes, -EAGAIN to wait, -EIO. */
static ssize_t ctl_conn_send(struct ctl_conn *conn, const char *buf, size_t len)
{
	if (conn->tls == NULL) {
		ssize_t n = send(conn->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		return n >= 0 ? n : errno == EAGAIN || errno == EINTR ? -EAGAIN : -EIO;
	}
	conn->tls_wants_write = false;
	int n = SSL_write(conn->tls, buf, (int)(len > INT_MAX ? INT_MAX : len));
	ssize_t ret = n > 0 ? n : ctl_tls_result(conn, n);
	return ret == 0 ? -EIO : ret;
}

static void ctl_conn_read(struct ctlsock *ctl, unsigned int index)
{
	struct ctl_conn *conn = &ctl->conns[index];

	do {
		ssize_t n = ctl_conn_recv(conn, conn->in + conn->in_len,
		                          CLI_LINE_MAX + 1 - conn->in_len);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			ctl_conn_close(conn);
			return;
		}
		if (n == 0)
			conn->peer_closed = true;
		conn->in_len += (size_t)n;
		if (ctl_conn_process_input(ctl, index) < 0) {
			ctl_conn_close(conn);
			return;
		}
		/* TLS may hold decrypted bytes the socket no longer signals. */
	} while (conn->tls != NULL && !conn->peer_closed && SSL_pending(conn->tls) > 0 &&
	         !conn->busy && conn->in_len <= CLI_LINE_MAX);
}

static void ctl_conn_write(struct ctl_conn *conn)
{
	while (conn->out_sent < conn->out_len) {
		ssize_t n = ctl_conn_send(conn, conn->out + conn->out_sent,
		                          conn->out_len - conn->out_sent);
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			ctl_conn_close(conn);
			return;
		}
		conn->out_sent += (size_t)n;
	}
	conn->out_len = conn->out_sent = 0;
}

/* A management client's address, for the log. */
static void ctl_peer_name(int fd, char *out, size_t size)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getpeername(fd, (struct sockaddr *)&addr, &len) == 0 &&
	    getnameinfo((struct sockaddr *)&addr, len, host, sizeof(host), port, sizeof(port),
	                NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(out, size, "%.46s:%.6s", host, port);
	else
		snprintf(out, size, "?");
}

static void ctl_accept(struct ctlsock *ctl, bool tls)
{
	for (;;) {
		int fd = accept4(tls ? ctl->tls_fd : ctl->listen_fd, NULL, NULL,
		                 SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct ucred cred;
		socklen_t cred_len = sizeof(cred);
		if (!tls && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0)
			CTL_LOG(DEBUG, "client pid %d uid %u gid %u connected", (int)cred.pid,
			        (unsigned int)cred.uid, (unsigned int)cred.gid);
		struct ctl_conn *conn = NULL;
		for (unsigned int i = 0; i < ctl->max_clients && conn == NULL; i++)
			if (ctl->conns[i].fd < 0)
				conn = &ctl->conns[i];
		if (tls && conn != NULL) {
			unsigned int nb_tls = 0;
			for (unsigned int i = 0; i < ctl->max_clients; i++)
				nb_tls += ctl->conns[i].fd >= 0 && ctl->conns[i].tls != NULL;
			if (nb_tls >= ctl->max_clients / 2)
				conn = NULL;
		}
		char *in = conn != NULL ? malloc(CLI_LINE_MAX + 1) : NULL;
		SSL *session = NULL;
		if (in != NULL && tls && (session = SSL_new(ctl->tls_ctx)) == NULL) {
			free(in);
			in = NULL;
		}
		if (in == NULL && tls) {
			/* Nothing in clear on a TLS port: the client sees the connection close. */
			close(fd);
			continue;
		}
		if (in == NULL) {
			/* Say why before closing, in the same framing as every answer. */
			char body[64], answer[96];
			int len = snprintf(body, sizeof(body), "too many clients (at most %u)\n",
			                   ctl->max_clients);
			len = snprintf(answer, sizeof(answer), "ERR %d\n%s", len, body);
			ssize_t n = send(fd, answer, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)n;
			close(fd);
			continue;
		}
		uint64_t generation = conn->generation;
		*conn = (struct ctl_conn){.fd = fd, .generation = generation, .in = in};
		if (session != NULL) {
			SSL_set_fd(session, fd);
			SSL_set_accept_state(session);
			conn->tls = session;
			ctl_peer_name(fd, conn->peer, sizeof(conn->peer));
			clock_gettime(CLOCK_MONOTONIC, &conn->accepted);
		}
	}
}

/* Takes the worker's answers back to their connections. */
static void ctl_collect_answers(struct ctlsock *ctl)
{
	struct ctl_request *req;

	while (rte_ring_dequeue(ctl->to_control, (void **)&req) == 0) {
		struct ctl_conn *conn = &ctl->conns[req->conn_index];
		if (conn->fd >= 0 && conn->generation == req->conn_generation) {
			size_t len = 0;
			char *text = NULL;
			conn->session = req->session;
			if (req->reply != NULL)
				text = reply_render(req->reply, conn->session.format, &len);
			int ret = text != NULL ? ctl_conn_queue_output(
			                                 conn, !reply_failed(req->reply), text, len)
			                       : ctl_conn_reply_error(conn, "out of memory");
			free(text);
			conn->busy = false;
			if (ret < 0)
				ctl_conn_close(conn);
			else
				ctl_conn_process_input(ctl, req->conn_index);
		}
		reply_free(req->reply);
		free(req);
	}
}

static void *ctl_thread(void *arg)
{
	struct ctlsock *ctl = arg;

	while (!ctl->stopping) {
		unsigned int nfds = 0;
		ctl->pollfds[nfds++] = (struct pollfd){.fd = ctl->wake_fd, .events = POLLIN};
		ctl->pollfds[nfds++] = (struct pollfd){.fd = ctl->listen_fd, .events = POLLIN};
		ctl->pollfds[nfds++] = (struct pollfd){.fd = ctl->tls_fd, .events = POLLIN};
		bool handshaking = false;
		for (unsigned int i = 0; i < ctl->max_clients; i++) {
			struct ctl_conn *conn = &ctl->conns[i];
			short events = 0;
			if (conn->fd < 0)
				continue;
			handshaking |= conn->tls != NULL && !SSL_is_init_finished(conn->tls);
			/* Read only while there is room and nothing is pending, so a client
			 * that floods us is throttled by its own socket buffer. */
			if (!conn->busy && !conn->peer_closed && conn->in_len <= CLI_LINE_MAX &&
			    conn->out_len == 0)
				events |= POLLIN;
			if (conn->out_len > conn->out_sent || conn->tls_wants_write)
				events |= POLLOUT;
			ctl->poll_conn[nfds - CTL_LISTENERS] = i;
			ctl->pollfds[nfds++] = (struct pollfd){.fd = conn->fd, .events = events};
		}
		/* While a TLS handshake is pending, wake each second to time it out. */
		if (poll(ctl->pollfds, nfds, handshaking ? 1000 : -1) < 0 && errno != EINTR) {
			CTL_LOG(ERR, "poll: %s", strerror(errno));
			break;
		}
		if (ctl->pollfds[0].revents & POLLIN) {
			uint64_t count;
			ssize_t n = read(ctl->wake_fd, &count, sizeof(count));
			(void)n;
		}
		ctl_collect_answers(ctl);
		for (unsigned int p = CTL_LISTENERS; p < nfds; p++) {
			short revents = ctl->pollfds[p].revents;
			unsigned int index = ctl->poll_conn[p - CTL_LISTENERS];
			struct ctl_conn *conn = &ctl->conns[index];
			/* Answers collected above may have closed the slot since the poll. */
			if (revents == 0 || conn->fd != ctl->pollfds[p].fd)
				continue;
			/* A TLS handshake that waited to write goes on where it stopped. */
			if ((revents & POLLOUT) && conn->tls_wants_write && conn->out_len == 0)
				ctl_conn_read(ctl, index);
			else if (revents & POLLOUT)
				ctl_conn_write(conn);
			if (conn->fd >= 0 && (revents & POLLIN))
				ctl_conn_read(ctl, index);
			if (conn->fd >= 0 && (revents & (POLLERR | POLLNVAL)))
				ctl_conn_close(conn);
			/* After a hang-up the answer to a last request is still owed, if the
			 * peer only half-closed; a full close shows up as a failed send. */
			if (conn->fd >= 0 && (revents & POLLHUP) && !(revents & POLLIN))
				conn->peer_closed = true;
			if (conn->fd >= 0 && conn->peer_closed && !conn->busy &&
			    conn->in_len == 0 && conn->out_len == 0)
				ctl_conn_close(conn);
		}
		if (ctl->pollfds[1].revents & POLLIN)
			ctl_accept(ctl, false);
		if (ctl->pollfds[2].revents & POLLIN)
			ctl_accept(ctl, true);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		/* Answers that arrived may be sendable at once, without another poll round. */
		for (unsigned int i = 0; i < ctl->max_clients; i++) {
			struct ctl_conn *conn = &ctl->conns[i];
			if (conn->fd >= 0 && conn->tls != NULL &&
			    !SSL_is_init_finished(conn->tls) &&
			    now.tv_sec - conn->accepted.tv_sec >= CTL_TLS_HANDSHAKE_S) {
				CTL_LOG(NOTICE,
				        "management client %s refused: no handshake in %d s",
				        conn->peer, CTL_TLS_HANDSHAKE_S);
				ctl_conn_close(conn);
				continue;
			}
			if (conn->fd >= 0 && conn->out_len > conn->out_sent)
				ctl_conn_write(conn);
			/* Requests TLS decrypted ahead, now that the last one is answered. */
			if (conn->fd >= 0 && conn->tls != NULL && !conn->busy &&
			    conn->out_len == 0 && SSL_pending(conn->tls) > 0)
				ctl_conn_read(ctl, i);
			if (conn->fd >= 0 && conn->peer_closed && !conn->busy &&
			    conn->in_len == 0 && conn->out_len == 0)
				ctl_conn_close(conn);
		}
	}
	return NULL;
}

int ctlsock_start(struct ctlsock *ctl)
{
	int ret = rte_ctrl_thread_create(&ctl->thread, "ferry-ctl", NULL, ctl_thread, ctl);

	if (ret != 0) {
		CTL_LOG(ERR, "cannot start the control thread: %s", strerror(ret));
		return -ret;
	}
	ctl->thread_started = true;
	CTL_LOG(INFO, "listening on %s", ctl->path);
	return 0;
}

static void ctl_drain(struct rte_ring *ring)
{
	struct ctl_request *req;

	if (ring == NULL)
		return;
	while (rte_ring_dequeue(ring, (void **)&req) == 0) {
		reply_free(req->reply);
		free(req);
	}
	free(ring);
}

void ctlsock_close(struct ctlsock *ctl)
{
	if (ctl == NULL)
		return;
	if (ctl->thread_started) {
		ctl->stopping = true;
		ctl_wake(ctl);
		pthread_join(ctl->thread, NULL);
	}
	for (unsigned int i = 0; ctl->conns != NULL && i < ctl->max_clients; i++)
		if (ctl->conns[i].fd >= 0)
			ctl_conn_close(&ctl->conns[i]);
	if (ctl->listen_fd >= 0) {
		close(ctl->listen_fd);
		unlink(ctl->path);
	}
	if (ctl->tls_fd >= 0)
		close(ctl->tls_fd);
	SSL_CTX_free(ctl->tls_ctx);
	if (ctl->wake_fd >= 0)
		close(ctl->wake_fd);
	ctl_drain(ctl->to_worker);
	ctl_drain(ctl->to_control);
	free(ctl->conns);
	free(ctl->pollfds);
	free(ctl->poll_conn);
	free(ctl);
}
