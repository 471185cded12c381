/* The destination of a live migration: admission, pages applied by round, the vCPU state, the
 * commit, the confirmation and the announce. */
#include "destination.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

#include "migrate/session.h"
#include "vswitch/iface.h"
#include "vswitch/vswitch.h"

void destination_end(struct migration *m, enum migration_status status)
{
	if (m->vm != NULL) {
		/* It never ran here: drop the copy. */
		vm_destroy(m->vm);
		free(m->vm);
		m->vm = NULL;
	}
	m->status = status;
	m->stats.end_ns = session_now_ns(m->engine);
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
	session_vset_reason(m, fmt, ap);
	va_end(ap);
	/* Sealed once the keys exist, so a source past its handshake can trust it. */
	struct proto_refuse refuse = {.reason = rte_cpu_to_be_32(reason)};
	snprintf(refuse.text, sizeof(refuse.text), "%.*s", (int)sizeof(refuse.text) - 1, m->reason);
	session_send_control(m, PROTO_REFUSE, &refuse, sizeof(refuse));
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

/* Whether the VM the HELLO describes may come here: name and MAC free, room for one more VM, its
 * port group, a memory size this host has. Fills config, the port group and the memory
 * available; refuses the session and returns false if not. */
static bool destination_admissible(struct migration *m, struct vm_config *config,
                                   struct vswitch_portgroup **pg, uint32_t *available)
{
	struct migration_engine *engine = m->engine;
	const struct proto_hello *h = &m->hello;
	char portgroup[PROTO_NAME_LEN + 1];
	bool by_name;

	memcpy(config->mac.addr_bytes, h->mac, 6);
	snprintf(portgroup, sizeof(portgroup), "%.*s", PROTO_NAME_LEN, h->portgroup);
	uint64_t pages = rte_be_to_cpu_64(h->memory_pages);
	if (name_or_mac_taken(engine, m, m->vm_name, &config->mac, &by_name)) {
		if (by_name)
			destination_refuse(m, PROTO_REFUSE_DUPLICATE_NAME, "a VM named %s is here",
			                   m->vm_name);
		else
			destination_refuse(m, PROTO_REFUSE_DUPLICATE_MAC,
			                   "a VM with MAC %02x:%02x:%02x:%02x:%02x:%02x is here",
			                   h->mac[0], h->mac[1], h->mac[2], h->mac[3], h->mac[4],
			                   h->mac[5]);
		return false;
	}
	if (engine->hooks.vm_room != NULL && !engine->hooks.vm_room(engine->hooks.ctx)) {
		destination_refuse(m, PROTO_REFUSE_NO_MEMORY, "this host runs its maximum of VMs");
		return false;
	}
	*pg = vswitch_portgroup_find(engine->vswitches, portgroup);
	if (*pg == NULL) {
		destination_refuse(m, PROTO_REFUSE_NO_PORTGROUP, "no port group %s here",
		                   portgroup);
		return false;
	}
	if (pages < 2 || pages * VM_PAGE_SIZE % (1024 * 1024) != 0 ||
	    pages * VM_PAGE_SIZE / (1024 * 1024) > VM_MAX_MEMORY_MB) {
		destination_refuse(m, PROTO_REFUSE_NO_MEMORY, "%lu pages is not a memory size here",
		                   (unsigned long)pages);
		return false;
	}
	config->memory_mb = pages * VM_PAGE_SIZE / (1024 * 1024);
	*available = engine->hooks.available_mb != NULL
	                     ? engine->hooks.available_mb(engine->hooks.ctx)
	                     : UINT32_MAX;
	if (config->memory_mb > *available) {
		destination_refuse(m, PROTO_REFUSE_NO_MEMORY,
		                   "%lu MiB asked, %u MiB available here",
		                   (unsigned long)config->memory_mb, *available);
		return false;
	}
	return true;
}

/* The source proved the key: check the VM fits here, make its empty copy and accept. */
static void destination_admit(struct migration *m, uint64_t now)
{
	struct migration_engine *engine = m->engine;
	const struct proto_hello *h = &m->hello;
	struct vm_config config = {.name = m->vm_name, .prefix_len = h->prefix_len, .ip = h->ip};
	struct vswitch_portgroup *pg;
	uint32_t available;

	if (!destination_admissible(m, &config, &pg, &available))
		return;
	struct proto_accept accept = {.mtu = rte_cpu_to_be_16(m->vmk->netif.mtu),
	                              .free_memory_mb = rte_cpu_to_be_32(available)};
	if (m->hello.flags & PROTO_HELLO_CHECK_ONLY) {
		/* A pre-flight check: admitted, and the link is all that is left to measure. */
		struct channel_config channel = {.session = m->session};
		if (channel_init(&m->channel, &channel, session_link_send, m, now) < 0) {
			destination_refuse(m, PROTO_REFUSE_NO_MEMORY, "out of memory");
			return;
		}
		m->channel_ready = true;
		m->status = MIGRATION_PREFLIGHT;
		m->stats.setup_ns = now - m->stats.start_ns;
		session_send_control(m, PROTO_ACCEPT, &accept, sizeof(accept));
		return;
	}
	uint64_t pages = config.memory_mb * (1024 * 1024 / VM_PAGE_SIZE);
	config.workload.seed = 1;
	m->vm = calloc(1, sizeof(*m->vm));
	m->destination.page_round = calloc(pages, sizeof(*m->destination.page_round));
	m->destination.page_filled = calloc(pages, sizeof(*m->destination.page_filled));
	int ret = m->vm == NULL ? -ENOMEM
	                        : vm_create(m->vm, engine->vswitches, pg, &config, engine->pools);
	if (ret < 0) {
		free(m->vm);
		m->vm = NULL;
	}
	struct channel_config channel = {.session = m->session};
	if (ret == 0 && (m->destination.page_round == NULL || m->destination.page_filled == NULL ||
	                 channel_init(&m->channel, &channel, session_link_send, m, now) < 0))
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
	m->destination.accept = accept;
	session_send_control(m, PROTO_ACCEPT, &accept, sizeof(accept));
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

	memcpy(&auth, msg->body, sizeof(auth));
	bool proven = proto_proof(listener->key, listener->key_len, "src", m->hello_nonce,
	                          m->challenge_nonce, m->session, expected) == 0 &&
	              proto_proof_equal(expected, auth.proof);
	if (!proven) {
		session_count_drop(m->engine, MIGRATION_DROP_AUTH);
		if (m->status == MIGRATION_SETUP)
			destination_refuse(m, PROTO_REFUSE_AUTH,
			                   "the source could not prove the key");
		return;
	}
	m->last_rx_ns = now;
	if (m->status == MIGRATION_ACTIVE || m->status == MIGRATION_PREFLIGHT) {
		/* The source's AUTH again: ours was lost. */
		session_send_control(m, PROTO_ACCEPT, &m->destination.accept,
		                     sizeof(m->destination.accept));
		return;
	}
	if (m->status != MIGRATION_SETUP) {
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
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
	session_send(m, PROTO_CHALLENGE, &challenge, sizeof(challenge));
}

void destination_on_hello(struct migration_engine *engine, struct migration_listener *listener,
                          const struct proto_message *msg, uint32_t src_ip, uint16_t src_port,
                          uint64_t now)
{
	struct migration *m = session_new(engine, MIGRATION_DESTINATION);

	if (m == NULL) {
		session_count_drop(engine, MIGRATION_DROP_BUSY);
		session_send_refusal(listener->vmk, src_ip, src_port, listener->port, msg->session,
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
		session_count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
		return;
	}
	/* page_round holds round + 1, so 0 means nothing arrived yet. */
	uint32_t held = m->destination.page_round[page];
	if (held > round + 1) {
		session_count_drop(m->engine, MIGRATION_DROP_STALE_COPY);
		return;
	}
	if (held < round + 1) {
		if (m->destination.page_filled[page] == PROTO_PAGE_SIZE)
			m->destination.nb_complete--;
		m->destination.page_round[page] = round + 1;
		m->destination.page_filled[page] = 0;
	}
	machine_page_load_part(&m->vm->machine, page, offset, msg->data, len);
	m->destination.page_filled[page] = (uint16_t)(m->destination.page_filled[page] + len);
	if (m->destination.page_filled[page] >= PROTO_PAGE_SIZE) {
		m->destination.page_filled[page] = PROTO_PAGE_SIZE;
		m->destination.nb_complete++;
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
		session_count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
		return;
	}
	for (uint64_t page = first; page < first + count; page++) {
		if (m->destination.page_round[page] > round + 1) {
			session_count_drop(m->engine, MIGRATION_DROP_STALE_COPY);
			continue;
		}
		if (m->destination.page_filled[page] != PROTO_PAGE_SIZE)
			m->destination.nb_complete++;
		m->destination.page_round[page] = round + 1;
		m->destination.page_filled[page] = PROTO_PAGE_SIZE;
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
	if (m->destination.nb_complete != vm->machine.nb_pages) {
		destination_refuse(m, PROTO_REFUSE_INCOMPLETE,
		                   "the state came with %lu of %lu pages",
		                   (unsigned long)m->destination.nb_complete,
		                   (unsigned long)vm->machine.nb_pages);
		return;
	}
	if (vm_load_state(vm, msg->data, msg->data_len) < 0) {
		session_count_drop(engine, MIGRATION_DROP_BAD_STATE);
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
	session_send_control(m, PROTO_CONFIRM, &confirm, sizeof(confirm));
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
	if (msg->type == PROTO_STATE && msg->seq > PROTO_CONTROL_SEQ_BASE) {
		/* A sealed nudge: the source did not hear our CONFIRM. */
		if (!session_open_control(m, msg, raw, raw_len))
			return;
		m->last_rx_ns = now;
		if (m->status != MIGRATION_COMPLETED || !m->channel_ready) {
			session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
			return;
		}
		struct proto_confirm confirm = {.memory_hash = rte_cpu_to_be_64(m->confirm_hash),
		                                .resumed_ns = rte_cpu_to_be_64(m->stats.end_ns)};
		m->destination.ack_pending = true;
		session_send_control(m, PROTO_CONFIRM, &confirm, sizeof(confirm));
		return;
	}
	/* Nothing reaches memory, is acknowledged or keeps the session alive without the session's
	 * tag. */
	size_t sealed = (size_t)(msg->data - raw) + msg->data_len;
	if (!m->sealer_ready || raw_len != sealed + PROTO_TAG_LEN ||
	    !proto_unseal(&m->rx_sealer, raw, sealed, raw + sealed)) {
		session_count_drop(m->engine, MIGRATION_DROP_AUTH);
		return;
	}
	m->last_rx_ns = now;
	bool probing = m->status == MIGRATION_PREFLIGHT || msg->type == PROTO_PROBE;
	if ((m->status != MIGRATION_ACTIVE && m->status != MIGRATION_PREFLIGHT) ||
	    !m->channel_ready || (m->vm == NULL && msg->type != PROTO_PROBE) ||
	    (probing && msg->type != PROTO_PROBE)) {
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	/* Page numbers are checked before the sequence number is taken, so a bad message is
	 * never acknowledged and never applied. */
	if (msg->type == PROTO_PAGES) {
		struct proto_pages p;
		memcpy(&p, msg->body, sizeof(p));
		if (rte_be_to_cpu_64(p.page) >= m->vm->machine.nb_pages) {
			session_count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
			return;
		}
		if (rte_be_to_cpu_32(p.round) >= MIGRATION_MAX_ROUNDS) {
			session_count_drop(m->engine, MIGRATION_DROP_BAD_ROUND);
			return;
		}
	}
	if (msg->type == PROTO_ZERO_RUN) {
		struct proto_zero_run z;
		memcpy(&z, msg->body, sizeof(z));
		/* page_round holds round + 1: a round past the limit cannot overflow it. */
		if (rte_be_to_cpu_32(z.round) >= MIGRATION_MAX_ROUNDS) {
			session_count_drop(m->engine, MIGRATION_DROP_BAD_ROUND);
			return;
		}
	}
	int32_t ahead = (int32_t)(msg->seq - m->channel.cumulative);
	if (!channel_accept(&m->channel, msg->seq)) {
		session_count_drop(m->engine, ahead < CHANNEL_WINDOW
		                                      ? MIGRATION_DROP_DUPLICATE
		                                      : MIGRATION_DROP_OUT_OF_WINDOW);
		m->destination.ack_pending = true;
		return;
	}
	m->destination.ack_pending = true;
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

void destination_rx(struct migration *m, struct migration_listener *listener,
                    const struct proto_message *msg, uint32_t src_ip, uint16_t src_port,
                    const uint8_t *payload, uint16_t len, uint64_t now)
{
	if (src_ip != m->peer_ip || src_port != m->peer_port || m->vmk != listener->vmk) {
		session_count_drop(m->engine, MIGRATION_DROP_WRONG_PEER);
		return;
	}
	/* Liveness is refreshed only by what authenticates (in the handlers), so forged packets
	 * cannot keep a session alive. */
	switch (msg->type) {
	case PROTO_HELLO:
		if (m->status == MIGRATION_SETUP)
			destination_send_challenge(m, listener); /* our CHALLENGE was lost */
		else
			session_count_drop(m->engine, MIGRATION_DROP_DUPLICATE);
		break;
	case PROTO_AUTH:
		destination_on_auth(m, msg, listener, now);
		break;
	case PROTO_PAGES:
	case PROTO_ZERO_RUN:
	case PROTO_STATE:
	case PROTO_PROBE:
		destination_on_data(m, msg, payload, len, now);
		break;
	case PROTO_CANCEL:
		if (!session_open_control(m, msg, payload, len))
			break;
		m->last_rx_ns = now;
		if (m->status == MIGRATION_PREFLIGHT) {
			session_set_reason(m, "pre-flight check");
			destination_end(m, MIGRATION_COMPLETED);
		} else if (session_running(m)) {
			session_set_reason(m, "the source cancelled");
			destination_end(m, MIGRATION_CANCELLED);
		} else {
			session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		}
		break;
	default:
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		break;
	}
}

void destination_poll(struct migration *m, uint64_t now)
{
	if (m->destination.ack_pending && m->channel_ready) {
		struct proto_ack ack;
		channel_make_ack(&m->channel, &ack);
		session_send_control(m, PROTO_ACK, &ack, sizeof(ack));
		m->destination.ack_pending = false;
	}
	if (m->status == MIGRATION_COMPLETED) {
		if (now - m->stats.end_ns > MIGRATION_LINGER_NS)
			session_release(m);
		return;
	}
	uint64_t timeout =
	        m->status == MIGRATION_SETUP ? MIGRATION_SETUP_TIMEOUT : MIGRATION_PEER_TIMEOUT;
	if (now - m->last_rx_ns > timeout) {
		session_set_reason(m, "the source went silent for %.1f s",
		                   (double)(now - m->last_rx_ns) / 1e9);
		destination_end(m, MIGRATION_FAILED);
	}
}
