/* The CLI socket: a control thread serves clients, the worker runs their commands. */
#ifndef FERRY_CLI_CTLSOCK_H
#define FERRY_CLI_CTLSOCK_H

struct cli_table;
struct ctlsock;

#define CTLSOCK_DEFAULT_PATH        "/run/ferry/ferryd.sock"
#define CTLSOCK_DEFAULT_MAX_CLIENTS 256

/* Creates the socket at path (and its directory), mode 0660. Fails with -EADDRINUSE if a live
 * daemon already listens there; a stale socket file is replaced. */
int ctlsock_open(struct ctlsock **ctl, const char *path, unsigned int max_clients,
                 struct cli_table *table);

/* The management listener: ferryd's CLI over TCP with TLS, as vCenter reaches its hosts. */
struct ctlsock_tls_config {
	const char *address; /* host:port, [v6]:port or :port */
	const char *cert;    /* the server's certificate (chain), PEM */
	const char *key;     /* its private key, PEM */
	const char *ca;      /* the CA whose certificates clients must present, PEM */
};

/* Also serves the CLI (the same commands and answers) on a TCP address with TLS 1.2 or later; a
 * client without a certificate from the CA is refused in the handshake, before any command.
 * Call before ctlsock_start. Returns 0 or a negative errno, and logs why. */
int ctlsock_listen_tls(struct ctlsock *ctl, const struct ctlsock_tls_config *config);

/* Starts the control thread that accepts and reads clients. Commands run only when the worker
 * calls ctlsock_worker_poll(). */
int ctlsock_start(struct ctlsock *ctl);

/* Calls wake(arg) from the control thread each time a command is queued for the worker: a
 * worker that sleeps on events (interrupt mode) runs it at once. */
void ctlsock_set_worker_wake(struct ctlsock *ctl, void (*wake)(void *arg), void *arg);

/* Loop poller for the worker: runs the commands waiting in the request ring and hands the
 * answers back. Returns how many ran. */
unsigned int ctlsock_worker_poll(void *ctl);

/* Stops the control thread, drops every client, removes the socket file and frees everything. */
void ctlsock_close(struct ctlsock *ctl);

#endif
