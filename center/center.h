/* ferry-center: the hosts of a cluster managed as one, as vCenter manages ESXi hosts. It keeps
 * the inventory current by asking every host (disconnected when one stops answering, never
 * dropped), and runs tasks on a thread of its own, one at a time: a host's addition, a
 * datastore pushed to every host, vMotion by name, a host's evacuation into maintenance, and
 * DRS-like balancing. Every task and what it did is in the inventory's tasks and events. */
#ifndef FERRY_CENTER_CENTER_H
#define FERRY_CENTER_CENTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "center/inventory.h"

struct center;

struct center_config {
	const char *inventory;       /* an SQLite file or a PostgreSQL connection string */
	const char *cert, *key, *ca; /* for hosts reached over TLS; NULL: UNIX sockets only */
	unsigned int concurrent;     /* vMotions at once in an evacuation (0: 2) */
	uint64_t refresh_ms;         /* how often every host is asked (0: 2,000) */
	uint64_t timeout_ms;         /* one call to a host (0: 10,000) */
	unsigned int
	        balance_spread; /* balance moves VMs until the spread is under this % (0: 20) */
	const char
	        *vmotion_options; /* added to each `migrate start` (pre-flight limits), or NULL */
	const char *vmotion_key;  /* a key file for the cluster's vMotion key; NULL: a random
	                              * one, made at start */
};

/* Opens the inventory, ends the tasks a stopped daemon left, and starts the task thread.
 * Returns 0, or a negative errno with the reason in why. */
int center_start(struct center **out, const struct center_config *config, char *why,
                 size_t why_size);

/* Stops the thread (a running task is cut short and ends in error) and closes everything. */
void center_stop(struct center *center);

/* The inventory, for reading: hold center_lock() around each use. */
struct store *center_store(struct center *center);
void center_lock(struct center *center);
void center_unlock(struct center *center);

/* Queues a task of a kind ("host-add", "datastore-add", "vmotion", "maintenance-on",
 * "maintenance-off", "balance") on a target, with its detail; its id in *id. */
int center_queue(struct center *center, const char *kind, const char *target, const char *detail,
                 uint64_t *id);

/* Asks every host now, not at the next refresh. */
void center_refresh_soon(struct center *center);

#endif
