/* The destination of a live migration: admission, pages applied by round, the vCPU state, the
 * commit, the confirmation and the announce. */
#include "destination.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rte_byteorder.h>

#include "migrate/forward.h"
#include "migrate/session.h"
#include "vswitch/iface.h"
#include "vswitch/vswitch.h"

void destination_end(struct migration *m, enum migration_status status)
{
	/* Frames held for the VM go before the VM may. */
	forward_release(m);
	/* The helper stops before the copy's memory goes. */
	populate_fini(&m->destination.populate);
	if (m->destination.postcopy) {
		/* The VM runs here and is the host's, whatever became of its missing pages. */
		m->vm = NULL;
	} else if (m->vm != NULL) {
		/* It never ran here: drop the copy. */
		vm_destroy(m->vm);
		free(m->vm);
		m->vm = NULL;
	}
	m->status = status;
	m->stats.end_ns = session_now_ns(m->engine);
	session_release_transfer(m);
	if (status != MIGRATION_COMPLETED)
		MIG_LOG(WARNING, "%u: incoming %s %s: %s", m->id, m->vm_name,
		        migration_status_name(status), m->reason);
}

void destination_lost(struct migration *m)
{
	struct vm *vm = m->vm;

	session_set_reason(m,
	                   "resolved by the operator: the VM was lost with the source, which "
	                   "held %lu of its pages",
	                   (unsigned long)vm->machine.remote.nb_absent);
	machine_remote_end(&vm->machine);
	destination_end(m, MIGRATION_LOST);
	if (m->engine->hooks.vm_departed != NULL)
		m->engine->hooks.vm_departed(m->engine->hooks.ctx, vm);
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

/* A VM with a disk comes only to a host that mounts its datastore and sees the disk there, as
 * vMotion's compatibility check asks that the destination reach the VM's files. */
static bool destination_disk_reachable(struct migration *m)
{
	struct migration_engine *engine = m->engine;
	const struct proto_hello *h = &m->hello;
	char datastore[PROTO_NAME_LEN + 1];
	uint32_t mib = rte_be_to_cpu_32(h->disk_mib);

	if (mib == 0)
		return true;
	snprintf(datastore, sizeof(datastore), "%.*s", PROTO_NAME_LEN, h->datastore);
	/* The size from the wire sizes the file the destination opens: the bound vm create has. */
	if (mib > VM_DISK_MAX_MB) {
		destination_refuse(m, PROTO_REFUSE_NO_DATASTORE,
		                   "a %u MiB disk is over the %u MiB limit", mib, VM_DISK_MAX_MB);
		return false;
	}
	struct vm_disk_place *place = &m->destination.disk_place;
	int ret = engine->hooks.disk_place == NULL
	                  ? -ENOENT
	                  : engine->hooks.disk_place(engine->hooks.ctx, datastore, m->vm_name,
	                                             m->destination.disk_path, place);
	if (ret < 0) {
		destination_refuse(m, PROTO_REFUSE_NO_DATASTORE, "no datastore %s here", datastore);
		return false;
	}
	place->mb = mib;
	if (access(place->path, R_OK | W_OK) < 0) {
		destination_refuse(m, PROTO_REFUSE_NO_DATASTORE, "disk not on %s here: %s",
		                   datastore, strerror(errno));
		return false;
	}
	return true;
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
	if (h->flags & ~(PROTO_HELLO_CHECK_ONLY | PROTO_HELLO_HUGEPAGES | PROTO_HELLO_NO_POSTCOPY |
	                 PROTO_HELLO_KVM)) {
		destination_refuse(m, PROTO_REFUSE_VERSION, "HELLO flags 0x%02x unknown here",
		                   h->flags);
		return false;
	}
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
	config->backing = h->flags & PROTO_HELLO_HUGEPAGES ? MACHINE_BACKING_HUGETLB
	                                                   : MACHINE_BACKING_ANONYMOUS;
	config->backend = h->flags & PROTO_HELLO_KVM ? VM_BACKEND_KVM : VM_BACKEND_SYNTHETIC;
	*available = engine->hooks.available_mb != NULL
	                     ? engine->hooks.available_mb(engine->hooks.ctx, config->backing)
	                     : UINT32_MAX;
	if (config->memory_mb > *available) {
		destination_refuse(
		        m, PROTO_REFUSE_NO_MEMORY, "%lu MiB asked, %u MiB %savailable here",
		        (unsigned long)config->memory_mb, *available,
		        config->backing == MACHINE_BACKING_HUGETLB ? "of hugepages " : "");
		return false;
	}
	return destination_disk_reachable(m);
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
	m->destination.accept = accept;
	if (m->hello.flags & PROTO_HELLO_CHECK_ONLY) {
		/* A pre-flight check: admitted, and the link is all that is left to measure. */
		struct channel_config channel = {.session = m->session};
		if (session_channels_init(m, &channel, false, now) < 0) {
			destination_refuse(m, PROTO_REFUSE_NO_MEMORY, "out of memory");
			return;
		}
		m->status = MIGRATION_PREFLIGHT;
		m->stats.setup_ns = now - m->stats.start_ns;
		session_send_control(m, PROTO_ACCEPT, &accept, sizeof(accept));
		return;
	}
	uint64_t pages = config.memory_mb * (1024 * 1024 / VM_PAGE_SIZE);
	config.workload.seed = 1;
	m->vm = vm_alloc();
	m->destination.page_round = calloc(pages, sizeof(*m->destination.page_round));
	m->destination.page_filled = calloc(pages, sizeof(*m->destination.page_filled));
	m->destination.absent = calloc((pages + 63) / 64, sizeof(uint64_t));
	config.encryption = m->hello.encryption;
	int ret = m->vm == NULL ? -ENOMEM
	                        : vm_create(m->vm, engine->vswitches, pg, &config, engine->pools);
	if (ret < 0) {
		free(m->vm);
		m->vm = NULL;
	} else {
		m->vm->postcopy_off = (m->hello.flags & PROTO_HELLO_NO_POSTCOPY) != 0;
		/* Back soon after it left: the hold from its departure gives the MAC up. */
		forward_unpin_mac(engine, &m->vm->vnic.netif.mac);
	}
	struct channel_config channel = {.session = m->session};
	if (ret == 0 && (m->destination.page_round == NULL || m->destination.page_filled == NULL ||
	                 m->destination.absent == NULL ||
	                 populate_init(&m->destination.populate, &m->vm->machine) < 0))
		ret = -ENOMEM;
	if (ret == 0 && session_channels_init(m, &channel, false, now) < 0)
		ret = -ENOMEM;
	if (ret < 0) {
		destination_refuse(m, PROTO_REFUSE_NO_MEMORY, "cannot make a %lu MiB %s %s VM: %s",
		                   (unsigned long)config.memory_mb,
		                   machine_backing_name(config.backing),
		                   vm_backend_name(config.backend), strerror(-ret));
		return;
	}
	m->status = MIGRATION_ACTIVE;
	m->stats.setup_ns = now - m->stats.start_ns;
	session_send_control(m, PROTO_ACCEPT, &accept, sizeof(accept));
	MIG_LOG(INFO, "%u: receiving %s (%lu MiB) from %u.%u.%u.%u", m->id, m->vm_name,
	        (unsigned long)config.memory_mb, ((uint8_t *)&m->peer_ip)[0],
	        ((uint8_t *)&m->peer_ip)[1], ((uint8_t *)&m->peer_ip)[2],
	        ((uint8_t *)&m->peer_ip)[3]);
}

/* Whether a source address may have another HELLO or AUTH answered now: a token bucket per
 * address, addresses that hash alike sharing one (a spoofer flooding from every address drains
 * every bucket a little, not one peer's wholly; resetting on a new address instead would let a
 * flooder refill its own bucket by interleaving addresses that collide with it). */
static bool destination_rate_ok(struct migration_engine *engine, uint32_t src_ip, uint64_t now)
{
	uint32_t hash = src_ip * 2654435761u;
	struct migration_hello_bucket *b = &engine->hello_buckets[hash % MIGRATION_HELLO_BUCKETS];

	if (b->refill_ns == 0)
		b->tokens = MIGRATION_HELLO_BURST;
	else
		b->tokens += (double)(now - b->refill_ns) * MIGRATION_HELLO_RATE / 1e9;
	if (b->tokens > MIGRATION_HELLO_BURST)
		b->tokens = MIGRATION_HELLO_BURST;
	b->refill_ns = now;
	if (b->tokens < 1) {
		session_count_drop(engine, MIGRATION_DROP_RATE_LIMITED);
		return false;
	}
	b->tokens -= 1;
	return true;
}

/* The terms this listener gives a HELLO: the source's preferred cipher if offered (else any
 * both have), encrypted unless either end disables it and neither requires it. -EPERM when one
 * end requires what the other disables, -EPROTO for no common cipher or an unknown policy. */
static int destination_terms(const struct migration_listener *listener,
                             const struct proto_hello *hello, struct proto_terms *terms)
{
	enum proto_encryption vm = (enum proto_encryption)hello->encryption;
	enum proto_encryption here = listener->encryption;
	unsigned int common = hello->ciphers & PROTO_CIPHERS_ALL;

	if ((unsigned int)vm >= PROTO_ENCRYPTION_MAX || common == 0)
		return -EPROTO;
	if ((vm == PROTO_ENCRYPTION_REQUIRED && here == PROTO_ENCRYPTION_DISABLED) ||
	    (vm == PROTO_ENCRYPTION_DISABLED && here == PROTO_ENCRYPTION_REQUIRED))
		return -EPERM;
	terms->encrypt =
	        vm == PROTO_ENCRYPTION_REQUIRED || here == PROTO_ENCRYPTION_REQUIRED ||
	        (vm == PROTO_ENCRYPTION_OPPORTUNISTIC && here == PROTO_ENCRYPTION_OPPORTUNISTIC);
	terms->cipher = hello->cipher < PROTO_CIPHER_MAX && (common & (1u << hello->cipher))
	                        ? hello->cipher
	                        : (uint8_t)__builtin_ctz(common);
	terms->reserved = 0;
	return 0;
}

/* The cookie: the epoch, then a MAC over it, the HELLO and both addresses with the listener's
 * secret. Only this listener makes it, and only for this HELLO from this address. */
static void destination_cookie(const struct migration_listener *listener, uint32_t epoch,
                               const struct proto_hello *hello, uint32_t src_ip, uint16_t src_port,
                               uint64_t session, uint8_t out[PROTO_NONCE_LEN])
{
	struct proto_transcript t;
	struct proto_terms none = {0};
	uint8_t mac[PROTO_MAC_LEN];
	unsigned int mac_len = 0;
	uint32_t epoch_be = rte_cpu_to_be_32(epoch);

	session_transcript(&t, hello, &none, src_ip, src_port, listener->vmk->netif.ip,
	                   listener->port, session);
	memcpy(t.terms.nonce, &epoch_be, sizeof(epoch_be));
	HMAC(EVP_sha256(), listener->cookie_secret, sizeof(listener->cookie_secret),
	     (const uint8_t *)&t, sizeof(t), mac, &mac_len);
	memcpy(out, &epoch_be, sizeof(epoch_be));
	memcpy(out + sizeof(epoch_be), mac, PROTO_NONCE_LEN - sizeof(epoch_be));
}

static int destination_keys(const struct migration_listener *listener,
                            const struct proto_hello *hello, const struct proto_terms *terms,
                            uint32_t src_ip, uint16_t src_port, uint64_t session,
                            struct proto_keys *keys)
{
	struct proto_transcript t;

	session_transcript(&t, hello, terms, src_ip, src_port, listener->vmk->netif.ip,
	                   listener->port, session);
	return proto_keys_derive(listener->key, listener->key_len, &t, keys);
}

void destination_on_hello(struct migration_engine *engine, struct migration_listener *listener,
                          const struct proto_message *msg, uint32_t src_ip, uint16_t src_port,
                          uint64_t now)
{
	struct proto_challenge challenge = {0};
	struct proto_hello hello;
	struct proto_keys keys;
	char text[PROTO_REASON_LEN];

	engine->hellos++;
	if (!destination_rate_ok(engine, src_ip, now))
		return;
	memcpy(&hello, msg->body, sizeof(hello));
	int ret = destination_terms(listener, &hello, &challenge.terms);
	if (ret < 0) {
		session_count_drop(engine, MIGRATION_DROP_POLICY);
		snprintf(text, sizeof(text), "the VM's encryption is %s, this host's %s",
		         proto_encryption_name((enum proto_encryption)hello.encryption),
		         proto_encryption_name(listener->encryption));
		session_send_refusal(listener->vmk, src_ip, src_port, listener->port, msg->session,
		                     PROTO_REFUSE_ENCRYPTION,
		                     ret == -EPERM ? text : "no cipher in common", now);
		return;
	}
	/* Nothing is kept: the AUTH brings the HELLO back, and the cookie proves we answered it. */
	destination_cookie(listener, (uint32_t)(now / MIGRATION_COOKIE_NS), &hello, src_ip,
	                   src_port, msg->session, challenge.terms.nonce);
	if (destination_keys(listener, &hello, &challenge.terms, src_ip, src_port, msg->session,
	                     &keys) < 0)
		return;
	memcpy(challenge.proof, keys.destination_proof, PROTO_MAC_LEN);
	proto_keys_forget(&keys);
	session_send_raw(listener->vmk, src_ip, src_port, listener->port, PROTO_CHALLENGE,
	                 msg->session, &challenge, sizeof(challenge), now);
}

static bool destination_admitted_lately(const struct migration_engine *engine, uint64_t session)
{
	for (unsigned int i = 0; i < MIGRATION_ADMITTED_MAX; i++)
		if (engine->admitted[i] == session && session != 0)
			return true;
	return false;
}

void destination_on_orphan_query(struct migration_engine *engine,
                                 struct migration_listener *listener,
                                 const struct proto_message *msg, uint32_t src_ip,
                                 uint16_t src_port, uint64_t now)
{
	uint8_t buf[sizeof(struct proto_header) + sizeof(struct proto_no_session)];
	struct proto_no_session answer = {
	        .query_seq = rte_cpu_to_be_64(msg->seq),
	        .uptime_ms = rte_cpu_to_be_64((now - engine->start_ns) / 1000000),
	};

	/* A query for a session this host forgot is the source's question after a silence: it
	 * learns from the uptime whether this host restarted since (and so holds no part of the
	 * VM). Anyone can ask; the answer costs a MAC, so the rate is bounded. */
	if (!destination_rate_ok(engine, src_ip, now))
		return;
	size_t len = proto_write_header(buf, PROTO_NO_SESSION, msg->session, 0, sizeof(answer));
	memcpy(buf + len, &answer, sizeof(answer));
	if (proto_no_session_mac(listener->key, listener->key_len, buf,
	                         buf + len + offsetof(struct proto_no_session, mac)) < 0)
		return;
	netif_udp_send(&listener->vmk->netif, src_ip, src_port, listener->port, buf, sizeof(buf),
	               now);
}

void destination_on_first_auth(struct migration_engine *engine, struct migration_listener *listener,
                               const struct proto_message *msg, uint32_t src_ip, uint16_t src_port,
                               uint64_t now)
{
	struct proto_auth auth;
	struct proto_terms terms;
	struct proto_keys keys;
	uint8_t cookie[PROTO_NONCE_LEN];
	uint32_t epoch_be;

	if (!destination_rate_ok(engine, src_ip, now))
		return;
	memcpy(&auth, msg->body, sizeof(auth));
	memcpy(&epoch_be, auth.terms.nonce, sizeof(epoch_be));
	uint32_t epoch = rte_be_to_cpu_32(epoch_be),
	         current = (uint32_t)(now / MIGRATION_COOKIE_NS);
	/* The cookie first: it costs one MAC, and nothing without one costs more. */
	if (epoch != current && epoch + 1 != current) {
		session_count_drop(engine, MIGRATION_DROP_COOKIE);
		return;
	}
	destination_cookie(listener, epoch, &auth.hello, src_ip, src_port, msg->session, cookie);
	if (CRYPTO_memcmp(cookie, auth.terms.nonce, PROTO_NONCE_LEN) != 0) {
		session_count_drop(engine, MIGRATION_DROP_COOKIE);
		return;
	}
	if (destination_terms(listener, &auth.hello, &terms) < 0 ||
	    terms.cipher != auth.terms.cipher || terms.encrypt != auth.terms.encrypt) {
		session_count_drop(engine, MIGRATION_DROP_POLICY);
		return;
	}
	/* A replayed AUTH of a session admitted before, while its cookie is still good. */
	if (destination_admitted_lately(engine, msg->session)) {
		session_count_drop(engine, MIGRATION_DROP_DUPLICATE);
		return;
	}
	if (destination_keys(listener, &auth.hello, &auth.terms, src_ip, src_port, msg->session,
	                     &keys) < 0)
		return;
	if (!proto_proof_equal(keys.source_proof, auth.proof)) {
		proto_keys_forget(&keys);
		session_count_drop(engine, MIGRATION_DROP_AUTH);
		session_send_refusal(listener->vmk, src_ip, src_port, listener->port, msg->session,
		                     PROTO_REFUSE_AUTH, "the source could not prove the key", now);
		return;
	}
	struct migration *m = session_new(engine, MIGRATION_DESTINATION);
	if (m == NULL) {
		proto_keys_forget(&keys);
		session_count_drop(engine, MIGRATION_DROP_BUSY);
		session_send_refusal(listener->vmk, src_ip, src_port, listener->port, msg->session,
		                     PROTO_REFUSE_BUSY, "too many migrations at once", now);
		return;
	}
	engine->admitted[engine->admitted_next++ % MIGRATION_ADMITTED_MAX] = msg->session;
	/* The session began with the AUTH that made it (session_new read the clock after it). */
	m->stats.start_ns = now;
	m->hello = auth.hello;
	m->terms = auth.terms;
	memcpy(m->source_proof, auth.proof, PROTO_MAC_LEN);
	m->session = msg->session;
	m->vmk = listener->vmk;
	m->peer_ip = src_ip;
	m->peer_port = src_port;
	m->local_port = listener->port;
	m->last_rx_ns = now;
	snprintf(m->vm_name, sizeof(m->vm_name), "%.*s", VM_NAME_MAX - 1, m->hello.vm_name);
	int ret = session_seal_begin(m, &keys);
	proto_keys_forget(&keys);
	if (ret < 0) {
		session_set_reason(m, "cannot key the session: %s", strerror(-ret));
		session_send_refusal(listener->vmk, src_ip, src_port, listener->port, msg->session,
		                     PROTO_REFUSE_BUSY, m->reason, now);
		destination_end(m, MIGRATION_FAILED);
		return;
	}
	destination_admit(m, now);
}

/* The source's AUTH again, for a session it made: ours (the ACCEPT) was lost. */
static void destination_on_auth(struct migration *m, const struct proto_message *msg)
{
	struct proto_auth auth;

	memcpy(&auth, msg->body, sizeof(auth));
	if (!proto_proof_equal(auth.proof, m->source_proof)) {
		session_count_drop(m->engine, MIGRATION_DROP_AUTH);
		return;
	}
	/* The same bytes as the first: a duplicate. While the session runs it may be the source's
	 * resend (our ACCEPT was lost), so it gets the ACCEPT again, sealed for the real source; a
	 * replay learns nothing from that. */
	session_count_drop(m->engine, MIGRATION_DROP_DUPLICATE);
	if (m->status == MIGRATION_ACTIVE || m->status == MIGRATION_PREFLIGHT)
		session_send_control(m, PROTO_ACCEPT, &m->destination.accept,
		                     sizeof(m->destination.accept));
}

#define BLOCK_SIZE 64 /* page coverage is kept per block: the source's fragments align to it */
#define PAGE_WHOLE UINT64_MAX /* every block of a page */

/* The blocks [offset, offset + len) covers. */
static uint64_t blocks_of(uint16_t offset, uint16_t len)
{
	unsigned int first = offset / BLOCK_SIZE,
	             end = (offset + len + BLOCK_SIZE - 1) / BLOCK_SIZE;
	uint64_t below_end = end >= 64 ? PAGE_WHOLE : (1ull << end) - 1;

	return below_end & ~((1ull << first) - 1);
}

static void destination_postcopy_complete(struct migration *m, uint64_t now);

/* Post-copy: a page the VM lacked is here; a vCPU waiting on it runs on, and once the last one
 * is here the source hears that it may let go. */
static void destination_postcopy_arrived(struct migration *m, uint64_t page, uint64_t now)
{
	struct machine *vm = &m->vm->machine;

	if (!machine_page_absent(vm, page))
		return;
	/* Before the VM may touch it: what arrived is the source's page as it paused. */
	if (m->destination.verify)
		m->destination.postcopy_hash += machine_page_hash(vm, page);
	if (page == m->destination.fault_page) {
		if (m->destination.nb_latencies < DESTINATION_LATENCIES)
			m->destination.latencies[m->destination.nb_latencies++] =
			        now - m->destination.fault_ns;
		m->destination.fault_page = UINT64_MAX;
	}
	machine_remote_arrived(vm, page, now);
	if (vm->remote.nb_absent == 0)
		destination_postcopy_complete(m, now);
}

/* Tells the source post-copy is over: every page is here. */
static void destination_send_complete(struct migration *m)
{
	struct proto_complete complete = {
	        .pages = rte_cpu_to_be_64(m->destination.nb_complete),
	        .memory_hash =
	                rte_cpu_to_be_64(m->destination.verify ? m->destination.postcopy_hash : 0),
	};

	session_send_control(m, PROTO_COMPLETE, &complete, sizeof(complete));
}

/* Every page is here: the copy is whole, and the VM the host's alone. */
static void destination_postcopy_complete(struct migration *m, uint64_t now)
{
	struct machine *vm = &m->vm->machine;

	m->stats.postcopy.last_page_ns = now;
	m->stats.postcopy.remote_faults = vm->stats.remote_faults;
	m->stats.postcopy.stall_ns = vm->stats.stall_ns;
	machine_remote_end(vm);
	if (m->destination.verify && m->destination.postcopy_hash != m->destination.expected_hash) {
		session_set_reason(
		        m,
		        "post-copy complete, but the memory as it came hashes %016lx, not "
		        "the source's %016lx",
		        (unsigned long)m->destination.postcopy_hash,
		        (unsigned long)m->destination.expected_hash);
		MIG_LOG(ERR, "%u: %s: %s", m->id, m->vm_name, m->reason);
	}
	destination_send_complete(m);
	m->stats.end_ns = now;
	m->status = MIGRATION_COMPLETED;
	populate_fini(&m->destination.populate);
	m->vm = NULL;
	MIG_LOG(INFO, "%u: %s: post-copy complete, %lu remote faults, %.3f ms stalled", m->id,
	        m->vm_name, (unsigned long)m->stats.postcopy.remote_faults,
	        (double)m->stats.postcopy.stall_ns / 1e6);
}

/* Post-copy: the vCPU touched a page that is still at the source; ask for it and the few absent
 * pages after it (accesses cluster), ahead of the background stream. */
static void destination_on_fault(void *ctx, uint64_t page, uint64_t now)
{
	struct migration *m = ctx;
	const struct machine *vm = &m->vm->machine;
	uint32_t count = 1;

	while (count < PROTO_DEMAND_MAX && page + count < vm->nb_pages &&
	       machine_page_absent(vm, page + count))
		count++;
	struct proto_demand demand = {.page = rte_cpu_to_be_64(page),
	                              .count = rte_cpu_to_be_32(count)};
	session_send_control(m, PROTO_DEMAND, &demand, sizeof(demand));
	m->destination.fault_page = page;
	m->destination.fault_ns = now;
	m->destination.demand_ns = now;
	m->stats.postcopy.pages_demanded += count;
}

/* A page became whole in its newest copy: counted, and handed to a VM that waits on it. */
static void destination_page_whole(struct migration *m, uint64_t page)
{
	m->destination.nb_complete++;
	if (m->destination.postcopy)
		destination_postcopy_arrived(m, page, session_now_ns(m->engine));
}

/* Applies data for part of one page (all of it, at most) unless a newer copy is held; a page is
 * complete when every block of its newest round arrived, however its fragments overlap. */
static void destination_take(struct migration *m, uint64_t page, uint32_t round, uint16_t offset,
                             const uint8_t *data, uint16_t len)
{
	/* page_round holds round + 1, so 0 means nothing arrived yet. */
	uint32_t held = m->destination.page_round[page];
	if (held > round + 1) {
		session_count_drop(m->engine, MIGRATION_DROP_STALE_COPY);
		return;
	}
	if (held < round + 1) {
		if (m->destination.page_filled[page] == PAGE_WHOLE)
			m->destination.nb_complete--;
		m->destination.page_round[page] = round + 1;
		m->destination.page_filled[page] = 0;
	}
	machine_page_load_part(&m->vm->machine, page, offset, data, len);
	if (page >= m->destination.filled_end)
		m->destination.filled_end = page + 1;
	uint64_t before = m->destination.page_filled[page];
	m->destination.page_filled[page] |= blocks_of(offset, len);
	if (before != PAGE_WHOLE && m->destination.page_filled[page] == PAGE_WHOLE) {
		m->stats.pages_normal++;
		destination_page_whole(m, page);
	}
}

static void destination_on_pages(struct migration *m, const struct proto_message *msg)
{
	struct proto_pages p;

	memcpy(&p, msg->body, sizeof(p));
	uint64_t page = rte_be_to_cpu_64(p.page);
	uint32_t round = rte_be_to_cpu_32(p.round);
	uint16_t offset = rte_be_to_cpu_16(p.offset);
	uint16_t len = rte_be_to_cpu_16(p.data_len);
	if (offset + len <= PROTO_PAGE_SIZE) {
		destination_take(m, page, round, offset, msg->data, len);
		return;
	}
	/* Whole pages (destination_data_sane saw to it). */
	for (uint16_t i = 0; i < len / PROTO_PAGE_SIZE && m->vm != NULL; i++)
		destination_take(m, page + i, round, 0, msg->data + i * PROTO_PAGE_SIZE,
		                 PROTO_PAGE_SIZE);
}

static void destination_on_zero_run(struct migration *m, const struct proto_message *msg)
{
	struct proto_zero_run z;

	memcpy(&z, msg->body, sizeof(z));
	uint64_t first = rte_be_to_cpu_64(z.first_page);
	uint64_t count = rte_be_to_cpu_32(z.count);
	uint32_t round = rte_be_to_cpu_32(z.round);
	for (uint64_t page = first; page < first + count && m->vm != NULL; page++) {
		if (m->destination.page_round[page] > round + 1) {
			session_count_drop(m->engine, MIGRATION_DROP_STALE_COPY);
			continue;
		}
		bool was_whole = m->destination.page_filled[page] == PAGE_WHOLE;
		if (page >= m->destination.filled_end)
			m->destination.filled_end = page + 1;
		m->destination.page_round[page] = round + 1;
		m->destination.page_filled[page] = PAGE_WHOLE;
		machine_page_load_zero(&m->vm->machine, page);
		m->stats.pages_zero++;
		if (!was_whole)
			destination_page_whole(m, page);
	}
}

/* A stretch of the pages that come after the resume (post-copy). */
static void destination_on_absent(struct migration *m, const struct proto_message *msg)
{
	struct proto_absent a;

	memcpy(&a, msg->body, sizeof(a));
	uint64_t first = rte_be_to_cpu_64(a.first_page);
	uint32_t count = rte_be_to_cpu_32(a.count);
	/* A map starts on a byte of the bitmap (the source cuts them so) and is copied a byte at
	 * a time, the bits past count masked; otherwise bit by bit. */
#if RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN
	uint8_t *bytes = (uint8_t *)m->destination.absent;
	if (first % 8 == 0) {
		for (uint32_t i = 0; i < count / 8; i++)
			bytes[first / 8 + i] |= msg->data[i];
		if (count % 8 != 0)
			bytes[first / 8 + count / 8] |=
			        (uint8_t)(msg->data[count / 8] & ((1u << (count % 8)) - 1));
		return;
	}
#endif
	for (uint32_t i = 0; i < count; i++)
		if (msg->data[i / 8] & (1u << (i % 8)))
			m->destination.absent[(first + i) / 64] |= 1ull << ((first + i) % 64);
}

/* Starts the VM's announcement as the HELLO asked. */
static void destination_announce(struct migration *m, struct vm *vm, uint64_t resumed_ns)
{
	char name[PROTO_NAME_LEN + 1];
	struct announce_config announce = {
	        .rounds = rte_be_to_cpu_16(m->hello.announce_rounds),
	        .initial_ns = (uint64_t)rte_be_to_cpu_16(m->hello.announce_initial_ms) * 1000000,
	        .step_ns = (uint64_t)rte_be_to_cpu_16(m->hello.announce_step_ms) * 1000000,
	        .garp = m->hello.announce_garp != 0,
	};

	/* The schedule is the source's; whether and how, this host's port group's (ESXi's
	 * "Notify switches"): GARP asked either way adds one. */
	snprintf(name, sizeof(name), "%.*s", PROTO_NAME_LEN, m->hello.portgroup);
	const struct vswitch_portgroup *pg = vswitch_portgroup_find(m->engine->vswitches, name);
	if (pg != NULL && !pg->notify_switches)
		return;
	if (pg != NULL && pg->notify != VSWITCH_NOTIFY_RARP) {
		announce.garp = true;
		announce.no_rarp = pg->notify == VSWITCH_NOTIFY_GARP;
	}
	/* The first frame goes to the switch at once: when, from the resume, is in the status. */
	if (announce.rounds > 0 &&
	    announce_start(&vm->announce, &vm->vnic, m->engine->loop, &announce) == 0) {
		m->stats.forward.announce_ns = session_now_ns(m->engine) - resumed_ns;
		m->stats.forward.announced = true;
	}
}

/* The switchover into post-copy: every page is here in its newest copy or named absent; the
 * absent ones that hold an older copy are held no more. The VM resumes here at once, the host's
 * from now on (the commit), and stalls on each absent page until it comes. */
/* The commit's last step, the VM not yet running: its disk's lock, as the source offered it
 * with this session's state. Refuses the session and returns false if it cannot be taken. */
static bool destination_take_disk(struct migration *m, struct vm *vm,
                                  const struct proto_state *state)
{
	struct disklock_holder holder = {0};

	if (m->hello.disk_mib == 0)
		return true;
	int ret = vm_disk_take(vm, &m->destination.disk_place,
	                       rte_be_to_cpu_64(state->disk_handoff), &holder);
	if (ret == -EBUSY)
		destination_refuse(m, PROTO_REFUSE_DISK, "the disk's lock is %s's, not offered",
		                   holder.owner);
	else if (ret < 0)
		destination_refuse(m, PROTO_REFUSE_DISK, "the disk: %s", strerror(-ret));
	return ret == 0;
}

static void destination_on_postcopy_state(struct migration *m, const struct proto_message *msg,
                                          const struct proto_state *state, uint64_t now)
{
	struct migration_engine *engine = m->engine;
	struct vm *vm = m->vm;
	uint64_t nb_pages = vm->machine.nb_pages, absent = 0;
	uint64_t *filled = m->destination.page_filled;

	/* A word of the bitmap at a time, and only the pages each set names: this runs while the
	 * VM is paused, and a switchover early in round 0 names nearly every page absent. */
	for (uint64_t w = 0; w < (nb_pages + 63) / 64; w++) {
		uint64_t valid =
		        nb_pages - w * 64 >= 64 ? UINT64_MAX : (1ull << (nb_pages - w * 64)) - 1;
		uint64_t gone = m->destination.absent[w] & valid, held = ~gone & valid;
		absent += (uint64_t)__builtin_popcountll(gone);
		for (; held != 0; held &= held - 1) {
			uint64_t page = w * 64 + (uint64_t)__builtin_ctzll(held);
			if (filled[page] != PAGE_WHOLE) {
				destination_refuse(
				        m, PROTO_REFUSE_INCOMPLETE,
				        "post-copy: page %lu neither here nor named absent",
				        (unsigned long)page);
				return;
			}
		}
		/* Past the last page anything arrived for, every entry is still zero (and
		 * writing them would fault in memory nothing used). */
		if (w * 64 >= m->destination.filled_end)
			continue;
		if (gone == UINT64_MAX)
			memset(&filled[w * 64], 0, 64 * sizeof(*filled));
		else
			for (; gone != 0; gone &= gone - 1)
				filled[w * 64 + (uint64_t)__builtin_ctzll(gone)] = 0;
	}
	/* Every page held is whole, and the absent ones are held no more. */
	m->destination.nb_complete = nb_pages - absent;
	/* The absent pages first: a state may say where the VM is in pages that are not here. */
	int ret =
	        machine_remote_begin(&vm->machine, m->destination.absent, destination_on_fault, m);
	if (ret == -ENOTSUP) {
		destination_refuse(m, PROTO_REFUSE_NO_MEMORY,
		                   "this host's KVM VM cannot run with pages elsewhere (no "
		                   "userfaultfd for it): no post-copy");
		return;
	}
	if (ret < 0) {
		destination_refuse(m, PROTO_REFUSE_NO_MEMORY, "out of memory for post-copy");
		return;
	}
	if (vm_load_state(vm, msg->data, msg->data_len) < 0) {
		machine_remote_end(&vm->machine);
		session_count_drop(engine, MIGRATION_DROP_BAD_STATE);
		destination_refuse(m, PROTO_REFUSE_STATE, "the vCPU state does not load");
		return;
	}
	if (!destination_take_disk(m, vm, state)) {
		machine_remote_end(&vm->machine);
		return;
	}
	/* With verification, the held pages' part of the hash is taken before the VM runs (the
	 * pause's price, as pre-copy's); the absent pages add theirs as they come. */
	m->destination.verify = state->verify;
	m->destination.expected_hash = rte_be_to_cpu_64(state->memory_hash);
	m->destination.postcopy_hash = 0;
	for (uint64_t page = 0; state->verify && page < nb_pages; page++)
		if (!((m->destination.absent[page / 64] >> (page % 64)) & 1))
			m->destination.postcopy_hash += machine_page_hash(&vm->machine, page);
	/* Commit: the VM runs here; the session keeps feeding it its pages. */
	m->destination.postcopy = true;
	m->destination.fault_page = UINT64_MAX;
	m->status = MIGRATION_POSTCOPY;
	m->stats.postcopy.start_ns = now;
	m->stats.postcopy.pages_absent = absent;
	if (state->running)
		vm_resume(vm);
	destination_announce(m, vm, now);
	forward_destination_resumed(m, vm, rte_be_to_cpu_32(state->frames), now);
	struct proto_confirm *confirm = &m->destination.confirm;
	confirm->memory_hash = 0;
	confirm->resumed_ns = rte_cpu_to_be_64(now);
	confirm->pages = rte_cpu_to_be_64(m->destination.nb_complete);
	proto_sha256(msg->data, msg->data_len, confirm->state_hash);
	session_send_control(m, PROTO_CONFIRM, confirm, sizeof(*confirm));
	if (engine->hooks.vm_arrived != NULL)
		engine->hooks.vm_arrived(engine->hooks.ctx, vm);
	MIG_LOG(INFO, "%u: %s runs here, %lu pages to come (post-copy)", m->id, m->vm_name,
	        (unsigned long)absent);
	if (absent == 0)
		destination_postcopy_complete(m, now); /* nothing was missing after all */
}

static void destination_on_state(struct migration *m, const struct proto_message *msg, uint64_t now)
{
	struct migration_engine *engine = m->engine;
	struct proto_state state;
	struct vm *vm = m->vm;

	memcpy(&state, msg->body, sizeof(state));
	if (state.postcopy) {
		destination_on_postcopy_state(m, msg, &state, now);
		return;
	}
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
	if (!destination_take_disk(m, vm, &state))
		return;
	/* Commit: the VM is ours now, the helper's no more. */
	populate_fini(&m->destination.populate);
	m->vm = NULL;
	if (state.running)
		vm_resume(vm);
	destination_announce(m, vm, now);
	forward_destination_resumed(m, vm, rte_be_to_cpu_32(state.frames), now);
	m->confirm_hash = hash;
	m->status = MIGRATION_COMPLETED;
	m->stats.end_ns = now;
	/* What it holds, for the source to compare with what it sent. */
	struct proto_confirm *confirm = &m->destination.confirm;
	confirm->memory_hash = rte_cpu_to_be_64(hash);
	confirm->resumed_ns = rte_cpu_to_be_64(now);
	confirm->pages = rte_cpu_to_be_64(m->destination.nb_complete);
	proto_sha256(msg->data, msg->data_len, confirm->state_hash);
	session_send_control(m, PROTO_CONFIRM, confirm, sizeof(*confirm));
	if (engine->hooks.vm_arrived != NULL)
		engine->hooks.vm_arrived(engine->hooks.ctx, vm);
	else {
		vm_destroy(vm);
		free(vm);
	}
	/* The channel stays a while, so a resent STATE is acknowledged again. */
	MIG_LOG(INFO, "%u: %s arrived and runs (%lu pages, %lu zero)", m->id, m->vm_name,
	        (unsigned long)m->stats.pages_normal, (unsigned long)m->stats.pages_zero);
}

/* The source asks what became of the VM: the answer is what happened, and a destination that
 * has not taken the state decides now, for good, that it never will. */
static void destination_on_query(struct migration *m)
{
	/* Post-copy: the VM runs here whatever the source asks; it hears how far the copy is. */
	if (m->destination.postcopy) {
		if (m->status == MIGRATION_COMPLETED) {
			destination_send_complete(m);
		} else {
			session_send_control(m, PROTO_CONFIRM, &m->destination.confirm,
			                     sizeof(m->destination.confirm));
		}
		return;
	}
	if (m->status == MIGRATION_COMPLETED) {
		if (!(m->hello.flags & PROTO_HELLO_CHECK_ONLY))
			session_send_control(m, PROTO_CONFIRM, &m->destination.confirm,
			                     sizeof(m->destination.confirm));
		else
			session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	if (session_running(m)) {
		destination_refuse(
		        m, PROTO_REFUSE_ABORTED,
		        "the source asked before its state arrived: the copy is dropped");
		return;
	}
	struct proto_refuse refuse = {.reason = rte_cpu_to_be_32(PROTO_REFUSE_ABORTED)};
	snprintf(refuse.text, sizeof(refuse.text), "%.*s", (int)sizeof(refuse.text) - 1, m->reason);
	session_send_control(m, PROTO_REFUSE, &refuse, sizeof(refuse));
}

/* Checks what a channel message says before it is taken: a page inside the VM, fragments on
 * block boundaries, runs inside the VM, rounds under the limit. */
static bool destination_data_sane(struct migration *m, const struct proto_message *msg)
{
	uint64_t nb_pages = m->vm->machine.nb_pages;

	if (msg->type == PROTO_PAGES) {
		struct proto_pages p;
		memcpy(&p, msg->body, sizeof(p));
		uint16_t offset = rte_be_to_cpu_16(p.offset), len = rte_be_to_cpu_16(p.data_len);
		uint64_t page = rte_be_to_cpu_64(p.page);
		/* proto_parse let through part of one page or whole pages; here they must lie inside
		 * the VM, and a part on block boundaries. */
		uint64_t pages = offset + len <= PROTO_PAGE_SIZE ? 1 : len / PROTO_PAGE_SIZE;
		bool aligned = offset % BLOCK_SIZE == 0 &&
		               (len % BLOCK_SIZE == 0 || offset + len == PROTO_PAGE_SIZE);
		if (page >= nb_pages || pages > nb_pages - page || !aligned) {
			session_count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
			return false;
		}
		if (rte_be_to_cpu_32(p.round) >= MIGRATION_MAX_ROUNDS) {
			session_count_drop(m->engine, MIGRATION_DROP_BAD_ROUND);
			return false;
		}
	}
	if (msg->type == PROTO_REGIONS) {
		struct proto_regions r;
		memcpy(&r, msg->body, sizeof(r));
		uint64_t first = rte_be_to_cpu_64(r.first_region),
		         count = rte_be_to_cpu_32(r.count);
		uint64_t regions = machine_regions(&m->vm->machine);
		if (count == 0 || count > PROTO_REGIONS_PER_MESSAGE || first >= regions ||
		    count > regions - first || msg->data_len != (count + 7) / 8) {
			session_count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
			return false;
		}
	}
	if (msg->type == PROTO_ABSENT) {
		struct proto_absent a;
		memcpy(&a, msg->body, sizeof(a));
		uint64_t first = rte_be_to_cpu_64(a.first_page), count = rte_be_to_cpu_32(a.count);
		/* Only before the switchover: a map that came later could make a page the VM holds
		 * look absent. */
		if (count == 0 || count > PROTO_ABSENT_PER_MESSAGE || first >= nb_pages ||
		    count > nb_pages - first || msg->data_len != (count + 7) / 8 ||
		    m->destination.postcopy) {
			session_count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
			return false;
		}
	}
	if (msg->type == PROTO_ZERO_RUN) {
		struct proto_zero_run z;
		memcpy(&z, msg->body, sizeof(z));
		uint64_t first = rte_be_to_cpu_64(z.first_page), count = rte_be_to_cpu_32(z.count);
		if (count == 0 || first >= nb_pages || count > nb_pages - first) {
			session_count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
			return false;
		}
		/* page_round holds round + 1: a round past the limit cannot overflow it. */
		if (rte_be_to_cpu_32(z.round) >= MIGRATION_MAX_ROUNDS) {
			session_count_drop(m->engine, MIGRATION_DROP_BAD_ROUND);
			return false;
		}
	}
	return true;
}

/* Where a message's encrypted data is opened: straight into the VM's memory when it copies pages
 * that hold nothing yet (round 0's: nearly every byte), so each byte is written once; else into
 * the session's buffer, so a forged message cannot spoil a page already held. The header read
 * here is not yet authenticated: it only decides where the bytes go. */
static uint8_t *destination_open_target(struct migration *m, const struct proto_message *msg)
{
	struct proto_pages p;

	if (msg->type != PROTO_PAGES || m->vm == NULL ||
	    (m->status != MIGRATION_ACTIVE && m->status != MIGRATION_POSTCOPY))
		return m->destination.plain;
	memcpy(&p, msg->body, sizeof(p));
	uint64_t page = rte_be_to_cpu_64(p.page), nb_pages = m->vm->machine.nb_pages;
	uint16_t offset = rte_be_to_cpu_16(p.offset), len = rte_be_to_cpu_16(p.data_len);
	/* proto_parse let through part of one page or whole pages. */
	uint64_t pages = offset + len <= PROTO_PAGE_SIZE ? 1 : len / PROTO_PAGE_SIZE;
	if (page >= nb_pages || pages > nb_pages - page)
		return m->destination.plain;
	for (uint64_t i = page; i < page + pages; i++)
		if (m->destination.page_round[i] != 0 || m->destination.page_filled[i] != 0)
			return m->destination.plain;
	return machine_page(&m->vm->machine, page) + offset;
}

static void destination_on_data(struct migration *m, struct proto_message *msg, const uint8_t *raw,
                                uint16_t raw_len, uint64_t now)
{
	/* Nothing reaches memory, is acknowledged or keeps the session alive without the session's
	 * tag. Data opened into pages that held nothing is wiped again if the tag fails: they read
	 * as zeros, as before. */
	uint8_t *target = m->sealer_ready ? destination_open_target(m, msg) : NULL;
	if (!m->sealer_ready || msg->seq == 0 || msg->seq >= PROTO_CONTROL_SEQ_BASE ||
	    !proto_open(&m->rx_sealer, raw, raw_len, msg, target)) {
		if (target != NULL && target != m->destination.plain && m->terms.encrypt != 0)
			memset(target, 0, msg->data_len);
		session_count_drop(m->engine, MIGRATION_DROP_AUTH);
		return;
	}
	m->last_rx_ns = now;
	bool probing = m->status == MIGRATION_PREFLIGHT || msg->type == PROTO_PROBE;
	if ((m->status != MIGRATION_ACTIVE && m->status != MIGRATION_PREFLIGHT &&
	     m->status != MIGRATION_COMPLETED && m->status != MIGRATION_POSTCOPY) ||
	    !m->channel_ready || (probing && msg->type != PROTO_PROBE)) {
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	struct channel *ch = session_channel_of(m, msg->seq);
	if (ch == NULL) {
		session_count_drop(m->engine, MIGRATION_DROP_OUT_OF_WINDOW);
		return;
	}
	uint8_t stream_bit = (uint8_t)(1u << proto_stream_of(msg->seq));
	/* The VM's frames come until the source's hold ends, which is after the VM resumed. */
	if (msg->type == PROTO_FRAME) {
		if (!forward_frame_sane(m, msg))
			return;
		if (channel_accept(ch, msg->seq))
			forward_on_frame(m, msg, now);
		else
			session_count_drop(m->engine, MIGRATION_DROP_DUPLICATE);
		m->destination.acks_pending |= stream_bit;
		return;
	}
	/* Finished: a resent copy only needs its acknowledgement. */
	if (m->status == MIGRATION_COMPLETED) {
		if (channel_accept(ch, msg->seq))
			session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		else
			session_count_drop(m->engine, MIGRATION_DROP_DUPLICATE);
		m->destination.acks_pending |= stream_bit;
		return;
	}
	if (m->vm == NULL && msg->type != PROTO_PROBE) {
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	/* Checked before the sequence number is taken, so a bad message is never acknowledged
	 * and never applied. */
	if (msg->type != PROTO_PROBE && !destination_data_sane(m, msg))
		return;
	bool behind = msg->seq < ch->cumulative;
	if (!channel_accept(ch, msg->seq)) {
		session_count_drop(m->engine, behind || msg->seq - ch->cumulative < CHANNEL_WINDOW
		                                      ? MIGRATION_DROP_DUPLICATE
		                                      : MIGRATION_DROP_OUT_OF_WINDOW);
		m->destination.acks_pending |= stream_bit;
		return;
	}
	m->destination.acks_pending |= stream_bit;
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
	case PROTO_ABSENT:
		destination_on_absent(m, msg);
		break;
	case PROTO_REGIONS: {
		struct proto_regions r;
		memcpy(&r, msg->body, sizeof(r));
		/* Best effort: without the helper, the pages fault in as they arrive. */
		populate_regions(&m->destination.populate, rte_be_to_cpu_64(r.first_region),
		                 rte_be_to_cpu_32(r.count), msg->data);
		break;
	}
	default:
		break;
	}
}

void destination_rx(struct migration *m, struct migration_listener *listener,
                    const struct proto_message *msg, uint32_t src_ip, uint16_t src_port,
                    const uint8_t *payload, uint16_t len, uint64_t now)
{
	struct proto_message opened = *msg;

	if (src_ip != m->peer_ip || src_port != m->peer_port || m->vmk != listener->vmk) {
		session_count_drop(m->engine, MIGRATION_DROP_WRONG_PEER);
		return;
	}
	/* Liveness is refreshed only by what authenticates (in the handlers), so forged packets
	 * cannot keep a session alive. */
	switch (msg->type) {
	case PROTO_HELLO:
		session_count_drop(m->engine, MIGRATION_DROP_DUPLICATE);
		break;
	case PROTO_AUTH:
		destination_on_auth(m, msg);
		break;
	case PROTO_PAGES:
	case PROTO_ZERO_RUN:
	case PROTO_STATE:
	case PROTO_PROBE:
	case PROTO_REGIONS:
	case PROTO_ABSENT:
	case PROTO_FRAME:
		destination_on_data(m, &opened, payload, len, now);
		break;
	case PROTO_QUERY:
		if (!session_open_control(m, msg, payload, len))
			break;
		m->last_rx_ns = now;
		destination_on_query(m);
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

/* Post-copy under way: a demand that went unanswered goes again (it travels outside the
 * channel); a silent source holds the VM where it waits, and says so. */
static void destination_postcopy_poll(struct migration *m, uint64_t now)
{
	const struct machine *vm = &m->vm->machine;

	if (machine_stalled(vm) && now - m->destination.demand_ns > DEMAND_RESEND_NS) {
		struct proto_demand demand = {.page = rte_cpu_to_be_64(vm->remote.stalled_page),
		                              .count = rte_cpu_to_be_32(1)};
		session_send_control(m, PROTO_DEMAND, &demand, sizeof(demand));
		m->destination.demand_ns = now;
	}
	if (now - m->last_rx_ns > MIGRATION_PEER_TIMEOUT)
		session_set_reason(m,
		                   "post-copy holds: the source has been silent for %.1f s; %lu "
		                   "pages are still there, and the VM stalls on them",
		                   (double)(now - m->last_rx_ns) / 1e9,
		                   (unsigned long)vm->remote.nb_absent);
	else if (m->reason[0] != '\0')
		m->reason[0] = '\0';
}

void destination_poll(struct migration *m, uint64_t now)
{
	for (unsigned int s = 0;
	     m->destination.acks_pending != 0 && m->channel_ready && s < m->hello.streams; s++) {
		if (!(m->destination.acks_pending & (1u << s)))
			continue;
		struct proto_ack ack;
		channel_make_ack(&m->channels[s], &ack);
		session_send_control(m, PROTO_ACK, &ack, sizeof(ack));
	}
	m->destination.acks_pending = 0;
	forward_destination_poll(m, now);
	if (!session_running(m)) {
		/* Finished: the channel stays to acknowledge a resent state, the keys longer to
		 * answer the source's questions. */
		if (m->channel_ready && now - m->stats.end_ns > MIGRATION_REACK_NS)
			session_release_transfer(m);
		if (now - m->stats.end_ns > MIGRATION_LINGER_NS)
			session_release(m);
		return;
	}
	if (m->status == MIGRATION_POSTCOPY) {
		destination_postcopy_poll(m, now);
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
