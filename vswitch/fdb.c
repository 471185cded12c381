/* The MAC table of one vswitch: (VLAN, MAC) -> port, with learning, aging, static entries,
 * MAC-move detection and fair eviction when full. */
#include "fdb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_log.h>
#include <rte_malloc.h>

static RTE_LOG_REGISTER(fdb_logtype, ferry.fdb, INFO);

#define FDB_LOG(level, fmt, ...)                                                                   \
	rte_log(RTE_LOG_##level, fdb_logtype, "fdb: " fmt "\n", ##__VA_ARGS__)

#define FDB_NIL        UINT32_MAX
#define NS_PER_SECOND  1000000000ull
#define HASH_MIN_SLOTS 64

/* The hash is ours rather than rte_hash: an 8-byte key compares in one instruction and hashes
 * with one crc32, a slot carries the port so a lookup reads one cache line, and positions are
 * entry indexes we hand out, stable while the entry lives.
 *
 * Only the writer (the thread that owns the table: the main lcore) runs the functions below;
 * workers read slots with fdb_find while it does. The writer's stores are ordered for them: a
 * slot's key is published last and withdrawn first. */

static inline uint32_t key_home(const struct fdb *fdb, uint64_t packed)
{
	return fdb_hash(packed) & fdb->slot_mask;
}

/* The slot holding packed, or the empty slot where probing stopped. */
static inline uint32_t slot_find(const struct fdb *fdb, uint64_t packed, uint32_t home)
{
	uint32_t i = home;

	while (fdb->slots[i].key != packed && fdb->slots[i].key != 0)
		i = (i + 1) & fdb->slot_mask;
	return i;
}

static int32_t table_lookup(const struct fdb *fdb, uint64_t packed)
{
	if (packed == 0)
		return -ENOENT;
	uint32_t i = slot_find(fdb, packed, key_home(fdb, packed));
	return fdb->slots[i].key == packed ? (int32_t)fdb->slots[i].entry : -ENOENT;
}

/* Fills a slot for readers: the key goes last, after what it describes. */
static void slot_publish(struct fdb_slot *slot, const struct fdb_slot *value)
{
	__atomic_store_n(&slot->key, 0, __ATOMIC_RELAXED);
	slot->entry = value->entry;
	slot->stamp = value->stamp;
	/* Release: a reader that sees the new port also sees the key withdrawn above. */
	__atomic_store_n(&slot->port, value->port, __ATOMIC_RELEASE);
	__atomic_store_n(&slot->key, value->key, __ATOMIC_RELEASE);
}

/* Takes a free position for a key known to be absent. */
static int32_t table_add(struct fdb *fdb, uint64_t packed, uint16_t port, uint16_t stamp)
{
	if (packed == 0 || fdb->nb_free == 0)
		return -ENOSPC;
	uint32_t entry = fdb->free_entries[--fdb->nb_free];
	uint32_t i = slot_find(fdb, packed, key_home(fdb, packed));
	slot_publish(
	        &fdb->slots[i],
	        &(struct fdb_slot){.key = packed, .entry = entry, .port = port, .stamp = stamp});
	return (int32_t)entry;
}

/* Removes a key. The rest of its probe run shifts back into the hole, so lookups never meet
 * tombstones and the table never needs rebuilding. A reader probing while a key shifts back may
 * miss it: that frame floods, as for a MAC not yet learned. */
static void table_del(struct fdb *fdb, uint64_t packed, uint32_t entry)
{
	uint32_t hole = slot_find(fdb, packed, key_home(fdb, packed));

	if (fdb->slots[hole].key != packed)
		return;
	for (uint32_t j = (hole + 1) & fdb->slot_mask; fdb->slots[j].key != 0;
	     j = (j + 1) & fdb->slot_mask) {
		uint32_t home = key_home(fdb, fdb->slots[j].key);
		/* j stays if its home lies cyclically in (hole, j]: moving it would hide it. */
		bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
		if (stays)
			continue;
		slot_publish(&fdb->slots[hole], &fdb->slots[j]);
		hole = j;
	}
	__atomic_store_n(&fdb->slots[hole].key, 0, __ATOMIC_RELEASE);
	fdb->free_entries[fdb->nb_free++] = entry;
}

int fdb_init(struct fdb *fdb, const char *name, uint32_t limit, uint32_t aging_s)
{
	memset(fdb, 0, sizeof(*fdb));
	snprintf(fdb->name, sizeof(fdb->name), "%s", name);
	if (limit == 0 || limit > FDB_MAX_LIMIT)
		return -EINVAL;
	/* The slots start small and double as entries come, up to twice the limit: a table sized
	 * for 262,144 MACs that holds 2,048 probes 64 KiB, not 8 MiB, and stays in cache. */
	fdb->max_slots = rte_align32pow2(RTE_MAX(2 * limit, (uint32_t)HASH_MIN_SLOTS));
	uint32_t nb_slots = RTE_MIN(fdb->max_slots, (uint32_t)HASH_MIN_SLOTS);
	/* DPDK memory: on hugepages when there are some, so a big table costs few TLB misses. */
	fdb->slots = rte_zmalloc(name, (size_t)nb_slots * sizeof(*fdb->slots), RTE_CACHE_LINE_SIZE);
	fdb->entries =
	        rte_zmalloc(name, (size_t)limit * sizeof(*fdb->entries), RTE_CACHE_LINE_SIZE);
	fdb->free_entries = rte_malloc(name, (size_t)limit * sizeof(uint32_t), 0);
	if (fdb->slots == NULL || fdb->entries == NULL || fdb->free_entries == NULL) {
		FDB_LOG(ERR, "%s: no memory for a table of %u entries", name, limit);
		fdb_fini(fdb);
		return -ENOMEM;
	}
	fdb->slot_mask = nb_slots - 1;
	/* Low positions go out first, so the entries in use stay dense. */
	for (uint32_t i = 0; i < limit; i++)
		fdb->free_entries[i] = limit - 1 - i;
	fdb->nb_free = limit;
	fdb->limit = limit;
	fdb->aging_ns = (uint64_t)aging_s * NS_PER_SECOND;
	for (unsigned int p = 0; p < FDB_MAX_PORTS; p++)
		fdb->lru_head[p] = fdb->lru_tail[p] = FDB_NIL;
	return 0;
}

void fdb_fini(struct fdb *fdb)
{
	rte_free(fdb->slots);
	rte_free(fdb->entries);
	rte_free(fdb->free_entries);
	fdb->slots = NULL;
	fdb->entries = NULL;
	fdb->free_entries = NULL;
}

/* Per-port LRU lists link dynamic entries by position, most recently seen at the head. */

static void lru_unlink(struct fdb *fdb, uint32_t pos)
{
	struct fdb_entry *e = &fdb->entries[pos];

	if (e->lru_prev != FDB_NIL)
		fdb->entries[e->lru_prev].lru_next = e->lru_next;
	else
		fdb->lru_head[e->port] = e->lru_next;
	if (e->lru_next != FDB_NIL)
		fdb->entries[e->lru_next].lru_prev = e->lru_prev;
	else
		fdb->lru_tail[e->port] = e->lru_prev;
	fdb->port_count[e->port]--;
}

static void lru_push_head(struct fdb *fdb, uint32_t pos)
{
	struct fdb_entry *e = &fdb->entries[pos];
	uint16_t port = e->port;

	e->lru_prev = FDB_NIL;
	e->lru_next = fdb->lru_head[port];
	if (e->lru_next != FDB_NIL)
		fdb->entries[e->lru_next].lru_prev = pos;
	else
		fdb->lru_tail[port] = pos;
	fdb->lru_head[port] = pos;
	fdb->port_count[port]++;
}

static void entry_remove(struct fdb *fdb, uint32_t pos)
{
	struct fdb_entry *e = &fdb->entries[pos];

	if (e->is_static)
		fdb->nb_static--;
	else
		lru_unlink(fdb, pos);
	table_del(fdb, fdb_key_pack(&e->key), pos);
	e->valid = false;
	fdb->count--;
}

/* Makes room for one entry: the least recently used entry of the port that holds the most, so
 * that one port flooding new MACs mostly evicts its own. */
static bool evict_one(struct fdb *fdb)
{
	unsigned int victim_port = FDB_MAX_PORTS;
	uint32_t most = 0;

	for (unsigned int p = 0; p < FDB_MAX_PORTS; p++) {
		if (fdb->port_count[p] > most) {
			most = fdb->port_count[p];
			victim_port = p;
		}
	}
	if (victim_port == FDB_MAX_PORTS)
		return false;
	entry_remove(fdb, fdb->lru_tail[victim_port]);
	fdb->stats.evicted++;
	return true;
}

void fdb_set_resize_hook(struct fdb *fdb, fdb_resize_fn *fn, void *ctx)
{
	fdb->before_resize = fn;
	fdb->before_resize_ctx = ctx;
}

/* Doubles the slot array: every key rehashed into a new one, which then replaces the old (after
 * the hook has made sure no reader is in it). Returns 0 or -ENOMEM (the table is unchanged). */
static int slots_grow(struct fdb *fdb)
{
	uint32_t nb_old = fdb->slot_mask + 1, nb_new = 2 * nb_old;
	struct fdb_slot *old = fdb->slots;
	struct fdb_slot *slots =
	        rte_zmalloc(fdb->name, (size_t)nb_new * sizeof(*slots), RTE_CACHE_LINE_SIZE);

	if (slots == NULL) {
		FDB_LOG(WARNING, "%s: no memory to grow to %u slots", fdb->name, nb_new);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nb_old; i++) {
		if (old[i].key == 0)
			continue;
		uint32_t j = fdb_hash(old[i].key) & (nb_new - 1);
		while (slots[j].key != 0)
			j = (j + 1) & (nb_new - 1);
		slots[j] = old[i];
	}
	if (fdb->before_resize != NULL)
		fdb->before_resize(fdb->before_resize_ctx);
	fdb->slots = slots;
	fdb->slot_mask = nb_new - 1;
	rte_free(old);
	return 0;
}

/* Inserts a key known to be absent. Returns its position, or negative when full. */
static int32_t entry_insert(struct fdb *fdb, const struct fdb_key *key, uint16_t port,
                            bool is_static, uint64_t now_ns)
{
	if (fdb->count >= fdb->limit && !evict_one(fdb))
		return -ENOSPC;
	/* A quarter full while the array can grow (most probes then end in their home slot),
	 * at most half at its full size; if memory to grow is short, at most three quarters, then
	 * no more: probes must always meet an empty slot. */
	uint32_t nb_slots = fdb->slot_mask + 1;
	if (4 * (fdb->count + 1) > nb_slots &&
	    (nb_slots == fdb->max_slots || slots_grow(fdb) < 0) &&
	    4 * (fdb->count + 1) > 3 * nb_slots)
		return -ENOSPC;
	int32_t pos = table_add(fdb, fdb_key_pack(key), port, fdb_stamp(now_ns));
	if (pos < 0)
		return pos;
	struct fdb_entry *e = &fdb->entries[pos];
	*e = (struct fdb_entry){.key = *key,
	                        .port = port,
	                        .valid = true,
	                        .is_static = is_static,
	                        .seen_ns = now_ns,
	                        .lru_prev = FDB_NIL,
	                        .lru_next = FDB_NIL};
	if (is_static)
		fdb->nb_static++;
	else
		lru_push_head(fdb, (uint32_t)pos);
	fdb->count++;
	return pos;
}

enum fdb_learn_result fdb_learn_key(struct fdb *fdb, uint64_t packed, uint16_t port,
                                    uint64_t now_ns)
{
	/* One probe finds both the slot (the port and stamp readers see) and the entry. */
	struct fdb_slot *slot = &fdb->slots[slot_find(fdb, packed, key_home(fdb, packed))];

	if (packed == 0 || slot->key != packed) {
		struct fdb_key key;
		memcpy(&key, &packed, sizeof(key));
		if (entry_insert(fdb, &key, port, false, now_ns) < 0) {
			fdb->stats.full_drops++;
			return FDB_LEARN_FULL;
		}
		fdb->stats.learned++;
		return FDB_LEARN_NEW;
	}

	uint32_t position = slot->entry;
	struct fdb_entry *e = &fdb->entries[position];
	uint16_t stamp = fdb_stamp(now_ns);
	if (e->is_static) {
		if (e->port != port) {
			fdb->stats.static_refused++;
			return FDB_LEARN_STATIC;
		}
		slot->stamp = stamp; /* so its frames take the compare, not this call */
		return FDB_LEARN_REFRESHED;
	}
	if (e->port == port) {
		/* Relinking on every frame would touch two more entries per packet: the switch
		 * refreshes a MAC once per grain (when the slot's stamp is not this grain's), which
		 * keeps the LRU lists ordered to within a grain, so aging and eviction are late by at
		 * most that much. */
		if (slot->stamp != stamp) {
			slot->stamp = stamp;
			e->seen_ns = now_ns;
			if (fdb->lru_head[port] != position) {
				lru_unlink(fdb, position);
				lru_push_head(fdb, position);
			}
		}
		return FDB_LEARN_REFRESHED;
	}
	e->seen_ns = now_ns;
	lru_unlink(fdb, position);
	e->port = port;
	e->moves++;
	lru_push_head(fdb, position);
	slot->stamp = stamp;
	__atomic_store_n(&slot->port, port, __ATOMIC_RELEASE);
	fdb->stats.moved++;
	return FDB_LEARN_MOVED;
}

enum fdb_learn_result fdb_learn(struct fdb *fdb, uint16_t vlan, const struct rte_ether_addr *mac,
                                uint16_t port, uint64_t now_ns)
{
	struct fdb_key key = {.vlan = vlan, .mac = *mac};

	return fdb_learn_key(fdb, fdb_key_pack(&key), port, now_ns);
}

uint16_t fdb_lookup(const struct fdb *fdb, uint16_t vlan, const struct rte_ether_addr *mac)
{
	struct fdb_key key = {.vlan = vlan, .mac = *mac};
	uint64_t packed = fdb_key_pack(&key);
	uint16_t port, stamp;

	return fdb_find(fdb, packed, key_home(fdb, packed), &port, &stamp) ? port : FDB_PORT_NONE;
}

int fdb_add_static(struct fdb *fdb, uint16_t vlan, const struct rte_ether_addr *mac, uint16_t port)
{
	struct fdb_key key = {.vlan = vlan, .mac = *mac};
	int32_t pos = table_lookup(fdb, fdb_key_pack(&key));

	if (port >= FDB_MAX_PORTS)
		return -EINVAL;
	if (pos >= 0)
		entry_remove(fdb, (uint32_t)pos);
	pos = entry_insert(fdb, &key, port, true, 0);
	return pos < 0 ? pos : 0;
}

int fdb_del(struct fdb *fdb, uint16_t vlan, const struct rte_ether_addr *mac)
{
	struct fdb_key key = {.vlan = vlan, .mac = *mac};
	int32_t pos = table_lookup(fdb, fdb_key_pack(&key));

	if (pos < 0)
		return -ENOENT;
	entry_remove(fdb, (uint32_t)pos);
	return 0;
}

/* Removes every valid entry drop() picks; returns how many. */
static unsigned int fdb_remove_if(struct fdb *fdb, bool (*drop)(const struct fdb_entry *, void *),
                                  void *arg)
{
	unsigned int removed = 0;

	for (uint32_t pos = 0; pos < fdb->limit; pos++) {
		if (fdb->entries[pos].valid && drop(&fdb->entries[pos], arg)) {
			entry_remove(fdb, pos);
			removed++;
		}
	}
	return removed;
}

static bool drop_dynamic(const struct fdb_entry *e, void *arg)
{
	bool statics = *(bool *)arg;
	return statics || !e->is_static;
}

unsigned int fdb_flush(struct fdb *fdb, bool statics)
{
	return fdb_remove_if(fdb, drop_dynamic, &statics);
}

static bool drop_on_port(const struct fdb_entry *e, void *arg)
{
	return e->port == *(uint16_t *)arg;
}

unsigned int fdb_flush_port(struct fdb *fdb, uint16_t port)
{
	return fdb_remove_if(fdb, drop_on_port, &port);
}

static bool drop_on_vlan(const struct fdb_entry *e, void *arg)
{
	return !e->is_static && e->key.vlan == *(uint16_t *)arg;
}

unsigned int fdb_flush_vlan(struct fdb *fdb, uint16_t vlan)
{
	return fdb_remove_if(fdb, drop_on_vlan, &vlan);
}

unsigned int fdb_age(struct fdb *fdb, uint64_t now_ns)
{
	unsigned int expired = 0;

	if (fdb->aging_ns == 0)
		return 0;
	for (unsigned int p = 0; p < FDB_MAX_PORTS; p++) {
		/* Each LRU list is in order of last sighting: stop at the first fresh entry. */
		while (fdb->lru_tail[p] != FDB_NIL) {
			uint32_t pos = fdb->lru_tail[p];
			if (now_ns - fdb->entries[pos].seen_ns < fdb->aging_ns)
				break;
			entry_remove(fdb, pos);
			expired++;
		}
	}
	fdb->stats.expired += expired;
	return expired;
}

void fdb_set_aging(struct fdb *fdb, uint32_t aging_s)
{
	fdb->aging_ns = (uint64_t)aging_s * NS_PER_SECOND;
}

static int by_age(const void *a, const void *b)
{
	const struct fdb_entry *x = a, *y = b;

	if (x->is_static != y->is_static)
		return x->is_static ? -1 : 1; /* statics first: they must survive a shrink */
	return x->seen_ns < y->seen_ns ? -1 : x->seen_ns > y->seen_ns;
}

int fdb_set_limit(struct fdb *fdb, uint32_t limit)
{
	struct fdb next;
	char name[sizeof(fdb->name)];

	if (limit == 0 || limit > FDB_MAX_LIMIT)
		return -EINVAL;
	if (limit < fdb->nb_static)
		return -ENOSPC;
	snprintf(name, sizeof(name), "%s", fdb->name);
	int ret = fdb_init(&next, name, limit, 0);
	if (ret < 0)
		return ret;
	next.aging_ns = fdb->aging_ns;
	next.stats = fdb->stats;
	fdb_set_resize_hook(&next, fdb->before_resize, fdb->before_resize_ctx);

	/* Re-insert oldest first, so that the LRU lists come out in the same order and a
	 * shrink evicts fairly, exactly as learning would have. */
	struct fdb_entry *all = malloc(sizeof(*all) * (fdb->count + 1));
	if (all == NULL) {
		fdb_fini(&next);
		return -ENOMEM;
	}
	uint32_t n = 0;
	for (uint32_t pos = 0; pos < fdb->limit; pos++)
		if (fdb->entries[pos].valid)
			all[n++] = fdb->entries[pos];
	qsort(all, n, sizeof(*all), by_age);
	for (uint32_t i = 0; i < n; i++) {
		int32_t p = entry_insert(&next, &all[i].key, all[i].port, all[i].is_static,
		                         all[i].seen_ns);
		if (p >= 0)
			next.entries[p].moves = all[i].moves;
	}
	free(all);
	fdb_fini(fdb);
	*fdb = next;
	return 0;
}

void fdb_foreach(const struct fdb *fdb, int (*fn)(const struct fdb_entry *entry, void *arg),
                 void *arg)
{
	for (uint32_t pos = 0; pos < fdb->limit; pos++)
		if (fdb->entries[pos].valid && fn(&fdb->entries[pos], arg) != 0)
			return;
}
