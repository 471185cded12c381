/* The live-migration engine: sessions by id, listeners, dispatch of datagrams to the source or the
 * destination, the poller, and every session's figures. */
#include "migration.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

#include "dataplane/loop.h"
#include "migrate/destination.h"
#include "migrate/forward.h"
#include "migrate/session.h"
#include "migrate/source.h"
#include "vswitch/iface.h"

RTE_LOG_REGISTER(migration_logtype, ferry.migrate, INFO);

#define MIGRATION_DROP_NAME(e, name, text) [MIGRATION_DROP_##e] = name,
#define MIGRATION_DROP_TEXT(e, name, text) [MIGRATION_DROP_##e] = text,
const char *const migration_drop_names[MIGRATION_DROP_MAX] = {
        MIGRATION_DROP_REASONS(MIGRATION_DROP_NAME)};
const char *const migration_drop_descriptions[MIGRATION_DROP_MAX] = {
        MIGRATION_DROP_REASONS(MIGRATION_DROP_TEXT)};

static const char *const status_names[] = {
        [MIGRATION_SETUP] = "setup",         [MIGRATION_PREFLIGHT] = "pre-flight",
        [MIGRATION_ACTIVE] = "active",       [MIGRATION_SWITCHOVER] = "switchover",
        [MIGRATION_COMPLETED] = "completed", [MIGRATION_FAILED] = "failed",
        [MIGRATION_CANCELLED] = "cancelled", [MIGRATION_UNKNOWN_OUTCOME] = "unknown-outcome",
        [MIGRATION_ABANDONED] = "abandoned", [MIGRATION_POSTCOPY] = "postcopy-active",
        [MIGRATION_LOST] = "lost",
};

static const char *const mode_names[MIGRATION_MODE_MAX] = {
        [MIGRATION_MODE_PRECOPY] = "precopy",
        [MIGRATION_MODE_POSTCOPY] = "postcopy",
        [MIGRATION_MODE_HYBRID] = "hybrid",
};

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A destination's post-copy figures now: the vCPU's faults and stalls while it still waits on
 * pages, and the fault latencies' percentiles (nearest rank). */
static void postcopy_report(const struct migration *m, struct migration_postcopy_stats *pc)
{
	uint32_t n = m->destination.nb_latencies;

	if (m->vm != NULL) {
		pc->remote_faults = m->vm->machine.stats.remote_faults;
		pc->stall_ns = m->vm->machine.stats.stall_ns;
	}
	if (n == 0)
		return;
	uint64_t *sorted = malloc(n * sizeof(uint64_t));
	if (sorted == NULL)
		return;
	memcpy(sorted, m->destination.latencies, n * sizeof(uint64_t));
	qsort(sorted, n, sizeof(uint64_t), compare_u64);
	pc->fault_p50_ns = sorted[(n - 1) / 2];
	pc->fault_p99_ns = sorted[(uint64_t)(n - 1) * 99 / 100];
	pc->fault_max_ns = sorted[n - 1];
	free(sorted);
}

const char *migration_mode_name(enum migration_mode mode)
{
	return mode < MIGRATION_MODE_MAX ? mode_names[mode] : "?";
}

int migration_mode_parse(const char *name)
{
	for (int mode = 0; mode < MIGRATION_MODE_MAX; mode++)
		if (strcmp(name, mode_names[mode]) == 0)
			return mode;
	return -1;
}

const char *migration_status_name(enum migration_status status)
{
	return status_names[status];
}

const char *migration_role_name(enum migration_role role)
{
	return role == MIGRATION_SOURCE ? "source" : "destination";
}

static void session_end(struct migration *m, enum migration_status status)
{
	if (m->role == MIGRATION_SOURCE)
		source_end(m, status);
	else
		destination_end(m, status);
}

static struct migration_listener *listener_of(struct migration_engine *engine,
                                              const struct iface *vmk)
{
	for (unsigned int i = 0; i < MIGRATION_LISTENERS; i++)
		if (engine->listeners[i].vmk == vmk)
			return &engine->listeners[i];
	return NULL;
}

/* Datagrams to a listening port. */
static void listener_rx(void *ctx, uint32_t src_ip, uint16_t src_port, const uint8_t *payload,
                        uint16_t len, uint16_t dst_port)
{
	struct migration_listener *listener = ctx;
	struct migration_engine *engine = listener->engine;
	struct proto_message msg;
	uint64_t now = session_now_ns(engine);

	(void)dst_port;
	enum proto_error error = session_receive(engine, payload, len, &msg);
	if (error == PROTO_ERR_VERSION) {
		/* Tell a source of another version why, so it does not wait for a timeout. */
		struct proto_header h;
		memcpy(&h, payload, sizeof(h));
		if (h.type == PROTO_HELLO)
			session_send_refusal(
			        listener->vmk, src_ip, src_port, listener->port,
			        rte_be_to_cpu_64(h.session), PROTO_REFUSE_VERSION,
			        "this host speaks protocol version " RTE_STR(PROTO_VERSION), now);
	}
	if (error != PROTO_OK)
		return;
	/* A session exists only once its source proved the key (its AUTH); it answers for its
	 * outcome while it keeps its keys. */
	struct migration *m = NULL;
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *o = engine->sessions[i];
		if (o != NULL && o->role == MIGRATION_DESTINATION && o->session == msg.session &&
		    o->sealer_ready) {
			m = o;
			break;
		}
	}
	if (m == NULL) {
		if (msg.type == PROTO_HELLO)
			destination_on_hello(engine, listener, &msg, src_ip, src_port, now);
		else if (msg.type == PROTO_AUTH)
			destination_on_first_auth(engine, listener, &msg, src_ip, src_port, now);
		else if (msg.type == PROTO_QUERY)
			destination_on_orphan_query(engine, listener, &msg, src_ip, src_port, now);
		else
			session_count_drop(engine, MIGRATION_DROP_UNKNOWN_SESSION);
		return;
	}
	destination_rx(m, listener, &msg, src_ip, src_port, payload, len, now);
}

unsigned int migration_poll(void *arg)
{
	struct migration_engine *engine = arg;
	unsigned int running = 0;
	uint64_t now = session_now_ns(engine);

	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = engine->sessions[i];
		if (m == NULL)
			continue;
		if (m->role == MIGRATION_SOURCE && session_running(m))
			source_poll(m, now);
		/* The VM's frames go on for a moment after a source session completed. */
		if (m->role == MIGRATION_SOURCE && forward_source_busy(m) &&
		    forward_source_poll(m, now))
			running++;
		else if (m->role == MIGRATION_DESTINATION &&
		         (session_running(m) || m->sealer_ready))
			destination_poll(m, now);
		/* An unknown outcome only asks now and then: the worker may sleep. */
		running += session_running(m) && m->status != MIGRATION_UNKNOWN_OUTCOME;
	}
	return running;
}

int migration_engine_init(struct migration_engine *engine, struct loop *loop,
                          struct vswitch_table *vswitches, struct pktpool_set *pools,
                          const struct migration_hooks *hooks)
{
	memset(engine, 0, sizeof(*engine));
	engine->loop = loop;
	engine->vswitches = vswitches;
	engine->pools = pools;
	if (hooks != NULL)
		engine->hooks = *hooks;
	engine->cipher = proto_cipher_fastest();
	engine->start_ns = session_now_ns(engine);
	return loop_poller_add(loop, "migration", LOOP_POLLER_DATAPLANE, migration_poll, engine);
}

void migration_engine_fini(struct migration_engine *engine)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = engine->sessions[i];
		if (m == NULL)
			continue;
		/* An unknown outcome keeps its VM paused: the host frees it with the others. */
		if (session_running(m) && m->status != MIGRATION_UNKNOWN_OUTCOME) {
			session_set_reason(m, "the host shuts down");
			session_end(m, MIGRATION_CANCELLED);
		}
		session_release(m);
		free(m);
		engine->sessions[i] = NULL;
	}
	for (unsigned int i = 0; i < MIGRATION_LISTENERS; i++)
		if (engine->listeners[i].vmk != NULL)
			migration_unlisten(engine, engine->listeners[i].vmk);
	loop_poller_del(engine->loop, migration_poll, engine);
}

int migration_listen(struct migration_engine *engine, struct iface *vmk, uint16_t port,
                     const uint8_t *key, uint16_t key_len, enum proto_encryption encryption)
{
	struct migration_listener *listener = listener_of(engine, vmk);
	uint8_t secret[PROTO_KEY_LEN];

	if (key_len < MIGRATION_KEY_MIN || key_len > MIGRATION_KEY_MAX ||
	    (unsigned int)encryption >= PROTO_ENCRYPTION_MAX)
		return -EINVAL;
	/* The cookies' secret: two nonces' worth of randomness, new with each listen. */
	if (proto_nonce(secret) < 0 || proto_nonce(secret + PROTO_NONCE_LEN) < 0)
		return -EIO;
	if (listener != NULL) {
		/* Listening again changes the key (and the port). */
		if (listener->port != port) {
			int ret = netif_udp_bind(&vmk->netif, port, listener_rx, listener);
			if (ret < 0)
				return ret;
			netif_udp_unbind(&vmk->netif, listener->port);
			listener->port = port;
		}
	} else {
		listener = listener_of(engine, NULL);
		if (listener == NULL)
			return -ENOSPC;
		int ret = netif_udp_bind(&vmk->netif, port, listener_rx, listener);
		if (ret < 0)
			return ret;
		listener->vmk = vmk;
		listener->port = port;
		listener->engine = engine;
	}
	memcpy(listener->key, key, key_len);
	listener->key_len = key_len;
	listener->encryption = encryption;
	memcpy(listener->cookie_secret, secret, sizeof(secret));
	return 0;
}

int migration_unlisten(struct migration_engine *engine, struct iface *vmk)
{
	struct migration_listener *listener = listener_of(engine, vmk);

	if (listener == NULL || vmk == NULL)
		return -ENOENT;
	netif_udp_unbind(&vmk->netif, listener->port);
	memset(listener, 0, sizeof(*listener));
	return 0;
}

const struct migration_listener *migration_listener_find(const struct migration_engine *engine,
                                                         const struct iface *vmk)
{
	return listener_of((struct migration_engine *)engine, vmk);
}

int migration_start(struct migration_engine *engine, struct vm *vm, struct iface *vmk,
                    const struct migration_params *params)
{
	if (migration_vm_busy(engine, vm))
		return -EBUSY;
	if (vmk->netif.mtu < MIGRATION_MIN_MTU)
		return -EMSGSIZE;
	if (vm->postcopy_off && params->mode != MIGRATION_MODE_PRECOPY)
		return -EPERM;
	struct migration *m = session_new(engine, MIGRATION_SOURCE);
	if (m == NULL)
		return -ENOSPC;
	int ret = source_begin(m, vm, vmk, params);
	return ret < 0 ? ret : (int)m->id;
}

int migration_cancel(struct migration_engine *engine, uint32_t id)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = engine->sessions[i];
		if (m == NULL || m->id != id)
			continue;
		if (!session_running(m))
			return -EALREADY;
		if (m->status == MIGRATION_UNKNOWN_OUTCOME)
			return -EINPROGRESS;
		if (m->status == MIGRATION_POSTCOPY)
			return -EBUSY;
		session_set_reason(m, "cancelled by the operator");
		session_end(m, MIGRATION_CANCELLED);
		return 0;
	}
	return -ENOENT;
}

int migration_postcopy(struct migration_engine *engine, uint32_t id)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = engine->sessions[i];
		if (m == NULL || m->id != id)
			continue;
		if (m->role != MIGRATION_SOURCE || m->source.params.check_only ||
		    (m->status != MIGRATION_ACTIVE && m->status != MIGRATION_PREFLIGHT &&
		     m->status != MIGRATION_SETUP))
			return -EINVAL;
		if (m->vm->postcopy_off)
			return -EPERM;
		m->source.postcopy_asked = true;
		return 0;
	}
	return -ENOENT;
}

int migration_recover(struct migration_engine *engine, uint32_t id, uint32_t peer_ip)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = engine->sessions[i];
		if (m == NULL || m->id != id)
			continue;
		if (m->status != MIGRATION_POSTCOPY)
			return -EINVAL;
		if (peer_ip != 0)
			m->peer_ip = peer_ip;
		for (unsigned int s = 0; m->channel_ready && s < m->hello.streams; s++)
			channel_recover(&m->channels[s]);
		/* Each side asks at once what it waits for: the source whether the destination is
		 * there, the destination for the page its VM is stalled on. */
		if (m->role == MIGRATION_SOURCE)
			source_recover(m);
		else
			m->destination.demand_ns = 0;
		MIG_LOG(INFO, "%u: %s: post-copy recovery%s", m->id, m->vm_name,
		        peer_ip != 0 ? ", to a new peer address" : "");
		return 0;
	}
	return -ENOENT;
}

int migration_resolve(struct migration_engine *engine, uint32_t id,
                      enum migration_resolution resolution)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = engine->sessions[i];
		if (m == NULL || m->id != id)
			continue;
		if (resolution == MIGRATION_LOST_WITH_PEER) {
			if (m->status != MIGRATION_POSTCOPY)
				return -EINVAL;
			if (session_now_ns(engine) - m->last_rx_ns <= MIGRATION_PEER_TIMEOUT)
				return -EBUSY;
		} else if (m->role != MIGRATION_SOURCE || m->status != MIGRATION_UNKNOWN_OUTCOME) {
			return -EINVAL;
		}
		if (m->role == MIGRATION_SOURCE)
			source_resolve(m, resolution);
		else
			destination_lost(m);
		return 0;
	}
	return -ENOENT;
}
static const struct migration *session_by_id(const struct migration_engine *engine, uint32_t id)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++)
		if (engine->sessions[i] != NULL && engine->sessions[i]->id == id)
			return engine->sessions[i];
	return NULL;
}
int migration_info(const struct migration_engine *engine, uint32_t id, uint64_t now,
                   struct migration_info *info)
{
	const struct migration *m = session_by_id(engine, id);

	if (m == NULL)
		return -ENOENT;
	const struct migration_stats *s = &m->stats;
	bool source = m->role == MIGRATION_SOURCE;
	memset(info, 0, sizeof(*info));
	info->id = m->id;
	info->role = m->role;
	info->status = m->status;
	info->running = session_running(m);
	info->check_only = source && m->source.params.check_only;
	info->verified = source && m->status == MIGRATION_COMPLETED && m->source.params.verify &&
	                 !m->source.params.check_only && !m->source.verify_failed;
	snprintf(info->reason, sizeof(info->reason), "%s", m->reason);
	snprintf(info->vm_name, sizeof(info->vm_name), "%s", m->vm_name);
	info->session = m->session;
	info->encryption = (enum proto_encryption)m->hello.encryption;
	info->cipher = (enum proto_cipher)m->terms.cipher;
	info->encrypted = m->terms.encrypt != 0;
	info->streams = m->hello.streams;
	info->mode = m->source.params.mode;
	info->peer_ip = m->peer_ip;
	info->peer_port = m->peer_port;
	info->local_port = m->local_port;
	info->stats = *s;
	if (m->channel_ready)
		session_channels_report(m, &info->stats);
	if (m->role == MIGRATION_DESTINATION && m->destination.postcopy)
		postcopy_report(m, &info->stats.postcopy);
	uint64_t end = info->running ? now : s->end_ns;
	info->total_ns = end - s->start_ns;
	info->ended_ago_ns = info->running ? 0 : now - s->end_ns;
	info->round_percent = -1;
	if (m->role == MIGRATION_DESTINATION) {
		info->regions_populated =
		        __atomic_load_n(&m->destination.populate.populated, __ATOMIC_RELAXED);
		info->receiving = m->destination.page_round != NULL && m->vm != NULL;
		info->pages_held = m->destination.nb_complete;
		return 0;
	}
	memcpy(info->checks, m->preflight.checks, sizeof(info->checks));
	info->peer_mtu = m->source.peer_mtu;
	info->round = m->source.round;
	info->announce_rounds = rte_be_to_cpu_16(m->hello.announce_rounds);
	info->announce_initial_ms = rte_be_to_cpu_16(m->hello.announce_initial_ms);
	info->announce_step_ms = rte_be_to_cpu_16(m->hello.announce_step_ms);
	if (info->running && m->source.to_send != NULL && m->vm != NULL)
		info->round_percent =
		        100.0 * (double)m->source.cursor / (double)m->vm->machine.nb_pages;
	if (m->source.active_start_ns != 0)
		info->transfer_ns = end - m->source.active_start_ns;
	uint64_t active = end - (s->start_ns + s->setup_ns);
	if (active > 0) {
		double seconds = (double)active / 1e9;
		info->throughput_bps =
		        (uint64_t)((double)info->stats.bytes_transferred * 8 / seconds);
		info->pages_per_second =
		        (uint64_t)((double)(s->pages_normal + s->pages_zero) / seconds);
	}
	info->max_bandwidth_bps = m->source.params.max_bandwidth_bps;
	info->downtime_limit_ns = m->source.params.downtime_limit_ns;
	return 0;
}

void migration_mac_in_use(struct migration_engine *engine, const struct rte_ether_addr *mac)
{
	forward_unpin_mac(engine, mac);
}

void migration_forget_vm(struct migration_engine *engine, const struct vm *vm)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++)
		if (engine->sessions[i] != NULL)
			forward_forget_vm(engine->sessions[i], vm);
}

bool migration_vm_busy(const struct migration_engine *engine, const struct vm *vm)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		const struct migration *m = engine->sessions[i];
		if (m != NULL && m->vm == vm && session_running(m))
			return true;
	}
	return false;
}
