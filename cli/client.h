/* A client of ferryd's CLI: its UNIX socket, or its TLS management port with a certificate; one
 * command at a time, each answer "OK <length>" or "ERR <length>" and its body. */
#ifndef FERRY_CLI_CLIENT_H
#define FERRY_CLI_CLIENT_H

#include <stddef.h>

struct client;

/* What the management port needs: its address and this client's certificate, key, and the CA
 * that signed ferryd's certificate (PEM files). */
struct client_tls {
	const char *address; /* host:port or [v6]:port */
	const char *cert, *key, *ca;
	unsigned int timeout_ms; /* for the connection and each read or write; 0: none */
};

/* How a call ended. */
enum client_status {
	CLIENT_OK = 0,      /* "OK": the command ran */
	CLIENT_REFUSED = 1, /* "ERR": ferryd said why, in the body */
	CLIENT_LOST = 2,    /* no answer: the connection failed (client_error says how) */
};

/* Splits host:port, [v6]:port or :port (an empty host) into host and a pointer to the port in
 * address. -EINVAL when it is none of those or the host does not fit. */
int client_split_address(const char *address, char *host, size_t host_size, const char **port);

/* Connects to the CLI's UNIX socket. Returns 0, or a negative errno with the reason in why. */
int client_open_unix(struct client **out, const char *path, char *why, size_t why_size);

/* Connects to the management port over TLS 1.2+, checking ferryd's certificate against the CA
 * and the name or address dialled. Returns 0, or a negative errno with the reason in why. */
int client_open_tls(struct client **out, const struct client_tls *tls, char *why, size_t why_size);

/* Sends one command line and reads its answer into *body (malloc'ed, NUL-terminated; NULL when
 * lost). */
enum client_status client_call(struct client *client, const char *line, char **body);

/* Bounds each read and write of a call (0: none): a host that stops answering loses the call
 * instead of holding its caller. */
int client_set_timeout(struct client *client, unsigned int timeout_ms);

/* The SHA-256 of the certificate the TLS peer presented, as "AA:BB:...", vCenter's thumbprint;
 * -ENOENT on a UNIX socket. */
int client_peer_fingerprint(const struct client *client, char *out, size_t size);

/* Why the last call was lost. */
const char *client_error(const struct client *client);

/* Closes the connection and frees the client. NULL is fine. */
void client_close(struct client *client);

#endif
