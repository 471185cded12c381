/* The destination of a live migration, private to migrate/: the engine hands it the datagrams
 * that reach a listener and polls it. */
#ifndef FERRY_MIGRATE_DESTINATION_H
#define FERRY_MIGRATE_DESTINATION_H

#include <stdint.h>

#include "migrate/migration.h"
#include "migrate/proto.h"

/* A HELLO for no known session: answered with a CHALLENGE (or a refusal), keeping nothing. */
void destination_on_hello(struct migration_engine *engine, struct migration_listener *listener,
                          const struct proto_message *msg, uint32_t src_ip, uint16_t src_port,
                          uint64_t now);

/* An AUTH for no known session: its cookie and proof checked, a session made and admitted. */
void destination_on_first_auth(struct migration_engine *engine, struct migration_listener *listener,
                               const struct proto_message *msg, uint32_t src_ip, uint16_t src_port,
                               uint64_t now);

/* A QUERY for no session this host holds: answered with a NO_SESSION the pre-shared key vouches
 * for, rate-limited per address as HELLOs are. */
void destination_on_orphan_query(struct migration_engine *engine,
                                 struct migration_listener *listener,
                                 const struct proto_message *msg, uint32_t src_ip,
                                 uint16_t src_port, uint64_t now);

/* A parsed datagram for a session of this destination, from whoever sent it. */
void destination_rx(struct migration *m, struct migration_listener *listener,
                    const struct proto_message *msg, uint32_t src_ip, uint16_t src_port,
                    const uint8_t *payload, uint16_t len, uint64_t now);

/* Acknowledgements, the linger of a finished session, and the source's silence. */
void destination_poll(struct migration *m, uint64_t now);

/* The operator's word that a post-copy source is gone for good: the VM, which can never have its
 * missing pages, stops and goes. */
void destination_lost(struct migration *m);

/* Ends a destination session; a copy that never ran is dropped. Its keys stay a while, so it
 * can still answer the source's QUERY with its outcome. */
void destination_end(struct migration *m, enum migration_status status);

#endif
