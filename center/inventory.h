/* ferry-center's inventory, as vCenter keeps one: hosts, datastores, VMs and where they run,
 * tasks and events, in a store (SQLite or PostgreSQL) that outlives the daemon. */
#ifndef FERRY_CENTER_INVENTORY_H
#define FERRY_CENTER_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "center/store.h"

#define INVENTORY_NAME_MAX    64
#define INVENTORY_ADDRESS_MAX 256
#define INVENTORY_TEXT_MAX    256

/* A host: how to reach it and what it was last seen with. */
struct inventory_host {
	char name[INVENTORY_NAME_MAX];
	char address[INVENTORY_ADDRESS_MAX]; /* a UNIX socket path, or host:port with TLS */
	char fingerprint[100];               /* SHA-256 of its certificate (TLS), as it was added */
	char state[16];                      /* "connected" or "disconnected" */
	bool maintenance;
	char vmotion_ip[16]; /* its vMotion vmk's address */
	uint64_t memory_mb;  /* what its VMs commit */
	uint64_t free_mb;    /* what it can still give a VM */
	uint64_t last_seen_ms;
	char reason[INVENTORY_TEXT_MAX];     /* why it is disconnected */
	char portgroups[INVENTORY_TEXT_MAX]; /* its port groups, one name a line */
};

struct inventory_vm {
	char name[INVENTORY_NAME_MAX];
	char host[INVENTORY_NAME_MAX];
	char state[16];
	char portgroup[INVENTORY_NAME_MAX];
	char datastore[INVENTORY_NAME_MAX]; /* "" without a disk */
	uint64_t memory_mb;
	uint64_t dirty_rate; /* pages written per second, as measured */
	uint64_t updated_ms;
};

struct inventory_datastore {
	char name[INVENTORY_NAME_MAX];
	char path[INVENTORY_ADDRESS_MAX];
	uint64_t lease_s;
};

struct inventory_task {
	uint64_t id;
	char kind[32];
	char target[INVENTORY_NAME_MAX];
	char detail[INVENTORY_TEXT_MAX];
	char state[16]; /* "queued", "running", "success", "error" */
	uint64_t started_ms, ended_ms;
	char result[INVENTORY_TEXT_MAX];
};

struct inventory_event {
	uint64_t id;
	uint64_t at_ms;
	char severity[16]; /* "info", "warning", "error" */
	char object[INVENTORY_NAME_MAX];
	char message[INVENTORY_TEXT_MAX];
};

/* Opens the store at where and brings its schema up to date. Returns 0, or a negative errno
 * with the reason in why. */
int inventory_open(struct store **out, const char *where, char *why, size_t why_size);

/* The wall clock in milliseconds, as the inventory records times. */
uint64_t inventory_now_ms(void);

/* Hosts: added or updated whole; one by name; all (up to max, by name); removed with its VMs.
 * Each returns 0 (get: -ENOENT when absent), the count, or -EIO. */
int inventory_host_put(struct store *store, const struct inventory_host *host);
int inventory_host_get(struct store *store, const char *name, struct inventory_host *host);
int inventory_hosts(struct store *store, struct inventory_host *hosts, int max);
int inventory_host_remove(struct store *store, const char *name);

/* A host's VMs as it reported them: the ones listed replace what the inventory had there. */
int inventory_vms_replace(struct store *store, const char *host, const struct inventory_vm *vms,
                          int nb_vms);

/* One VM by name (-ENOENT); all of them, or a host's (host not NULL), by name. */
int inventory_vm_get(struct store *store, const char *name, struct inventory_vm *vm);
int inventory_vms(struct store *store, const char *host, struct inventory_vm *vms, int max);

int inventory_datastore_put(struct store *store, const struct inventory_datastore *ds);
int inventory_datastores(struct store *store, struct inventory_datastore *ds, int max);

/* A task begins (its id in *id), changes state, ends with its result. */
int inventory_task_begin(struct store *store, const char *kind, const char *target,
                         const char *detail, uint64_t *id);
int inventory_task_state(struct store *store, uint64_t id, const char *state, const char *result);
int inventory_task_get(struct store *store, uint64_t id, struct inventory_task *task);
/* The latest tasks, newest first. */
int inventory_tasks(struct store *store, struct inventory_task *tasks, int max);
/* Tasks a daemon that stopped left running or queued: they end in error with the reason. */
int inventory_tasks_abandon(struct store *store, const char *reason);

/* Records an event. */
int inventory_event(struct store *store, const char *severity, const char *object, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
/* The latest events, newest first. */
int inventory_events(struct store *store, struct inventory_event *events, int max);

#endif
