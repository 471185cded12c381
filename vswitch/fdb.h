/* The MAC table of one vswitch: (VLAN, MAC) -> port, with learning, aging, static entries,
 * MAC-move detection and fair eviction when full. */
#ifndef FERRY_VSWITCH_FDB_H
#define FERRY_VSWITCH_FDB_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_ether.h>

#define FDB_MAX_PORTS       64
#define FDB_PORT_NONE       UINT16_MAX
#define FDB_DEFAULT_LIMIT   8192
#define FDB_MAX_LIMIT       4000000
#define FDB_DEFAULT_AGING_S 300
#define FDB_MIN_AGING_S     10
#define FDB_MAX_AGING_S     3600
#define FDB_LOOKUP_BULK_MAX 64

/* The hash key: VLAN then MAC, 8 bytes with no padding (both members 2-byte aligned); the
 * VLAN in host byte order. */
struct fdb_key {
	uint16_t vlan;
	struct rte_ether_addr mac;
};

_Static_assert(sizeof(struct fdb_key) == 8, "fdb_key is 8 bytes");

struct fdb_entry {
	struct fdb_key key;
	uint16_t port;
	bool valid;
	bool is_static;
	uint32_t moves;    /* times this MAC was seen moving to another port */
	uint64_t seen_ns;  /* last frame from this MAC, on the fdb's clock */
	uint32_t lru_prev; /* per-port LRU list, most recent first; FDB_NIL ends it */
	uint32_t lru_next;
};

/* A slot of the open-addressing hash: the packed key (0 = empty: VLAN 0 with the all-zero MAC is
 * never learned) and the position of its entry. Four slots to a cache line. */
struct fdb_slot {
	uint64_t key;
	uint32_t entry;
	uint32_t unused;
};

_Static_assert(sizeof(struct fdb_slot) == 16, "fdb_slot is 16 bytes");

struct fdb_stats {
	uint64_t learned;
	uint64_t expired;
	uint64_t evicted;
	uint64_t moved;
	uint64_t static_refused; /* frames from a static MAC on another port */
	uint64_t full_drops;     /* learnings refused because nothing could be evicted */
};

struct fdb {
	char name[32];
	struct fdb_slot *slots; /* linear probing, at most half full */
	uint32_t slot_mask;
	struct fdb_entry *entries; /* limit entries; a position is an index here */
	uint32_t *free_entries;    /* stack of unused positions */
	uint32_t nb_free;
	uint32_t limit;
	uint32_t count;
	uint32_t nb_static;
	uint64_t aging_ns; /* 0 = entries never age */
	uint32_t lru_head[FDB_MAX_PORTS];
	uint32_t lru_tail[FDB_MAX_PORTS];
	uint32_t port_count[FDB_MAX_PORTS]; /* dynamic entries per port */
	struct fdb_stats stats;
};

/* What fdb_learn did. */
enum fdb_learn_result {
	FDB_LEARN_NEW,
	FDB_LEARN_REFRESHED,
	FDB_LEARN_MOVED,
	FDB_LEARN_STATIC, /* a static entry for this MAC is on another port: left as it is */
	FDB_LEARN_FULL,   /* no room and nothing to evict */
};

/* Creates an empty table for up to limit entries, aging after aging_s seconds (0 = never).
 * name is for the log and the memory it takes. Returns 0 or a negative errno. */
int fdb_init(struct fdb *fdb, const char *name, uint32_t limit, uint32_t aging_s);

/* Frees the table. */
void fdb_fini(struct fdb *fdb);

/* Records that mac on vlan was seen on port at now_ns: adds it (evicting fairly when full),
 * refreshes it, or moves it. Static entries never move. */
enum fdb_learn_result fdb_learn(struct fdb *fdb, uint16_t vlan, const struct rte_ether_addr *mac,
                                uint16_t port, uint64_t now_ns);

/* As fdb_learn, for a key already looked up: position is what fdb_lookup_bulk found for it
 * (negative if absent). Saves the second hash lookup on the hot path. */
enum fdb_learn_result fdb_learn_at(struct fdb *fdb, int32_t position, const struct fdb_key *key,
                                   uint16_t port, uint64_t now_ns);

/* Looks up n (at most FDB_LOOKUP_BULK_MAX) keys at once, hashing all of them and prefetching
 * their slots before probing any; positions[i] is the entry's position, negative if absent. */
void fdb_lookup_bulk(const struct fdb *fdb, const struct fdb_key **keys, unsigned int n,
                     int32_t *positions);

/* Key equality as one 8-byte compare (a memcmp call costs more than the rest of a lookup). */
static inline bool fdb_key_equal(const struct fdb_key *a, const struct fdb_key *b)
{
	uint64_t x, y;

	memcpy(&x, a, sizeof(x));
	memcpy(&y, b, sizeof(y));
	return x == y;
}

/* The port of the entry at a position fdb_lookup_bulk returned. */
static inline uint16_t fdb_port_at(const struct fdb *fdb, int32_t position)
{
	return position >= 0 ? fdb->entries[position].port : FDB_PORT_NONE;
}

/* Looks one MAC up; FDB_PORT_NONE if absent. */
uint16_t fdb_lookup(const struct fdb *fdb, uint16_t vlan, const struct rte_ether_addr *mac);

/* Adds or replaces a static entry (never ages, never moves, never evicted). */
int fdb_add_static(struct fdb *fdb, uint16_t vlan, const struct rte_ether_addr *mac, uint16_t port);

/* Removes one entry, static or not. -ENOENT if absent. */
int fdb_del(struct fdb *fdb, uint16_t vlan, const struct rte_ether_addr *mac);

/* Removes every dynamic entry; with statics also the static ones. Returns how many went. */
unsigned int fdb_flush(struct fdb *fdb, bool statics);

/* Removes every entry (static ones too) on a port; returns how many. */
unsigned int fdb_flush_port(struct fdb *fdb, uint16_t port);

/* Removes every dynamic entry on a VLAN; returns how many. */
unsigned int fdb_flush_vlan(struct fdb *fdb, uint16_t vlan);

/* Expires dynamic entries not seen for the aging time; returns how many. Cost: the ports plus
 * the expired entries, thanks to the per-port LRU lists. */
unsigned int fdb_age(struct fdb *fdb, uint64_t now_ns);

/* Sets the aging time in seconds (0 = off). */
void fdb_set_aging(struct fdb *fdb, uint32_t aging_s);

/* Changes the capacity, keeping entries (the least recently used go first if it shrinks).
 * Returns 0 or a negative errno (the table is unchanged then). */
int fdb_set_limit(struct fdb *fdb, uint32_t limit);

/* Calls fn for every entry; stops early if fn returns non-zero. */
void fdb_foreach(const struct fdb *fdb, int (*fn)(const struct fdb_entry *entry, void *arg),
                 void *arg);

#endif
