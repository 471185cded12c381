/* The source of a live migration, private to migrate/: the engine starts and polls it, the
 * pre-flight check hands it over to the pre-copy. */
#ifndef FERRY_MIGRATE_SOURCE_H
#define FERRY_MIGRATE_SOURCE_H

#include <stdint.h>

#include "migrate/migration.h"

struct iface;

/* Fills a new source session for a VM from a vmk, binds its UDP port and prepares the HELLO,
 * which leaves on the first poll. Returns 0 or a negative errno (the session is then ended). */
int source_begin(struct migration *m, struct vm *vm, struct iface *vmk,
                 const struct migration_params *params);

/* Handshake, rounds, switchover and timeouts: one poll's worth. */
void source_poll(struct migration *m, uint64_t now);

/* Round 0 copies everything: the dirty log so far is moot, and starts afresh now. */
void source_precopy_begin(struct migration *m, uint64_t now);

/* Ends a source session. Before the vCPU state went out the VM runs here again; after, only the
 * destination's authenticated word or the operator's ends it: otherwise the outcome becomes
 * unknown, the VM stays paused and the destination is asked. */
void source_end(struct migration *m, enum migration_status status);

/* Settles an unknown outcome by the operator's word. */
void source_resolve(struct migration *m, enum migration_resolution resolution);

/* Post-copy recovery: asks the destination at once (its answer, or a NO_SESSION, follows). */
void source_recover(struct migration *m);

/* Ends it as failed, with the reason. */
void source_fail(struct migration *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The largest page slice one message carries at an MTU (at least MIGRATION_MIN_MTU). */
uint16_t source_page_bytes_per_message(uint16_t mtu);

#endif
