/* The MAC table of one vswitch: (VLAN, MAC) -> port, with learning, aging, static entries,
 * MAC-move detection and fair eviction when full. */
#ifndef FERRY_VSWITCH_FDB_H
#define FERRY_VSWITCH_FDB_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_prefetch.h>

#define FDB_MAX_PORTS       64
#define FDB_PORT_NONE       UINT16_MAX
#define FDB_DEFAULT_LIMIT   8192
#define FDB_MAX_LIMIT       4000000
#define FDB_DEFAULT_AGING_S 300
#define FDB_MIN_AGING_S     10
#define FDB_MAX_AGING_S     3600
/* The refresh grain: 2^30 ns, about 1.07 s. A MAC takes its LRU place again once a grain (aging
 * is in seconds, ten at least); with several workers each refresh is a request to worker 0, so
 * a finer grain costs a request per MAC per grain: 134 ms made a million a second at 131,072
 * MACs, and the second worker added nothing. */
#define FDB_STAMP_SHIFT 30

/* The hash key: VLAN then MAC, 8 bytes with no padding (both members 2-byte aligned); the
 * VLAN in host byte order. */
struct fdb_key {
	uint16_t vlan;
	struct rte_ether_addr mac;
};

_Static_assert(sizeof(struct fdb_key) == 8, "fdb_key is 8 bytes");

struct fdb_entry {
	struct fdb_key key;
	uint16_t port; /* the writer's copy: lookups read the slot's */
	bool valid;
	bool is_static;
	uint32_t moves;    /* times this MAC was seen moving to another port */
	uint64_t seen_ns;  /* last frame from this MAC, on the fdb's clock */
	uint32_t lru_prev; /* per-port LRU list, most recent first; FDB_NIL ends it */
	uint32_t lru_next;
};

/* A slot of the open-addressing hash, four to a cache line: everything a forwarding lookup reads,
 * so the hot path never touches the entries. The packed key (fdb_key_pack; 0 = empty: VLAN 0 with
 * the all-zero MAC is never learned), the position of its entry, the MAC's port and the refresh
 * grain (fdb_stamp) it was last refreshed in.
 *
 * One writer changes the table while workers look up without locks (see fdb_find): the writer
 * publishes a slot's key last (release) and takes a key away first, so a reader that sees the same
 * key before and after reading the port knows the port is that key's. */
struct fdb_slot {
	uint64_t key;
	uint32_t entry;
	uint16_t port;
	uint16_t stamp;
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

/* Called before the table swaps its slot array for a bigger one and frees the old: whoever lets
 * lock-free readers in makes sure none is reading (the switch parks its workers). */
typedef void fdb_resize_fn(void *ctx);

struct fdb {
	char name[32];
	struct fdb_slot *slots; /* linear probing, a quarter full (at most half) */
	uint32_t slot_mask;
	uint32_t max_slots; /* the array grows with the entries, up to twice the limit */
	fdb_resize_fn *before_resize;
	void *before_resize_ctx;
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

/* Sets what runs before the slot array is replaced (NULL: nothing; readers on one thread). */
void fdb_set_resize_hook(struct fdb *fdb, fdb_resize_fn *fn, void *ctx);

/* Records that mac on vlan was seen on port at now_ns: adds it (evicting fairly when full),
 * refreshes it, or moves it. Static entries never move. */
enum fdb_learn_result fdb_learn(struct fdb *fdb, uint16_t vlan, const struct rte_ether_addr *mac,
                                uint16_t port, uint64_t now_ns);

/* As fdb_learn, for a packed key (fdb_key_pack): what the switch calls when fdb_find found the
 * source MAC absent, on another port, or due for a refresh. */
enum fdb_learn_result fdb_learn_key(struct fdb *fdb, uint64_t key, uint16_t port, uint64_t now_ns);

/* The hash key as one 64-bit word: the VLAN in the low 16 bits, the MAC's bytes above it (the
 * in-memory image of struct fdb_key on a little-endian CPU). */
static inline uint64_t fdb_key_pack(const struct fdb_key *key)
{
	uint64_t packed;

	memcpy(&packed, key, sizeof(packed));
	return packed;
}

/* The refresh grain now_ns falls in: a learned MAC seen again in the grain of its last refresh
 * costs a compare, not a write. */
static inline uint16_t fdb_stamp(uint64_t now_ns)
{
	return (uint16_t)(now_ns >> FDB_STAMP_SHIFT);
}

/* The hash of a packed key: one crc32 instruction. */
static inline uint32_t fdb_hash(uint64_t key)
{
	return rte_hash_crc_8byte(key, 0x9e3779b9);
}

/* The slot where a key's probe starts; starts its cache line on its way. Hash a burst's keys
 * first and fdb_find them after, so the loads overlap. */
static inline uint32_t fdb_home(const struct fdb *fdb, uint64_t key)
{
	uint32_t home = fdb_hash(key) & fdb->slot_mask;

	rte_prefetch0(&fdb->slots[home]);
	return home;
}

/* Finds a key from its home slot: true with its port and refresh stamp, false if absent. Safe
 * against one concurrent writer: a key moving while it is read reads as absent (the frame
 * floods), never as another key's port. */
static inline bool fdb_find(const struct fdb *fdb, uint64_t key, uint32_t home, uint16_t *port,
                            uint16_t *stamp)
{
	const struct fdb_slot *slots = fdb->slots;
	uint32_t i = home;
	uint64_t k;

	if (unlikely(key == 0))
		return false;
	while ((k = __atomic_load_n(&slots[i].key, __ATOMIC_ACQUIRE)) != key) {
		if (k == 0)
			return false;
		i = (i + 1) & fdb->slot_mask;
	}
	*port = __atomic_load_n(&slots[i].port, __ATOMIC_ACQUIRE);
	*stamp = __atomic_load_n(&slots[i].stamp, __ATOMIC_RELAXED);
	return __atomic_load_n(&slots[i].key, __ATOMIC_RELAXED) == key;
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
