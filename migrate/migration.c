/* The live-migration engine: both ends of a pre-copy migration, poll-mode on the worker, over UDP
 * between two VMkernel interfaces. */
#include "migration.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <rte_byteorder.h>
#include <rte_log.h>

#include "dataplane/loop.h"
#include "vswitch/iface.h"
#include "vswitch/vswitch.h"

static RTE_LOG_REGISTER(migration_logtype, ferry.migrate, INFO);

#define MIG_LOG(level, fmt, ...)                                                                   \
	rte_log(RTE_LOG_##level, migration_logtype, "migrate: " fmt "\n", ##__VA_ARGS__)

#define NS_PER_SECOND    1000000000ull
#define SEND_BUDGET      256 /* messages one poll may send per session */
#define EPHEMERAL_FIRST  49152
#define LINK_OVERHEAD    (14 + 20 + 8) /* Ethernet, IPv4 and UDP headers per message */
#define MESSAGE_OVERHEAD (sizeof(struct proto_header) + sizeof(struct proto_pages) + PROTO_TAG_LEN)

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
        [MIGRATION_CANCELLED] = "cancelled",
};

const char *migration_status_name(enum migration_status status)
{
	return status_names[status];
}

const char *migration_role_name(enum migration_role role)
{
	return role == MIGRATION_SOURCE ? "source" : "destination";
}

const char *const migration_check_names[MIGRATION_CHECK_MAX] = {
        [MIGRATION_CHECK_REACHABLE] = "destination answers",
        [MIGRATION_CHECK_SUBNET] = "same IP subnet",
        [MIGRATION_CHECK_RTT] = "round-trip time",
        [MIGRATION_CHECK_BANDWIDTH] = "bandwidth",
        [MIGRATION_CHECK_ADMISSION] = "port group, memory, name, MAC",
        [MIGRATION_CHECK_MTU] = "MTU",
};

bool migration_running(const struct migration *m)
{
	return m->status == MIGRATION_SETUP || m->status == MIGRATION_PREFLIGHT ||
	       m->status == MIGRATION_ACTIVE || m->status == MIGRATION_SWITCHOVER;
}

bool migration_checks_passed(const struct migration *m)
{
	for (unsigned int i = 0; i < MIGRATION_CHECK_MAX; i++)
		if (m->checks[i].done && !m->checks[i].ok)
			return false;
	return true;
}

static void check_record(struct migration *m, enum migration_check_item item, bool ok,
                         const char *limit, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static void check_record(struct migration *m, enum migration_check_item item, bool ok,
                         const char *limit, const char *fmt, ...)
{
	struct migration_check *c = &m->checks[item];
	va_list ap;

	c->done = true;
	c->ok = ok;
	snprintf(c->limit, sizeof(c->limit), "%s", limit);
	va_start(ap, fmt);
	vsnprintf(c->value, sizeof(c->value), fmt, ap);
	va_end(ap);
}

static uint64_t now_ns(const struct migration_engine *engine)
{
	return loop_now_ns(engine->loop);
}

static void count_drop(struct migration_engine *engine, enum migration_drop_reason reason)
{
	engine->drops[reason]++;
}

static inline bool bit_test(const uint64_t *bitmap, uint64_t bit)
{
	return (bitmap[bit / 64] >> (bit % 64)) & 1;
}

/* The first set bit at or after from, or end. */
static uint64_t next_page(const uint64_t *bitmap, uint64_t from, uint64_t end)
{
	uint64_t word = from / 64;
	uint64_t bits = bitmap[word] & (~0ull << (from % 64));

	while (bits == 0) {
		if (++word * 64 >= end)
			return end;
		bits = bitmap[word];
	}
	uint64_t page = word * 64 + (uint64_t)__builtin_ctzll(bits);
	return page < end ? page : end;
}

/* ---- sending ---- */

/* A message outside the channel (handshake, acks, refusals): header and body in one datagram. */
static int send_raw(struct iface *vmk, uint32_t ip, uint16_t port, uint16_t local_port,
                    enum proto_type type, uint64_t session, const void *body, uint16_t body_len,
                    uint64_t now)
{
	uint8_t buf[sizeof(struct proto_header) + sizeof(struct proto_hello)];

	if (body_len > sizeof(buf) - sizeof(struct proto_header))
		return -EMSGSIZE;
	size_t len = proto_write_header(buf, type, session, 0, body_len);
	if (body_len != 0)
		memcpy(buf + len, body, body_len);
	return netif_udp_send(&vmk->netif, ip, port, local_port, buf, (uint16_t)(len + body_len),
	                      now);
}

static int send_to_peer(struct migration *m, enum proto_type type, const void *body,
                        uint16_t body_len)
{
	return send_raw(m->vmk, m->peer_ip, m->peer_port, m->local_port, type, m->session, body,
	                body_len, now_ns(m->engine));
}

static int send_refusal(struct iface *vmk, uint32_t ip, uint16_t port, uint16_t local_port,
                        uint64_t session, enum proto_refusal reason, const char *text, uint64_t now)
{
	struct proto_refuse refuse = {.reason = rte_cpu_to_be_32(reason)};

	snprintf(refuse.text, sizeof(refuse.text), "%.*s", (int)sizeof(refuse.text) - 1, text);
	return send_raw(vmk, ip, port, local_port, PROTO_REFUSE, session, &refuse, sizeof(refuse),
	                now);
}

/* The channel's link: one datagram to the peer. */
static int channel_link_send(void *ctx, const void *buf, uint16_t len)
{
	struct migration *m = ctx;

	return netif_udp_send(&m->vmk->netif, m->peer_ip, m->peer_port, m->local_port, buf, len,
	                      now_ns(m->engine));
}

/* Derives the session's data key from the shared key and both nonces. Returns 0 or -EIO. */
static int session_seal_begin(struct migration *m, const uint8_t *key, uint16_t key_len)
{
	uint8_t data_key[PROTO_KEY_LEN];
	int ret = proto_data_key(key, key_len, m->hello_nonce, m->challenge_nonce, m->session,
	                         data_key);

	if (ret == 0)
		ret = proto_sealer_init(&m->sealer, data_key);
	OPENSSL_cleanse(data_key, sizeof(data_key));
	m->sealer_ready = ret == 0;
	return ret;
}

/* The channel's sealer: the tag goes after the message. */
static int channel_seal(void *ctx, uint8_t *buf, uint16_t len)
{
	struct migration *m = ctx;

	return proto_seal(&m->sealer, buf, len, buf + len) < 0 ? -EIO : PROTO_TAG_LEN;
}

/* ---- sessions ---- */

static struct migration *session_new(struct migration_engine *engine, enum migration_role role)
{
	unsigned int slot = MIGRATION_MAX;

	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		if (engine->sessions[i] == NULL) {
			slot = i;
			break;
		}
	}
	/* Full: forget the oldest finished session to make room. */
	if (slot == MIGRATION_MAX) {
		for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
			struct migration *old = engine->sessions[i];
			if (!migration_running(old) && !old->channel_ready &&
			    (slot == MIGRATION_MAX || old->id < engine->sessions[slot]->id))
				slot = i;
		}
		if (slot == MIGRATION_MAX)
			return NULL;
		free(engine->sessions[slot]);
		engine->sessions[slot] = NULL;
	}
	struct migration *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->engine = engine;
	m->id = ++engine->next_id;
	m->role = role;
	m->status = MIGRATION_SETUP;
	m->stats.start_ns = now_ns(engine);
	m->last_rx_ns = m->stats.start_ns;
	engine->sessions[slot] = m;
	return m;
}

/* Frees what a session holds while it runs; its record stays for `migrate status`. */
static void session_release(struct migration *m)
{
	if (m->channel_ready) {
		m->stats.pages_retransmitted =
		        m->channel.stats.retransmitted + m->channel.stats.fast_retransmitted;
		m->stats.bytes_transferred = m->channel.stats.wire_bytes_sent;
		channel_fini(&m->channel);
		m->channel_ready = false;
	}
	if (m->sealer_ready) {
		proto_sealer_fini(&m->sealer);
		m->sealer_ready = false;
	}
	free(m->to_send);
	m->to_send = NULL;
	free(m->page_round);
	m->page_round = NULL;
	free(m->page_filled);
	m->page_filled = NULL;
	if (m->role == MIGRATION_SOURCE && m->local_port != 0) {
		netif_udp_unbind(&m->vmk->netif, m->local_port);
		m->local_port = 0;
	}
}

static void set_reason(struct migration *m, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void set_reason(struct migration *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->reason, sizeof(m->reason), fmt, ap);
	va_end(ap);
}

static void source_end(struct migration *m, enum migration_status status);
static void destination_end(struct migration *m, enum migration_status status);

static void session_end(struct migration *m, enum migration_status status)
{
	if (m->role == MIGRATION_SOURCE)
		source_end(m, status);
	else
		destination_end(m, status);
}

/* ---- source ---- */

/* The largest page slice one message carries at the vmk's MTU. */
static uint16_t page_bytes_per_message(uint16_t mtu)
{
	/* migration_start refuses vmks under MIGRATION_MIN_MTU, so this never underflows. */
	uint32_t room = (uint32_t)mtu - 20 - 8 - MESSAGE_OVERHEAD;

	if (room > PROTO_PAGE_SIZE)
		room = PROTO_PAGE_SIZE;
	return (uint16_t)(room & ~7u);
}

/* Ends a source session. Before the destination took the vCPU state the VM runs here again;
 * after, only the destination may run it, so it stays paused and the reason says so. */
static void source_end(struct migration *m, enum migration_status status)
{
	uint64_t now = now_ns(m->engine);
	bool state_taken = m->state_sent && m->channel_ready && channel_idle(&m->channel);

	/* Tell the destination to drop its copy, unless it refused and holds none. */
	if ((status != MIGRATION_COMPLETED || m->params.check_only) && !m->refused &&
	    m->local_port != 0 && m->channel_ready)
		send_to_peer(m, PROTO_CANCEL, NULL, 0);
	if (m->vm != NULL) {
		m->vm->machine.throttle_percent = 0;
		if (status == MIGRATION_COMPLETED && m->params.check_only) {
			/* A pre-flight check leaves the VM where it is. */
		} else if (status == MIGRATION_COMPLETED) {
			struct vm *vm = m->vm;
			m->vm = NULL;
			if (m->engine->hooks.vm_departed != NULL)
				m->engine->hooks.vm_departed(m->engine->hooks.ctx, vm);
		} else if (m->paused && (!state_taken || m->refused)) {
			if (m->was_running)
				vm_resume(m->vm);
		} else if (m->paused) {
			set_reason(m,
			           "%s; the destination took the vCPU state but never confirmed: "
			           "the VM stays paused here, check the destination",
			           m->reason);
		}
	}
	m->vm = NULL;
	m->status = status;
	m->stats.end_ns = now;
	session_release(m);
	if (status == MIGRATION_COMPLETED && m->params.check_only)
		MIG_LOG(INFO, "%u: %s: pre-flight check passed", m->id, m->vm_name);
	else if (status == MIGRATION_COMPLETED)
		MIG_LOG(INFO, "%u: %s completed in %.1f ms, downtime %.3f ms, %u rounds", m->id,
		        m->vm_name, (double)(now - m->stats.start_ns) / 1e6,
		        (double)m->stats.downtime_ns / 1e6, m->stats.rounds);
	else
		MIG_LOG(WARNING, "%u: %s %s: %s", m->id, m->vm_name, migration_status_name(status),
		        m->reason);
}

static void source_fail(struct migration *m, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void source_fail(struct migration *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->reason, sizeof(m->reason), fmt, ap);
	va_end(ap);
	source_end(m, MIGRATION_FAILED);
}

/* Starts a round over the pages in to_send. */
static void source_round_begin(struct migration *m)
{
	m->cursor = 0;
	m->fragment = 0;
	m->zero_count = 0;
	m->stats.rounds = m->round + 1;
}

static int source_send_zero_run(struct migration *m, uint64_t now)
{
	struct proto_zero_run run = {
	        .first_page = rte_cpu_to_be_64(m->zero_first),
	        .count = rte_cpu_to_be_32((uint32_t)m->zero_count),
	        .round = rte_cpu_to_be_32(m->round),
	};
	int64_t ret = channel_send(&m->channel, PROTO_ZERO_RUN, &run, sizeof(run), NULL, 0, now);

	if (ret < 0)
		return (int)ret;
	m->stats.pages_zero += m->zero_count;
	m->zero_count = 0;
	return 0;
}

/* Sends the next slice of the cursor's page. Returns 0 once the page is wholly sent, 1 if more
 * of it remains, or -EAGAIN. */
static int source_send_page_slice(struct migration *m, uint64_t now)
{
	uint16_t len = m->max_data;

	if (len > PROTO_PAGE_SIZE - m->fragment)
		len = (uint16_t)(PROTO_PAGE_SIZE - m->fragment);
	struct proto_pages hdr = {
	        .page = rte_cpu_to_be_64(m->cursor),
	        .round = rte_cpu_to_be_32(m->round),
	        .offset = rte_cpu_to_be_16((uint16_t)m->fragment),
	        .data_len = rte_cpu_to_be_16(len),
	};
	int64_t ret =
	        channel_send(&m->channel, PROTO_PAGES, &hdr, sizeof(hdr),
	                     machine_page(&m->vm->machine, m->cursor) + m->fragment, len, now);
	if (ret < 0)
		return (int)ret;
	m->fragment += len;
	if (m->fragment < PROTO_PAGE_SIZE)
		return 1;
	m->fragment = 0;
	m->stats.pages_normal++;
	return 0;
}

/* Sends what the pacer and the window allow of this round. Returns true when the round is
 * wholly handed to the channel. */
static bool source_send_round(struct migration *m, uint64_t now)
{
	struct machine *vm = &m->vm->machine;
	unsigned int budget = SEND_BUDGET;

	while (budget > 0) {
		if (m->fragment != 0) {
			int ret = source_send_page_slice(m, now);
			if (ret < 0)
				return false;
			budget--;
			if (ret == 0) {
				m->cursor++;
			}
			continue;
		}
		if (m->cursor >= vm->nb_pages) {
			if (m->zero_count != 0 && source_send_zero_run(m, now) < 0)
				return false;
			return true;
		}
		if (!bit_test(m->to_send, m->cursor)) {
			/* A run of zeros ends at a page not to send. */
			if (m->zero_count != 0) {
				if (source_send_zero_run(m, now) < 0)
					return false;
				budget--;
			}
			m->cursor = next_page(m->to_send, m->cursor, vm->nb_pages);
			continue;
		}
		if (machine_page_is_zero(vm, m->cursor)) {
			if (m->zero_count == 0)
				m->zero_first = m->cursor;
			m->zero_count++;
			m->cursor++;
			if (m->zero_count == UINT32_MAX && source_send_zero_run(m, now) < 0)
				return false;
			continue;
		}
		if (m->zero_count != 0) {
			if (source_send_zero_run(m, now) < 0)
				return false;
			budget--;
		}
		int ret = source_send_page_slice(m, now);
		if (ret < 0)
			return false;
		budget--;
		if (ret == 0) {
			m->cursor++;
		}
	}
	return false;
}

static uint64_t source_bandwidth_bps(const struct migration *m, uint64_t now)
{
	uint64_t elapsed = now - m->active_start_ns;

	if (elapsed == 0)
		return 0;
	return (uint64_t)((double)(m->channel.stats.wire_bytes_sent - m->active_start_bytes) * 8.0 *
	                  (double)NS_PER_SECOND / (double)elapsed);
}

static void source_switchover(struct migration *m, uint64_t now)
{
	vm_pause(m->vm);
	m->paused = true;
	m->pause_ns = now;
	/* What the VM wrote since the last read, up to the pause, joins the last round. */
	uint64_t words = machine_bitmap_words(&m->vm->machine);
	uint64_t *late = malloc(words * sizeof(uint64_t));
	if (late == NULL) {
		source_fail(m, "out of memory at switchover");
		return;
	}
	machine_dirty_log_read_and_clear(&m->vm->machine, late);
	uint64_t dirty = 0;
	for (uint64_t w = 0; w < words; w++) {
		m->to_send[w] |= late[w];
		dirty += (uint64_t)__builtin_popcountll(m->to_send[w]);
	}
	free(late);
	m->stats.dirty_pages_last = dirty;
	m->stats.bytes_remaining = dirty * PROTO_PAGE_SIZE;
	m->status = MIGRATION_SWITCHOVER;
	m->round++;
	source_round_begin(m);
}

/* A round was handed to the channel: read the dirty log, then decide between another round,
 * throttling the VM, switching over, or giving up. */
static void source_round_end(struct migration *m, uint64_t now)
{
	struct machine *vm = &m->vm->machine;
	uint64_t dirty = machine_dirty_log_read_and_clear(vm, m->to_send);
	uint64_t previous = m->stats.dirty_pages_last;
	uint64_t bandwidth = source_bandwidth_bps(m, now);
	uint64_t per_page = PROTO_PAGE_SIZE + (PROTO_PAGE_SIZE / m->max_data + 1) *
	                                              (MESSAGE_OVERHEAD + LINK_OVERHEAD);

	m->stats.dirty_pages_last = dirty;
	m->stats.bytes_remaining = dirty * PROTO_PAGE_SIZE;
	m->stats.dirty_pages_rate = vm->stats.dirty_rate;
	m->stats.bandwidth_bps = bandwidth;
	m->stats.expected_downtime_ns =
	        bandwidth == 0 ? UINT64_MAX
	                       : (uint64_t)((double)(dirty * per_page) * 8.0 *
	                                    (double)NS_PER_SECOND / (double)bandwidth);
	/* Under the limit, one more round is still worth it while rounds at least halve the dirty
	 * set and the downtime it would save is over a millisecond: the geometric tail costs a
	 * few short rounds and takes the downtime far below the limit. */
	uint64_t floor = m->params.downtime_limit_ns < MIGRATION_DOWNTIME_FLOOR
	                         ? m->params.downtime_limit_ns
	                         : MIGRATION_DOWNTIME_FLOOR;
	bool halving = m->round == 0 ? dirty * 2 <= vm->nb_pages : dirty * 2 <= previous;
	if (m->stats.expected_downtime_ns <= floor ||
	    (m->stats.expected_downtime_ns <= m->params.downtime_limit_ns && !halving)) {
		/* The VM runs on while the copies in flight are acknowledged: the pause then
		 * covers only the last pages, not the window's round trip. */
		m->draining = true;
		return;
	}
	if (m->stats.expected_downtime_ns <= m->params.downtime_limit_ns) {
		m->not_shrinking = 0;
		m->round++;
		source_round_begin(m);
		return;
	}
	if (m->params.max_rounds != 0 && m->round + 1 >= m->params.max_rounds) {
		source_fail(m,
		            "did not converge in %u rounds: %lu pages dirty, %.1f ms expected "
		            "downtime over the %.1f ms limit",
		            m->params.max_rounds, (unsigned long)dirty,
		            (double)m->stats.expected_downtime_ns / 1e6,
		            (double)m->params.downtime_limit_ns / 1e6);
		return;
	}
	/* Auto-converge, as QEMU's: two rounds in a row that do not shrink the dirty set by a
	 * tenth raise the throttle. */
	if (m->round > 0 && dirty * 10 >= previous * 9) {
		if (++m->not_shrinking >= 2 && m->params.auto_converge) {
			m->not_shrinking = 0;
			if (vm->throttle_percent >= MIGRATION_THROTTLE_MAX) {
				source_fail(m,
				            "does not converge even at %u%% throttle: %lu pages "
				            "dirty, %.1f ms expected downtime over the %.1f ms "
				            "limit",
				            vm->throttle_percent, (unsigned long)dirty,
				            (double)m->stats.expected_downtime_ns / 1e6,
				            (double)m->params.downtime_limit_ns / 1e6);
				return;
			}
			uint32_t throttle =
			        vm->throttle_percent == 0
			                ? MIGRATION_THROTTLE_FIRST
			                : vm->throttle_percent + MIGRATION_THROTTLE_STEP;
			if (throttle > MIGRATION_THROTTLE_MAX)
				throttle = MIGRATION_THROTTLE_MAX;
			vm->throttle_percent = throttle;
			m->stats.throttle_percent = throttle;
			MIG_LOG(INFO, "%u: %s: rounds do not shrink, throttle %u%%", m->id,
			        m->vm_name, throttle);
		}
	} else {
		m->not_shrinking = 0;
	}
	m->round++;
	source_round_begin(m);
}

static void source_send_state(struct migration *m, uint64_t now)
{
	uint8_t blob[VM_STATE_MAX];
	size_t len = machine_save_state(&m->vm->machine, blob);
	struct proto_state state = {
	        .memory_hash = rte_cpu_to_be_64(
	                m->params.verify ? machine_memory_hash(&m->vm->machine) : 0),
	        .final_round = rte_cpu_to_be_32(m->round),
	        .verify = m->params.verify,
	        .running = m->was_running,
	};

	if (channel_send(&m->channel, PROTO_STATE, &state, sizeof(state), blob, (uint16_t)len,
	                 now) >= 0) {
		m->state_sent = true;
		m->last_handshake_ns = now;
	}
}

static void source_preflight_poll(struct migration *m, uint64_t now);

static void source_poll(struct migration *m, uint64_t now)
{
	if (m->status == MIGRATION_SETUP) {
		if (now - m->stats.start_ns > MIGRATION_SETUP_TIMEOUT) {
			if (!m->checks[MIGRATION_CHECK_REACHABLE].done)
				check_record(m, MIGRATION_CHECK_REACHABLE, false, "an answer",
				             "no answer in %.0f s",
				             (double)MIGRATION_SETUP_TIMEOUT / 1e9);
			source_fail(m, "the destination did not answer the handshake in %.0f s",
			            (double)MIGRATION_SETUP_TIMEOUT / 1e9);
			return;
		}
		if (now - m->last_handshake_ns >= MIGRATION_RESEND_NS) {
			m->last_handshake_ns = now;
			if (m->channel_ready) {
				struct proto_auth auth;
				proto_proof(m->params.key, m->params.key_len, "src", m->hello_nonce,
				            m->challenge_nonce, m->session, auth.proof);
				send_to_peer(m, PROTO_AUTH, &auth, sizeof(auth));
				m->auth_sent_ns = now;
			} else {
				send_to_peer(m, PROTO_HELLO, &m->hello, sizeof(m->hello));
				m->hello_sent_ns = now;
			}
		}
		return;
	}
	channel_poll(&m->channel, now);
	if (!channel_idle(&m->channel) && now - m->last_rx_ns > MIGRATION_PEER_TIMEOUT) {
		source_fail(m, "the destination stopped answering (%.1f s without an ack)",
		            (double)(now - m->last_rx_ns) / 1e9);
		return;
	}
	if (m->status == MIGRATION_PREFLIGHT) {
		source_preflight_poll(m, now);
		return;
	}
	if (m->draining) {
		if (channel_idle(&m->channel)) {
			m->draining = false;
			source_switchover(m, now);
		}
		return;
	}
	if (m->state_sent) {
		if (!channel_idle(&m->channel))
			return;
		if (now - m->last_rx_ns > MIGRATION_PEER_TIMEOUT) {
			source_fail(m, "no confirmation from the destination in %.1f s",
			            (double)(now - m->last_rx_ns) / 1e9);
			return;
		}
		/* The destination holds the state but its CONFIRM is late: a bare STATE makes
		 * it confirm again. */
		if (now - m->last_handshake_ns >= MIGRATION_RESEND_NS) {
			struct proto_state nudge = {0};
			m->last_handshake_ns = now;
			send_to_peer(m, PROTO_STATE, &nudge, sizeof(nudge));
		}
		return;
	}
	if (!source_send_round(m, now))
		return;
	if (m->status == MIGRATION_ACTIVE) {
		source_round_end(m, now);
		return;
	}
	/* The last round is out: the vCPU state goes once every page copy is acknowledged. */
	if (channel_idle(&m->channel))
		source_send_state(m, now);
}

static void source_on_challenge(struct migration *m, const struct proto_message *msg)
{
	struct proto_challenge challenge;
	uint8_t expected[PROTO_MAC_LEN];

	memcpy(&challenge, msg->body, sizeof(challenge));
	if (m->channel_ready) /* the answer to a resent HELLO: AUTH goes again on its timer */
		return;
	if (proto_proof(m->params.key, m->params.key_len, "dst", m->hello_nonce, challenge.nonce,
	                m->session, expected) < 0 ||
	    !proto_proof_equal(expected, challenge.proof)) {
		count_drop(m->engine, MIGRATION_DROP_AUTH);
		source_fail(m, "the destination could not prove the key (a different key file?)");
		return;
	}
	memcpy(m->challenge_nonce, challenge.nonce, PROTO_NONCE_LEN);
	uint64_t now_rx = now_ns(m->engine);
	m->rtt_ns = now_rx - m->hello_sent_ns;
	check_record(m, MIGRATION_CHECK_REACHABLE, true, "an answer", "answered in %.3f ms",
	             (double)m->rtt_ns / 1e6);
	struct channel_config config = {
	        .rate_bps = m->params.max_bandwidth_bps,
	        .session = m->session,
	        .overhead_bytes = LINK_OVERHEAD,
	        .seal = channel_seal,
	        .seal_ctx = m,
	};
	uint64_t now = now_ns(m->engine);
	if (session_seal_begin(m, m->params.key, m->params.key_len) < 0) {
		source_fail(m, "cannot derive the session's data key");
		return;
	}
	if (channel_init(&m->channel, &config, channel_link_send, m, now) < 0) {
		source_fail(m, "out of memory for the channel");
		return;
	}
	m->channel_ready = true;
	m->last_handshake_ns = 0; /* AUTH at once */
	source_poll(m, now);
}

/* Round 0 copies everything: the log so far is moot, and starts afresh now. */
static void source_precopy_begin(struct migration *m, uint64_t now)
{
	struct machine *vm = &m->vm->machine;

	m->to_send = malloc(machine_bitmap_words(vm) * sizeof(uint64_t));
	if (m->to_send == NULL) {
		source_fail(m, "out of memory for the dirty bitmap");
		return;
	}
	machine_dirty_log_read_and_clear(vm, m->to_send);
	memset(m->to_send, 0xff, machine_bitmap_words(vm) * sizeof(uint64_t));
	if (vm->nb_pages % 64 != 0)
		m->to_send[vm->nb_pages / 64] = (1ull << (vm->nb_pages % 64)) - 1;
	m->status = MIGRATION_ACTIVE;
	m->active_start_ns = now;
	m->active_start_bytes = m->channel.stats.wire_bytes_sent;
	m->round = 0;
	source_round_begin(m);
}

/* Fails the session on the first pre-flight item that failed; true if one did. */
static bool source_preflight_failed(struct migration *m)
{
	for (unsigned int i = 0; i < MIGRATION_CHECK_MAX; i++) {
		const struct migration_check *c = &m->checks[i];
		if (c->done && !c->ok) {
			source_fail(m, "pre-flight: %s is %s, not %s", migration_check_names[i],
			            c->value, c->limit);
			return true;
		}
	}
	return false;
}

static void source_on_accept(struct migration *m, const struct proto_message *msg, uint64_t now)
{
	struct proto_accept accept;

	if (m->status != MIGRATION_SETUP || !m->channel_ready) {
		count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	memcpy(&accept, msg->body, sizeof(accept));
	m->peer_mtu = rte_be_to_cpu_16(accept.mtu);
	m->peer_free_mb = rte_be_to_cpu_32(accept.free_memory_mb);
	m->stats.setup_ns = now - m->stats.start_ns;
	if (now - m->auth_sent_ns < m->rtt_ns)
		m->rtt_ns = now - m->auth_sent_ns;
	char limit[32];
	check_record(m, MIGRATION_CHECK_ADMISSION, true, "admitted",
	             "admitted; %u MiB available there for %lu MiB", m->peer_free_mb,
	             (unsigned long)(m->vm->machine.nb_pages * VM_PAGE_SIZE >> 20));
	snprintf(limit, sizeof(limit), "= %u", m->vmk->netif.mtu);
	check_record(m, MIGRATION_CHECK_MTU, m->peer_mtu == m->vmk->netif.mtu, limit, "%u",
	             m->peer_mtu);
	/* Messages fit the smaller MTU of the two, so a forced migration still gets through. */
	if (m->peer_mtu != 0 && m->peer_mtu < m->vmk->netif.mtu)
		m->max_data = page_bytes_per_message(m->peer_mtu);
	if (m->params.force && !m->params.check_only) {
		source_precopy_begin(m, now);
		return;
	}
	/* What fails already needs no measuring. */
	if (!m->params.force && source_preflight_failed(m))
		return;
	m->status = MIGRATION_PREFLIGHT;
	m->probe_start_ns = now;
	m->probe_start_bytes = m->channel.stats.wire_bytes_sent;
	m->probe_sent = false;
}

/* The link is measured with filler through the channel, as the pages will go: at its pacer,
 * with its window. Then every item is judged. */
static void source_preflight_poll(struct migration *m, uint64_t now)
{
	static const uint8_t filler[PROTO_PAGE_SIZE];
	unsigned int budget = SEND_BUDGET;

	while (!m->probe_sent && budget-- > 0) {
		if (m->channel.stats.wire_bytes_sent - m->probe_start_bytes >=
		            MIGRATION_PROBE_BYTES ||
		    now - m->probe_start_ns >= MIGRATION_PROBE_NS) {
			m->probe_sent = true;
			break;
		}
		if (channel_send(&m->channel, PROTO_PROBE, NULL, 0, filler, m->max_data, now) < 0)
			return;
	}
	if (!m->probe_sent || !channel_idle(&m->channel))
		return;
	uint64_t bytes = m->channel.stats.wire_bytes_sent - m->probe_start_bytes;
	uint64_t bps = (uint64_t)((double)bytes * 8.0 * (double)NS_PER_SECOND /
	                          (double)(now - m->probe_start_ns));
	char limit[32];
	snprintf(limit, sizeof(limit), ">= %.0f Mbit/s", (double)m->params.min_bandwidth_bps / 1e6);
	check_record(m, MIGRATION_CHECK_BANDWIDTH, bps >= m->params.min_bandwidth_bps, limit,
	             "%.0f Mbit/s (%.1f MB in %.1f ms)", (double)bps / 1e6, (double)bytes / 1e6,
	             (double)(now - m->probe_start_ns) / 1e6);
	/* The round trip: the shortest of the handshake's and the filler's acknowledgements, so
	 * one late wake-up of either worker does not fail it. */
	uint64_t rtt = m->rtt_ns;
	if (m->channel.stats.min_rtt_ns != 0 && m->channel.stats.min_rtt_ns < rtt)
		rtt = m->channel.stats.min_rtt_ns;
	snprintf(limit, sizeof(limit), "< %g ms", (double)m->params.rtt_limit_ns / 1e6);
	check_record(m, MIGRATION_CHECK_RTT, rtt < m->params.rtt_limit_ns, limit, "%.3f ms",
	             (double)rtt / 1e6);
	if (!m->params.force && source_preflight_failed(m))
		return;
	if (m->params.check_only) {
		set_reason(m, "pre-flight check %s",
		           migration_checks_passed(m) ? "passed" : "failed");
		source_end(m, migration_checks_passed(m) ? MIGRATION_COMPLETED : MIGRATION_FAILED);
		return;
	}
	source_precopy_begin(m, now);
}

static void source_on_confirm(struct migration *m, const struct proto_message *msg, uint64_t now)
{
	struct proto_confirm confirm;

	if (m->status != MIGRATION_SWITCHOVER || !m->state_sent) {
		count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	memcpy(&confirm, msg->body, sizeof(confirm));
	m->confirm_hash = rte_be_to_cpu_64(confirm.memory_hash);
	m->stats.downtime_ns = now - m->pause_ns;
	m->stats.bandwidth_bps = source_bandwidth_bps(m, now);
	m->stats.bytes_remaining = 0;
	source_end(m, MIGRATION_COMPLETED);
}

static void source_on_refuse(struct migration *m, const struct proto_message *msg)
{
	struct proto_refuse refuse;

	memcpy(&refuse, msg->body, sizeof(refuse));
	refuse.text[sizeof(refuse.text) - 1] = '\0';
	m->refused = true;
	check_record(m, MIGRATION_CHECK_ADMISSION, false, "admitted", "%s", refuse.text);
	source_fail(m, "refused by the destination: %s (%s)",
	            proto_refusal_name((enum proto_refusal)rte_be_to_cpu_32(refuse.reason)),
	            refuse.text);
}

/* Every datagram to the engine goes through here first: counted, parsed, and counted again
 * by reason if it does not parse. */
static enum proto_error engine_receive(struct migration_engine *engine, const uint8_t *payload,
                                       uint16_t len, struct proto_message *msg)
{
	enum proto_error error = proto_parse(payload, len, msg);

	engine->rx_messages++;
	if (error != PROTO_OK)
		count_drop(engine, error == PROTO_ERR_VERSION ? MIGRATION_DROP_VERSION
		                                              : MIGRATION_DROP_MALFORMED);
	return error;
}

/* Datagrams to a source session's port. */
static void source_rx(void *ctx, uint32_t src_ip, uint16_t src_port, const uint8_t *payload,
                      uint16_t len, uint16_t dst_port)
{
	struct migration *m = ctx;
	struct migration_engine *engine = m->engine;
	struct proto_message msg;
	uint64_t now = now_ns(engine);

	(void)dst_port;
	if (engine_receive(engine, payload, len, &msg) != PROTO_OK)
		return;
	if (msg.session != m->session || !migration_running(m)) {
		count_drop(engine, MIGRATION_DROP_UNKNOWN_SESSION);
		return;
	}
	if (src_ip != m->peer_ip || src_port != m->peer_port) {
		count_drop(engine, MIGRATION_DROP_WRONG_PEER);
		return;
	}
	m->last_rx_ns = now;
	switch (msg.type) {
	case PROTO_CHALLENGE:
		if (m->status == MIGRATION_SETUP)
			source_on_challenge(m, &msg);
		else
			count_drop(engine, MIGRATION_DROP_UNEXPECTED);
		break;
	case PROTO_ACCEPT:
		source_on_accept(m, &msg, now);
		break;
	case PROTO_ACK:
		if (m->channel_ready && m->status != MIGRATION_SETUP)
			channel_on_ack(&m->channel, msg.body, now);
		else
			count_drop(engine, MIGRATION_DROP_UNEXPECTED);
		break;
	case PROTO_CONFIRM:
		source_on_confirm(m, &msg, now);
		break;
	case PROTO_REFUSE:
		source_on_refuse(m, &msg);
		break;
	default:
		count_drop(engine, MIGRATION_DROP_UNEXPECTED);
		break;
	}
}

int migration_start(struct migration_engine *engine, struct vm *vm, struct iface *vmk,
                    const struct migration_params *params)
{
	if (migration_vm_busy(engine, vm))
		return -EBUSY;
	if (vmk->netif.mtu < MIGRATION_MIN_MTU)
		return -EMSGSIZE;
	struct migration *m = session_new(engine, MIGRATION_SOURCE);
	if (m == NULL)
		return -ENOSPC;
	m->params = *params;
	if (m->params.downtime_limit_ns == 0)
		m->params.downtime_limit_ns = MIGRATION_DEFAULT_LIMIT;
	if (m->params.rtt_limit_ns == 0)
		m->params.rtt_limit_ns = MIGRATION_DEFAULT_RTT;
	if (m->params.min_bandwidth_bps == 0)
		m->params.min_bandwidth_bps = MIGRATION_DEFAULT_MIN_BW;
	const struct netif *local = &vmk->netif;
	char subnet[16];
	check_record(m, MIGRATION_CHECK_SUBNET,
	             (local->ip & local->netmask) == (params->dst_ip & local->netmask), "same",
	             "%s/%u", netif_format_ipv4(local->ip & local->netmask, subnet, sizeof(subnet)),
	             local->prefix_len);
	m->vmk = vmk;
	m->vm = vm;
	m->peer_ip = params->dst_ip;
	m->peer_port = params->dst_port;
	m->max_data = page_bytes_per_message(vmk->netif.mtu);
	m->was_running = vm->machine.state == MACHINE_RUNNING;
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", vm->machine.name);
	int ret = -EADDRINUSE;
	for (uint32_t port = EPHEMERAL_FIRST; port <= 65535 && ret == -EADDRINUSE; port++) {
		ret = netif_udp_bind(&vmk->netif, (uint16_t)port, source_rx, m);
		if (ret == 0)
			m->local_port = (uint16_t)port;
	}
	uint8_t random[PROTO_NONCE_LEN] = {0};
	if (ret == 0 && (proto_nonce(m->hello_nonce) < 0 || proto_nonce(random) < 0))
		ret = -EIO;
	memcpy(&m->session, random, sizeof(m->session));
	if (ret < 0) {
		set_reason(m, "no UDP port or no randomness on %s", vmk->name);
		m->vm = NULL;
		source_end(m, MIGRATION_FAILED);
		return ret;
	}
	const struct netif *vnic = &vm->vnic.netif;
	struct proto_hello *hello = &m->hello;
	memcpy(hello->nonce, m->hello_nonce, PROTO_NONCE_LEN);
	snprintf(hello->vm_name, sizeof(hello->vm_name), "%s", vm->machine.name);
	snprintf(hello->portgroup, sizeof(hello->portgroup), "%s", vm->vnic.vport->portgroup->name);
	memcpy(hello->mac, vnic->mac.addr_bytes, 6);
	hello->prefix_len = vnic->prefix_len;
	hello->ip = vnic->ip;
	hello->memory_pages = rte_cpu_to_be_64(vm->machine.nb_pages);
	hello->announce_rounds = rte_cpu_to_be_16((uint16_t)params->announce.rounds);
	hello->announce_initial_ms =
	        rte_cpu_to_be_16((uint16_t)(params->announce.initial_ns / 1000000));
	hello->announce_step_ms = rte_cpu_to_be_16((uint16_t)(params->announce.step_ns / 1000000));
	hello->announce_garp = params->announce.garp;
	hello->flags = params->check_only ? PROTO_HELLO_CHECK_ONLY : 0;
	m->last_handshake_ns = 0; /* HELLO on the first poll */
	MIG_LOG(INFO, "%u: %s to %u.%u.%u.%u:%u from %s", m->id, m->vm_name,
	        ((uint8_t *)&m->peer_ip)[0], ((uint8_t *)&m->peer_ip)[1],
	        ((uint8_t *)&m->peer_ip)[2], ((uint8_t *)&m->peer_ip)[3], m->peer_port, vmk->name);
	return (int)m->id;
}

/* ---- destination ---- */

static struct migration_listener *listener_of(struct migration_engine *engine,
                                              const struct iface *vmk)
{
	for (unsigned int i = 0; i < MIGRATION_LISTENERS; i++)
		if (engine->listeners[i].vmk == vmk)
			return &engine->listeners[i];
	return NULL;
}

static void destination_end(struct migration *m, enum migration_status status)
{
	if (m->vm != NULL) {
		/* It never ran here: drop the copy. */
		vm_destroy(m->vm);
		free(m->vm);
		m->vm = NULL;
	}
	m->status = status;
	m->stats.end_ns = now_ns(m->engine);
	session_release(m);
	if (status != MIGRATION_COMPLETED)
		MIG_LOG(WARNING, "%u: incoming %s %s: %s", m->id, m->vm_name,
		        migration_status_name(status), m->reason);
}

static void destination_refuse(struct migration *m, enum proto_refusal reason, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void destination_refuse(struct migration *m, enum proto_refusal reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->reason, sizeof(m->reason), fmt, ap);
	va_end(ap);
	send_refusal(m->vmk, m->peer_ip, m->peer_port, m->local_port, m->session, reason, m->reason,
	             now_ns(m->engine));
	destination_end(m, MIGRATION_FAILED);
}

static bool name_or_mac_taken(struct migration_engine *engine, const struct migration *self,
                              const char *name, const struct rte_ether_addr *mac, bool *by_name)
{
	*by_name = false;
	if (engine->hooks.vm_exists != NULL &&
	    engine->hooks.vm_exists(engine->hooks.ctx, name, NULL)) {
		*by_name = true;
		return true;
	}
	if (engine->hooks.vm_exists != NULL &&
	    engine->hooks.vm_exists(engine->hooks.ctx, NULL, mac))
		return true;
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		const struct migration *o = engine->sessions[i];
		if (o == NULL || o == self || o->role != MIGRATION_DESTINATION || o->vm == NULL)
			continue;
		if (strcmp(o->vm_name, name) == 0) {
			*by_name = true;
			return true;
		}
		if (rte_is_same_ether_addr(&o->vm->vnic.netif.mac, mac))
			return true;
	}
	return false;
}

/* MemAvailable, in MiB: what the pre-flight check and admission compare a VM's size with. */
static uint32_t host_available_mb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	unsigned long kb = 0;

	if (f == NULL)
		return UINT32_MAX;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "MemAvailable: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb == 0 ? UINT32_MAX : (uint32_t)(kb / 1024);
}

/* The source proved the key: check the VM fits here, make its empty copy and accept. */
static void destination_admit(struct migration *m, uint64_t now)
{
	struct migration_engine *engine = m->engine;
	const struct proto_hello *h = &m->hello;
	struct vm_config config = {.name = m->vm_name, .prefix_len = h->prefix_len, .ip = h->ip};
	char portgroup[PROTO_NAME_LEN + 1];
	bool by_name;

	memcpy(config.mac.addr_bytes, h->mac, 6);
	snprintf(portgroup, sizeof(portgroup), "%.*s", PROTO_NAME_LEN, h->portgroup);
	uint64_t pages = rte_be_to_cpu_64(h->memory_pages);
	if (name_or_mac_taken(engine, m, m->vm_name, &config.mac, &by_name)) {
		if (by_name)
			destination_refuse(m, PROTO_REFUSE_DUPLICATE_NAME, "a VM named %s is here",
			                   m->vm_name);
		else
			destination_refuse(m, PROTO_REFUSE_DUPLICATE_MAC,
			                   "a VM with MAC %02x:%02x:%02x:%02x:%02x:%02x is here",
			                   h->mac[0], h->mac[1], h->mac[2], h->mac[3], h->mac[4],
			                   h->mac[5]);
		return;
	}
	if (engine->hooks.vm_room != NULL && !engine->hooks.vm_room(engine->hooks.ctx)) {
		destination_refuse(m, PROTO_REFUSE_NO_MEMORY, "this host runs its maximum of VMs");
		return;
	}
	struct vswitch_portgroup *pg = vswitch_portgroup_find(engine->vswitches, portgroup);
	if (pg == NULL) {
		destination_refuse(m, PROTO_REFUSE_NO_PORTGROUP, "no port group %s here",
		                   portgroup);
		return;
	}
	if (pages < 2 || pages * VM_PAGE_SIZE % (1024 * 1024) != 0 ||
	    pages * VM_PAGE_SIZE / (1024 * 1024) > VM_MAX_MEMORY_MB) {
		destination_refuse(m, PROTO_REFUSE_NO_MEMORY, "%lu pages is not a memory size here",
		                   (unsigned long)pages);
		return;
	}
	config.memory_mb = pages * VM_PAGE_SIZE / (1024 * 1024);
	uint32_t available = host_available_mb();
	if (config.memory_mb > available) {
		destination_refuse(m, PROTO_REFUSE_NO_MEMORY,
		                   "%lu MiB asked, %u MiB available here",
		                   (unsigned long)config.memory_mb, available);
		return;
	}
	struct proto_accept accept = {.mtu = rte_cpu_to_be_16(m->vmk->netif.mtu),
	                              .free_memory_mb = rte_cpu_to_be_32(available)};
	if (m->hello.flags & PROTO_HELLO_CHECK_ONLY) {
		/* A pre-flight check: admitted, and the link is all that is left to measure. */
		struct channel_config channel = {.session = m->session};
		if (channel_init(&m->channel, &channel, channel_link_send, m, now) < 0) {
			destination_refuse(m, PROTO_REFUSE_NO_MEMORY, "out of memory");
			return;
		}
		m->channel_ready = true;
		m->status = MIGRATION_PREFLIGHT;
		m->stats.setup_ns = now - m->stats.start_ns;
		send_to_peer(m, PROTO_ACCEPT, &accept, sizeof(accept));
		return;
	}
	config.workload.seed = 1;
	m->vm = calloc(1, sizeof(*m->vm));
	m->page_round = calloc(pages, sizeof(*m->page_round));
	m->page_filled = calloc(pages, sizeof(*m->page_filled));
	int ret = m->vm == NULL ? -ENOMEM
	                        : vm_create(m->vm, engine->vswitches, pg, &config, engine->pools);
	if (ret < 0) {
		free(m->vm);
		m->vm = NULL;
	}
	struct channel_config channel = {.session = m->session};
	if (ret == 0 && (m->page_round == NULL || m->page_filled == NULL ||
	                 channel_init(&m->channel, &channel, channel_link_send, m, now) < 0))
		ret = -ENOMEM;
	else if (ret == 0)
		m->channel_ready = true;
	if (ret < 0) {
		destination_refuse(m, PROTO_REFUSE_NO_MEMORY, "cannot make a %lu MiB VM: %s",
		                   (unsigned long)config.memory_mb, strerror(-ret));
		return;
	}
	m->status = MIGRATION_ACTIVE;
	m->stats.setup_ns = now - m->stats.start_ns;
	m->accept = accept;
	send_to_peer(m, PROTO_ACCEPT, &accept, sizeof(accept));
	MIG_LOG(INFO, "%u: receiving %s (%lu MiB) from %u.%u.%u.%u", m->id, m->vm_name,
	        (unsigned long)config.memory_mb, ((uint8_t *)&m->peer_ip)[0],
	        ((uint8_t *)&m->peer_ip)[1], ((uint8_t *)&m->peer_ip)[2],
	        ((uint8_t *)&m->peer_ip)[3]);
}

static void destination_on_auth(struct migration *m, const struct proto_message *msg,
                                struct migration_listener *listener, uint64_t now)
{
	struct proto_auth auth;
	uint8_t expected[PROTO_MAC_LEN];

	if (m->status == MIGRATION_ACTIVE || m->status == MIGRATION_PREFLIGHT) {
		send_to_peer(m, PROTO_ACCEPT, &m->accept, sizeof(m->accept)); /* ours was lost */
		return;
	}
	if (m->status != MIGRATION_SETUP) {
		count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	memcpy(&auth, msg->body, sizeof(auth));
	if (proto_proof(listener->key, listener->key_len, "src", m->hello_nonce, m->challenge_nonce,
	                m->session, expected) < 0 ||
	    !proto_proof_equal(expected, auth.proof)) {
		count_drop(m->engine, MIGRATION_DROP_AUTH);
		destination_refuse(m, PROTO_REFUSE_AUTH, "the source could not prove the key");
		return;
	}
	if (session_seal_begin(m, listener->key, listener->key_len) < 0) {
		destination_refuse(m, PROTO_REFUSE_BUSY, "cannot derive the session's data key");
		return;
	}
	destination_admit(m, now);
}

static void destination_send_challenge(struct migration *m, struct migration_listener *listener)
{
	struct proto_challenge challenge;

	memcpy(challenge.nonce, m->challenge_nonce, PROTO_NONCE_LEN);
	proto_proof(listener->key, listener->key_len, "dst", m->hello_nonce, m->challenge_nonce,
	            m->session, challenge.proof);
	send_to_peer(m, PROTO_CHALLENGE, &challenge, sizeof(challenge));
}

static void destination_on_hello(struct migration_engine *engine,
                                 struct migration_listener *listener,
                                 const struct proto_message *msg, uint32_t src_ip,
                                 uint16_t src_port, uint64_t now)
{
	struct migration *m = session_new(engine, MIGRATION_DESTINATION);

	if (m == NULL) {
		count_drop(engine, MIGRATION_DROP_BUSY);
		send_refusal(listener->vmk, src_ip, src_port, listener->port, msg->session,
		             PROTO_REFUSE_BUSY, "too many migrations at once", now);
		return;
	}
	memcpy(&m->hello, msg->body, sizeof(m->hello));
	m->session = msg->session;
	m->vmk = listener->vmk;
	m->peer_ip = src_ip;
	m->peer_port = src_port;
	m->local_port = listener->port;
	snprintf(m->vm_name, sizeof(m->vm_name), "%.*s", VM_NAME_MAX - 1, m->hello.vm_name);
	memcpy(m->hello_nonce, m->hello.nonce, PROTO_NONCE_LEN);
	if (proto_nonce(m->challenge_nonce) < 0) {
		destination_refuse(m, PROTO_REFUSE_BUSY, "no randomness");
		return;
	}
	destination_send_challenge(m, listener);
}

/* Applies a page copy unless a newer one is held. */
static void destination_on_pages(struct migration *m, const struct proto_message *msg)
{
	struct proto_pages p;

	memcpy(&p, msg->body, sizeof(p));
	uint64_t page = rte_be_to_cpu_64(p.page);
	uint32_t round = rte_be_to_cpu_32(p.round);
	uint16_t offset = rte_be_to_cpu_16(p.offset);
	uint16_t len = rte_be_to_cpu_16(p.data_len);
	/* proto_parse checked offset + len against the page; the page against the VM is ours. */
	if (page >= m->vm->machine.nb_pages) {
		count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
		return;
	}
	/* page_round holds round + 1, so 0 means nothing arrived yet. */
	uint32_t held = m->page_round[page];
	if (held > round + 1) {
		count_drop(m->engine, MIGRATION_DROP_STALE_COPY);
		return;
	}
	if (held < round + 1) {
		if (m->page_filled[page] == PROTO_PAGE_SIZE)
			m->nb_complete--;
		m->page_round[page] = round + 1;
		m->page_filled[page] = 0;
	}
	machine_page_load_part(&m->vm->machine, page, offset, msg->data, len);
	m->page_filled[page] = (uint16_t)(m->page_filled[page] + len);
	if (m->page_filled[page] >= PROTO_PAGE_SIZE) {
		m->page_filled[page] = PROTO_PAGE_SIZE;
		m->nb_complete++;
		m->stats.pages_normal++;
	}
}

static void destination_on_zero_run(struct migration *m, const struct proto_message *msg)
{
	struct proto_zero_run z;

	memcpy(&z, msg->body, sizeof(z));
	uint64_t first = rte_be_to_cpu_64(z.first_page);
	uint64_t count = rte_be_to_cpu_32(z.count);
	uint32_t round = rte_be_to_cpu_32(z.round);
	if (count == 0 || first >= m->vm->machine.nb_pages ||
	    count > m->vm->machine.nb_pages - first) {
		count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
		return;
	}
	for (uint64_t page = first; page < first + count; page++) {
		if (m->page_round[page] > round + 1) {
			count_drop(m->engine, MIGRATION_DROP_STALE_COPY);
			continue;
		}
		if (m->page_filled[page] != PROTO_PAGE_SIZE)
			m->nb_complete++;
		m->page_round[page] = round + 1;
		m->page_filled[page] = PROTO_PAGE_SIZE;
		machine_page_load_zero(&m->vm->machine, page);
		m->stats.pages_zero++;
	}
}

static void destination_on_state(struct migration *m, const struct proto_message *msg, uint64_t now)
{
	struct migration_engine *engine = m->engine;
	struct proto_state state;
	struct vm *vm = m->vm;

	memcpy(&state, msg->body, sizeof(state));
	if (m->nb_complete != vm->machine.nb_pages) {
		destination_refuse(
		        m, PROTO_REFUSE_INCOMPLETE, "the state came with %lu of %lu pages",
		        (unsigned long)m->nb_complete, (unsigned long)vm->machine.nb_pages);
		return;
	}
	if (vm_load_state(vm, msg->data, msg->data_len) < 0) {
		count_drop(engine, MIGRATION_DROP_BAD_STATE);
		destination_refuse(m, PROTO_REFUSE_STATE, "the vCPU state does not load");
		return;
	}
	uint64_t hash = 0;
	if (state.verify) {
		hash = machine_memory_hash(&vm->machine);
		if (hash != rte_be_to_cpu_64(state.memory_hash)) {
			destination_refuse(m, PROTO_REFUSE_VERIFY,
			                   "memory hash %016lx differs from the source's %016lx",
			                   (unsigned long)hash,
			                   (unsigned long)rte_be_to_cpu_64(state.memory_hash));
			return;
		}
	}
	/* Commit: the VM is ours now. */
	m->vm = NULL;
	if (state.running)
		vm_resume(vm);
	struct announce_config announce = {
	        .rounds = rte_be_to_cpu_16(m->hello.announce_rounds),
	        .initial_ns = (uint64_t)rte_be_to_cpu_16(m->hello.announce_initial_ms) * 1000000,
	        .step_ns = (uint64_t)rte_be_to_cpu_16(m->hello.announce_step_ms) * 1000000,
	        .garp = m->hello.announce_garp != 0,
	};
	if (announce.rounds > 0)
		announce_start(&vm->announce, &vm->vnic, engine->loop, &announce);
	m->confirm_hash = hash;
	m->status = MIGRATION_COMPLETED;
	m->stats.end_ns = now;
	struct proto_confirm confirm = {.memory_hash = rte_cpu_to_be_64(hash),
	                                .resumed_ns = rte_cpu_to_be_64(now)};
	send_to_peer(m, PROTO_CONFIRM, &confirm, sizeof(confirm));
	if (engine->hooks.vm_arrived != NULL)
		engine->hooks.vm_arrived(engine->hooks.ctx, vm);
	else {
		vm_destroy(vm);
		free(vm);
	}
	/* The channel stays a while, so a lost CONFIRM is sent again for a resent STATE. */
	MIG_LOG(INFO, "%u: %s arrived and runs (%lu pages, %lu zero)", m->id, m->vm_name,
	        (unsigned long)m->stats.pages_normal, (unsigned long)m->stats.pages_zero);
}

static void destination_on_data(struct migration *m, const struct proto_message *msg,
                                const uint8_t *raw, uint16_t raw_len, uint64_t now)
{
	if (m->status == MIGRATION_COMPLETED && msg->type == PROTO_STATE && m->channel_ready) {
		/* The source did not hear our CONFIRM. */
		count_drop(m->engine, MIGRATION_DROP_DUPLICATE);
		struct proto_confirm confirm = {.memory_hash = rte_cpu_to_be_64(m->confirm_hash),
		                                .resumed_ns = rte_cpu_to_be_64(m->stats.end_ns)};
		m->ack_pending = true;
		send_to_peer(m, PROTO_CONFIRM, &confirm, sizeof(confirm));
		return;
	}
	/* Nothing reaches memory, nor is acknowledged, without the session's tag. */
	size_t sealed = (size_t)(msg->data - raw) + msg->data_len;
	if (!m->sealer_ready || raw_len != sealed + PROTO_TAG_LEN ||
	    !proto_unseal(&m->sealer, raw, sealed, raw + sealed)) {
		count_drop(m->engine, MIGRATION_DROP_AUTH);
		return;
	}
	bool probing = m->status == MIGRATION_PREFLIGHT || msg->type == PROTO_PROBE;
	if ((m->status != MIGRATION_ACTIVE && m->status != MIGRATION_PREFLIGHT) ||
	    !m->channel_ready || (m->vm == NULL && msg->type != PROTO_PROBE) ||
	    (probing && msg->type != PROTO_PROBE)) {
		count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	/* Page numbers are checked before the sequence number is taken, so a bad message is
	 * never acknowledged and never applied. */
	if (msg->type == PROTO_PAGES) {
		struct proto_pages p;
		memcpy(&p, msg->body, sizeof(p));
		if (rte_be_to_cpu_64(p.page) >= m->vm->machine.nb_pages) {
			count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
			return;
		}
	}
	int32_t ahead = (int32_t)(msg->seq - m->channel.cumulative);
	if (!channel_accept(&m->channel, msg->seq)) {
		count_drop(m->engine, ahead < CHANNEL_WINDOW ? MIGRATION_DROP_DUPLICATE
		                                             : MIGRATION_DROP_OUT_OF_WINDOW);
		m->ack_pending = true;
		return;
	}
	m->ack_pending = true;
	switch (msg->type) {
	case PROTO_PAGES:
		destination_on_pages(m, msg);
		break;
	case PROTO_ZERO_RUN:
		destination_on_zero_run(m, msg);
		break;
	case PROTO_STATE:
		destination_on_state(m, msg, now);
		break;
	default:
		break;
	}
}

/* Datagrams to a listening port. */
static void listener_rx(void *ctx, uint32_t src_ip, uint16_t src_port, const uint8_t *payload,
                        uint16_t len, uint16_t dst_port)
{
	struct migration_listener *listener = ctx;
	struct migration_engine *engine = listener->engine;
	struct proto_message msg;
	uint64_t now = now_ns(engine);

	(void)dst_port;
	enum proto_error error = engine_receive(engine, payload, len, &msg);
	if (error == PROTO_ERR_VERSION) {
		/* Tell a source of another version why, so it does not wait for a timeout. */
		struct proto_header h;
		memcpy(&h, payload, sizeof(h));
		if (h.type == PROTO_HELLO)
			send_refusal(listener->vmk, src_ip, src_port, listener->port,
			             rte_be_to_cpu_64(h.session), PROTO_REFUSE_VERSION,
			             "this host speaks protocol version 1", now);
	}
	if (error != PROTO_OK)
		return;
	struct migration *m = NULL;
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *o = engine->sessions[i];
		if (o != NULL && o->role == MIGRATION_DESTINATION && o->session == msg.session &&
		    (migration_running(o) || o->channel_ready)) {
			m = o;
			break;
		}
	}
	if (m == NULL) {
		if (msg.type == PROTO_HELLO)
			destination_on_hello(engine, listener, &msg, src_ip, src_port, now);
		else
			count_drop(engine, MIGRATION_DROP_UNKNOWN_SESSION);
		return;
	}
	if (src_ip != m->peer_ip || src_port != m->peer_port || m->vmk != listener->vmk) {
		count_drop(engine, MIGRATION_DROP_WRONG_PEER);
		return;
	}
	m->last_rx_ns = now;
	switch (msg.type) {
	case PROTO_HELLO:
		if (m->status == MIGRATION_SETUP)
			destination_send_challenge(m, listener); /* our CHALLENGE was lost */
		else
			count_drop(engine, MIGRATION_DROP_DUPLICATE);
		break;
	case PROTO_AUTH:
		destination_on_auth(m, &msg, listener, now);
		break;
	case PROTO_PAGES:
	case PROTO_ZERO_RUN:
	case PROTO_STATE:
	case PROTO_PROBE:
		destination_on_data(m, &msg, payload, len, now);
		break;
	case PROTO_CANCEL:
		if (m->status == MIGRATION_PREFLIGHT) {
			set_reason(m, "pre-flight check");
			destination_end(m, MIGRATION_COMPLETED);
		} else if (migration_running(m)) {
			set_reason(m, "the source cancelled");
			destination_end(m, MIGRATION_CANCELLED);
		} else {
			count_drop(engine, MIGRATION_DROP_UNEXPECTED);
		}
		break;
	default:
		count_drop(engine, MIGRATION_DROP_UNEXPECTED);
		break;
	}
}

static void destination_poll(struct migration *m, uint64_t now)
{
	if (m->ack_pending && m->channel_ready) {
		struct proto_ack ack;
		channel_make_ack(&m->channel, &ack);
		send_to_peer(m, PROTO_ACK, &ack, sizeof(ack));
		m->ack_pending = false;
	}
	if (m->status == MIGRATION_COMPLETED) {
		if (now - m->stats.end_ns > MIGRATION_LINGER_NS)
			session_release(m);
		return;
	}
	uint64_t timeout =
	        m->status == MIGRATION_SETUP ? MIGRATION_SETUP_TIMEOUT : MIGRATION_PEER_TIMEOUT;
	if (now - m->last_rx_ns > timeout) {
		set_reason(m, "the source went silent for %.1f s",
		           (double)(now - m->last_rx_ns) / 1e9);
		destination_end(m, MIGRATION_FAILED);
	}
}

/* ---- the engine ---- */

unsigned int migration_poll(void *arg)
{
	struct migration_engine *engine = arg;
	unsigned int running = 0;
	uint64_t now = now_ns(engine);

	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = engine->sessions[i];
		if (m == NULL)
			continue;
		if (m->role == MIGRATION_SOURCE && migration_running(m))
			source_poll(m, now);
		else if (m->role == MIGRATION_DESTINATION &&
		         (migration_running(m) || m->channel_ready))
			destination_poll(m, now);
		running += migration_running(m);
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
	return loop_poller_add(loop, "migration", LOOP_POLLER_DATAPLANE, migration_poll, engine);
}

void migration_engine_fini(struct migration_engine *engine)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = engine->sessions[i];
		if (m == NULL)
			continue;
		if (migration_running(m)) {
			set_reason(m, "the host shuts down");
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
                     const uint8_t *key, uint16_t key_len)
{
	struct migration_listener *listener = listener_of(engine, vmk);

	if (key_len < MIGRATION_KEY_MIN || key_len > MIGRATION_KEY_MAX)
		return -EINVAL;
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

int migration_cancel(struct migration_engine *engine, uint32_t id)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = engine->sessions[i];
		if (m == NULL || m->id != id)
			continue;
		if (!migration_running(m))
			return -EALREADY;
		set_reason(m, "cancelled by the operator");
		session_end(m, MIGRATION_CANCELLED);
		return 0;
	}
	return -ENOENT;
}

const struct migration *migration_find(const struct migration_engine *engine, uint32_t id)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++)
		if (engine->sessions[i] != NULL && engine->sessions[i]->id == id)
			return engine->sessions[i];
	return NULL;
}

bool migration_vm_busy(const struct migration_engine *engine, const struct vm *vm)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		const struct migration *m = engine->sessions[i];
		if (m != NULL && m->vm == vm && migration_running(m))
			return true;
	}
	return false;
}

int migration_key_load(const char *path, uint8_t *key, uint16_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	ssize_t len = read(fd, key, size);
	int err = errno;
	uint8_t extra;
	ssize_t more = len >= 0 ? read(fd, &extra, 1) : 0;
	close(fd);
	if (len < 0)
		return -err;
	while (len > 0 && (key[len - 1] == '\n' || key[len - 1] == '\r'))
		len--;
	if (more > 0 || len < MIGRATION_KEY_MIN)
		return -EINVAL;
	return (int)len;
}
