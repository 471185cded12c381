/* The source's pre-flight check, private to migrate/: items recorded as the handshake and the
 * link measurement go, then judged. */
#ifndef FERRY_MIGRATE_PREFLIGHT_H
#define FERRY_MIGRATE_PREFLIGHT_H

#include <stdbool.h>
#include <stdint.h>

#include "migrate/migration.h"
#include "migrate/proto.h"

/* Records an item: passed or not, what it had to be, and what was measured. */
void preflight_record(struct migration *m, enum migration_check_item item, bool ok,
                      const char *limit, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* True if every item that ran passed. */
bool preflight_passed(const struct migration *m);

/* Fails the session on the first item that failed; true if one did. */
bool preflight_failed(struct migration *m);

/* The destination admitted the VM: admission and MTU are judged, then the link is measured
 * (or, forced, the pre-copy starts at once). */
void preflight_on_accept(struct migration *m, const struct proto_message *msg, uint64_t now);

/* Measures the link with filler through the channel, as the pages will go, then judges the
 * round trip and the bandwidth, and hands over to the pre-copy (or ends a check). */
void preflight_poll(struct migration *m, uint64_t now);

#endif
