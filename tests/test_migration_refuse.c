/* Live migration refused and attacked: wrong keys and key files, duplicates, a missing port
 * group, bad, replayed and forged packets in both directions, floods, lying peers and encryption
 * policies, between two hosts in one process. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pcap/pcap.h>
#include <rte_byteorder.h>

#include "pair.h"

/* ---- refusals ---- */

TestSuite(refuse, .init = setup_9000, .fini = teardown, .timeout = 60);

/* The daemon runs as root and a CLI client names the key file: only a private regular file will
 * do, and each refusal says why. */
Test(refuse, key_files_that_are_not_private_regular_files)
{
	char path[96], link[96], out[512];

	snprintf(path, sizeof(path), "/tmp/ferry-test-openkey-%d", getpid());
	snprintf(link, sizeof(link), "/tmp/ferry-test-keylink-%d", getpid());
	write_file(path, "correct horse battery staple\n", 0644);
	cr_assert_neq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key %s", path), 0);
	cr_assert(strstr(out, "mode 0644 lets group or others in") != NULL, "%s", out);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(symlink(path, link), 0);
	cr_assert_neq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key %s", link), 0);
	cr_assert(strstr(out, "symbolic link") != NULL, "%s", out);
	cr_assert_neq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key /tmp"), 0);
	cr_assert(strstr(out, "not a regular file") != NULL, "%s", out);
	cr_assert_eq(chown(path, 65534, 0), 0);
	cr_assert_neq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key %s", path), 0);
	cr_assert(strstr(out, "owned by uid 65534") != NULL, "%s", out);
	/* The same file, private and root's again, is taken. */
	cr_assert_eq(chown(path, 0, 0), 0);
	cr_assert_eq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key %s", path), 0, "%s",
	             out);
	unlink(link);
	unlink(path);
}

Test(refuse, wrong_key)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000");
	char out[512];
	cr_assert_eq(ctl_try(a, out, sizeof(out), "migrate start vm1 to %s key %s", B_VMK_IP,
	                     other_key_path),
	             0, "%s", out);
	const struct migration_info *m = wait_done(a, (int)a->host.migrations.next_id, 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "key") != NULL, "the reason names the key: %s", m->reason);
	cr_assert_null(host_vm_find(&b->host, "vm1"), "nothing arrived");
	assert_vm_unmoved();
}

Test(refuse, duplicate_name)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000");
	ctl(b,
	    "vm create vm1 mem 8 mac 02:00:00:00:00:0b ip 10.10.0.11/24 portgroup \"VM Network\"");
	const struct migration_info *m = wait_done(a, start("vm1", ""), 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "VM of that name") != NULL, "%s", m->reason);
	assert_vm_unmoved();
	cr_assert_eq(b->host.nb_vms, 1, "the destination's own VM stays alone");
}

Test(refuse, duplicate_mac)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000");
	ctl(b, "vm create other mem 8 mac %s ip 10.10.0.11/24 portgroup \"VM Network\"", VM_MAC);
	const struct migration_info *m = wait_done(a, start("vm1", ""), 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "MAC") != NULL, "%s", m->reason);
	assert_vm_unmoved();
}

Test(refuse, missing_portgroup)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000");
	ctl(b, "portgroup del \"VM Network\"");
	const struct migration_info *m = wait_done(a, start("vm1", ""), 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "port group") != NULL, "%s", m->reason);
	assert_vm_unmoved();
}

/* Raw datagrams to the destination's listener from a port of our own on a's vmk. */
struct inbox {
	unsigned int count;
	uint8_t last[512];
	uint16_t last_len;
};

static void inbox_rx(void *ctx, uint32_t ip, uint16_t port, const uint8_t *payload, uint16_t len,
                     uint16_t dst_port)
{
	struct inbox *inbox = ctx;
	(void)ip;
	(void)port;
	(void)dst_port;
	inbox->count++;
	inbox->last_len = len < sizeof(inbox->last) ? len : sizeof(inbox->last);
	memcpy(inbox->last, payload, inbox->last_len);
}

static void send_raw(const void *buf, uint16_t len)
{
	uint32_t ip;
	cr_assert_eq(netif_parse_ipv4(B_VMK_IP, &ip), 0);
	cr_assert_eq(netif_udp_send(&a->host.vmks[0]->netif, ip, PROTO_DEFAULT_PORT, 40000, buf,
	                            len, loop_now_ns(&a->host.loop)),
	             0);
	uint64_t before = b->host.migrations.rx_messages;
	pump_until(b->host.migrations.rx_messages > before, 5 * SECOND,
	           "the datagram never arrived");
}

Test(refuse, bad_packets_are_counted_and_change_nothing)
{
	struct inbox inbox = {0};
	uint8_t buf[4200];
	cr_assert_eq(netif_udp_bind(&a->host.vmks[0]->netif, 40000, inbox_rx, &inbox), 0);

	/* Unknown version: a HELLO of the next version gets a refusal that says why. */
	struct proto_hello hello = {.ciphers = PROTO_CIPHERS_ALL,
	                            .cipher = PROTO_CIPHER_CHACHA20_POLY1305,
	                            .streams = 1};
	snprintf(hello.vm_name, sizeof(hello.vm_name), "intruder");
	uint16_t len = message(buf, PROTO_HELLO, 77, 0, &hello, sizeof(hello));
	buf[4] = PROTO_VERSION + 1;
	send_raw(buf, len);
	cr_assert_eq(drops(b, MIGRATION_DROP_VERSION), 1);
	pump_until(inbox.count > 0, 5 * SECOND, "no refusal came back");
	cr_assert_eq(inbox.count, 1);
	struct proto_message reply;
	cr_assert_eq(proto_parse(inbox.last, inbox.last_len, &reply), PROTO_OK);
	cr_assert_eq(reply.type, PROTO_REFUSE);
	struct proto_refuse refuse;
	memcpy(&refuse, reply.body, sizeof(refuse));
	cr_assert_eq(rte_be_to_cpu_32(refuse.reason), PROTO_REFUSE_VERSION);

	/* Garbage, a truncated header, a body shorter than its type. */
	memset(buf, 0xa5, 300);
	send_raw(buf, 300);
	send_raw(buf, 10);
	len = message(buf, PROTO_HELLO, 78, 0, &hello, sizeof(hello));
	send_raw(buf, (uint16_t)(len - 20));
	cr_assert_eq(drops(b, MIGRATION_DROP_MALFORMED), 3);

	/* Pages, state and acks for a session that does not exist. */
	struct proto_pages pages = {.page = rte_cpu_to_be_64(1), .data_len = rte_cpu_to_be_16(8)};
	uint8_t body[sizeof(pages) + 8] = {0};
	memcpy(body, &pages, sizeof(pages));
	send_raw(buf, message(buf, PROTO_PAGES, 79, 1, body, sizeof(body)));
	struct proto_state state = {0};
	send_raw(buf, message(buf, PROTO_STATE, 79, 2, &state, sizeof(state)));
	cr_assert_eq(drops(b, MIGRATION_DROP_UNKNOWN_SESSION), 2);

	/* A HELLO makes nothing on the destination: its CHALLENGE carries a cookie instead. */
	len = message(buf, PROTO_HELLO, 80, 0, &hello, sizeof(hello));
	inbox.count = 0;
	send_raw(buf, len);
	pump_until(inbox.count > 0, 5 * SECOND, "no challenge came back");
	cr_assert_eq(proto_parse(inbox.last, inbox.last_len, &reply), PROTO_OK);
	cr_assert_eq(reply.type, PROTO_CHALLENGE);
	struct proto_challenge challenge;
	memcpy(&challenge, reply.body, sizeof(challenge));
	for (unsigned int i = 0; i < MIGRATION_MAX; i++)
		cr_assert_null(b->host.migrations.sessions[i], "no session for a HELLO");
	/* An AUTH without the cookie: dropped, unanswered. */
	inbox.count = 0;
	struct proto_auth auth = {.hello = hello};
	send_raw(buf, message(buf, PROTO_AUTH, 80, 0, &auth, sizeof(auth)));
	cr_assert_eq(drops(b, MIGRATION_DROP_COOKIE), 1);
	/* With the cookie but without the key: refused for the key. */
	auth.terms = challenge.terms;
	send_raw(buf, message(buf, PROTO_AUTH, 80, 0, &auth, sizeof(auth)));
	cr_assert_eq(drops(b, MIGRATION_DROP_AUTH), 1);
	pump_until(inbox.count > 0, 5 * SECOND, "no refusal came back");
	cr_assert_eq(inbox.count, 1);
	cr_assert_eq(proto_parse(inbox.last, inbox.last_len, &reply), PROTO_OK);
	cr_assert_eq(reply.type, PROTO_REFUSE);
	cr_assert_eq(b->host.nb_vms, 0, "no VM was made on the destination");

	/* A real migration still goes through. */
	create_vm(a, "vm1", 8, "uniform,rate=1000,fill=20");
	const struct migration_info *m =
	        wait_done(a, start("vm1", "verify on " LOOSE_PREFLIGHT), 20 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	struct vm *moved = host_vm_find(&b->host, "vm1");
	cr_assert_not_null(moved);

	/* Replays of that session: its HELLO, pages over memory, its state again (once the source's
	 * hold of the VM's frames ended, and nothing of the session is on the wire). */
	uint32_t id = m->id;
	pump_until(session(a, (int)id)->local_port == 0, 5 * SECOND, "the source's hold ends");
	m = session(a, (int)id);
	ctl(b, "vm pause vm1");
	uint64_t hash = machine_memory_hash(&moved->machine);
	uint64_t old_session = m->session;
	uint64_t replays_before = all_drops(b);
	send_raw(buf, message(buf, PROTO_HELLO, old_session, 0, &hello, sizeof(hello)));
	for (uint64_t seq = 1; seq <= 5; seq++) {
		uint8_t page[sizeof(pages) + 4096];
		memset(page, 0x5a, sizeof(page));
		struct proto_pages p = {.page = rte_cpu_to_be_64(seq),
		                        .data_len = rte_cpu_to_be_16(4096),
		                        .round = rte_cpu_to_be_32(1000)};
		memcpy(page, &p, sizeof(p));
		send_raw(buf, message(buf, PROTO_PAGES, old_session, seq, page, sizeof(page)));
	}
	send_raw(buf, message(buf, PROTO_AUTH, old_session, 0, &auth, sizeof(auth)));
	uint64_t replays = all_drops(b) - replays_before;
	cr_assert_eq(replays, 7, "every replayed message was dropped and counted (%lu)",
	             (unsigned long)replays);
	cr_assert_eq(machine_memory_hash(&moved->machine), hash, "the VM's memory did not change");
	cr_assert_eq(b->host.nb_vms, 1);
	netif_udp_unbind(&a->host.vmks[0]->netif, 40000);
}

/* Everything the destination says after the handshake is sealed with its own key. A REFUSE,
 * CONFIRM, ACK or ACCEPT forged from the destination's address and port with the live session's
 * id, plain or with a made-up tag, is dropped for authentication; the migration goes on as if it
 * had never been sent, and the VM ends on one host, the destination. */
Test(refuse, forged_replies_from_the_destination_change_nothing)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000,fill=100");
	int id = start("vm1", "max-bandwidth 100M " LOOSE_PREFLIGHT);
	while (session(a, id)->status != MIGRATION_ACTIVE) {
		cr_assert(session(a, id)->running);
		pump();
	}
	const struct migration_info *m = session(a, id);
	uint64_t auth_before = drops(a, MIGRATION_DROP_AUTH);
	struct proto_refuse refuse = {.reason = rte_cpu_to_be_32(PROTO_REFUSE_AUTH)};
	snprintf(refuse.text, sizeof(refuse.text), "forged");
	struct proto_confirm confirm = {0};
	struct proto_ack ack = {.cumulative = rte_cpu_to_be_64(1u << 30),
	                        .sack = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}};
	struct proto_accept accept = {.mtu = rte_cpu_to_be_16(9000)};
	const struct {
		enum proto_type type;
		const void *body;
		uint16_t len;
	} forged[] = {
	        {PROTO_REFUSE, &refuse, sizeof(refuse)},
	        {PROTO_CONFIRM, &confirm, sizeof(confirm)},
	        {PROTO_ACK, &ack, sizeof(ack)},
	        {PROTO_ACCEPT, &accept, sizeof(accept)},
	};
	uint32_t ip;
	cr_assert_eq(netif_parse_ipv4(A_VMK_IP, &ip), 0);
	unsigned int sent = 0;
	for (unsigned int i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		/* Plain (sequence 0), and as a control message with a tag of zeros. */
		for (uint64_t seq = 0; seq <= PROTO_CONTROL_SEQ_BASE + 1;
		     seq += PROTO_CONTROL_SEQ_BASE + 1) {
			uint8_t buf[200] = {0};
			uint16_t len = message(buf, forged[i].type, m->session, seq, forged[i].body,
			                       forged[i].len);
			len = (uint16_t)(len + (seq != 0 ? PROTO_TAG_LEN : 0));
			cr_assert_eq(netif_udp_send(&b->host.vmks[0]->netif, ip, m->local_port,
			                            PROTO_DEFAULT_PORT, buf, len,
			                            loop_now_ns(&b->host.loop)),
			             0);
			sent++;
			pump();
		}
	}
	m = wait_done(a, id, 30 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_eq(drops(a, MIGRATION_DROP_AUTH) - auth_before, sent,
	             "every forged reply dropped for authentication");
	cr_assert_null(host_vm_find(&a->host, "vm1"), "the VM left the source");
	cr_assert_not_null(host_vm_find(&b->host, "vm1"), "and runs on the destination");
}

/* Pages forged into a live session (its id, its peer's address and port, a page past the VM's
 * memory) are never written. */
Test(refuse, page_out_of_range_in_a_live_session)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000,fill=100");
	int id = start("vm1", "max-bandwidth 100M min-bandwidth 10M");
	while (session(a, id)->status != MIGRATION_ACTIVE) {
		cr_assert(session(a, id)->running);
		pump();
	}
	const struct migration_info *m = session(a, id);
	uint8_t buf[200];
	struct proto_pages p = {.page = rte_cpu_to_be_64(1ull << 40),
	                        .data_len = rte_cpu_to_be_16(8)};
	uint8_t body[sizeof(p) + 8] = {0};
	memcpy(body, &p, sizeof(p));
	/* From the session's own port, so only the page number is wrong. */
	uint32_t ip;
	netif_parse_ipv4(B_VMK_IP, &ip);
	uint16_t len = message(buf, PROTO_PAGES, m->session, 100000, body, sizeof(body));
	netif_udp_send(&a->host.vmks[0]->netif, ip, PROTO_DEFAULT_PORT, m->local_port, buf, len,
	               loop_now_ns(&a->host.loop));
	struct proto_zero_run z = {.first_page = rte_cpu_to_be_64(2040),
	                           .count = rte_cpu_to_be_32(100)};
	len = message(buf, PROTO_ZERO_RUN, m->session, 100001, &z, sizeof(z));
	netif_udp_send(&a->host.vmks[0]->netif, ip, PROTO_DEFAULT_PORT, m->local_port, buf, len,
	               loop_now_ns(&a->host.loop));
	m = wait_done(a, id, 30 * SECOND);
	/* From the session's own address and port, but without the session's tag: dropped for
	 * authentication before anything else is looked at. */
	cr_assert_geq(drops(b, MIGRATION_DROP_AUTH), 2);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
}

/* A vMotion vmk too small to carry page fragments is refused at once, with the reason. */
Test(refuse, vmk_mtu_too_small)
{
	char out[512];

	create_vm(a, "vm1", 8, "uniform,rate=1000");
	ctl(a, "vmk set vmk1 mtu 500");
	cr_assert_neq(
	        ctl_try(a, out, sizeof(out), "migrate start vm1 to %s key %s", B_VMK_IP, key_path),
	        0);
	cr_assert(strstr(out, "too small for migration") != NULL, "%s", out);
	assert_vm_unmoved();
}

/* ---- floods, lying peers and encryption ---- */

/* Thousands of HELLOs, from spoofed addresses and from the source's own: none makes a session
 * (a HELLO is answered statelessly), the source's own address is rate-limited and counted, and a
 * real migration in the middle of it starts and completes, as does one going the other way. */
Test(refuse, a_hello_flood_spoofed_and_not)
{
	struct proto_hello hello = {.ciphers = PROTO_CIPHERS_ALL,
	                            .cipher = PROTO_CIPHER_CHACHA20_POLY1305,
	                            .streams = 1};
	uint8_t buf[256];
	uint32_t a_ip;

	cr_assert_eq(netif_parse_ipv4(A_VMK_IP, &a_ip), 0);
	create_vm(a, "vm1", 8, "uniform,rate=1000,fill=20");
	ctl(b,
	    "vm create vm2 mem 8 mac 02:00:00:00:00:0b ip 10.10.0.11/24 portgroup \"VM Network\"");
	int id = start("vm1", LOOSE_PREFLIGHT);
	int back = -1;
	unsigned int flood = 4000;
	for (unsigned int i = 0; i < flood; i++) {
		/* In the vMotion subnet, beyond it, and the source's own address. */
		uint32_t src = i % 4 == 0   ? rte_cpu_to_be_32(0x32323200u | (10 + i % 200))
		               : i % 4 == 1 ? rte_cpu_to_be_32(0x3c000000u | i)
		                            : a_ip;
		snprintf(hello.vm_name, sizeof(hello.vm_name), "flood%u", i);
		uint16_t len = message(buf, PROTO_HELLO, 0x1000 + i, 0, &hello, sizeof(hello));
		wire_inject_udp(WIRE_A_TO_B, src, (uint16_t)(40000 + i % 1000), PROTO_DEFAULT_PORT,
		                buf, len);
		if (i % 16 == 15)
			pump();
		if (i == flood / 2) {
			char out[1024];
			cr_assert_eq(ctl_try(b, out, sizeof(out),
			                     "migrate start vm2 to %s key %s " LOOSE_PREFLIGHT,
			                     A_VMK_IP, key_path),
			             0, "an outgoing migration starts: %s", out);
			back = (int)b->host.migrations.next_id;
		}
	}
	const struct migration_info *m = wait_done(a, id, 30 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	m = wait_done(b, back, 30 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_geq(b->host.migrations.hellos, flood, "every HELLO counted");
	cr_assert_gt(drops(b, MIGRATION_DROP_RATE_LIMITED), 0, "the source's address is limited");
	unsigned int sessions = 0;
	for (unsigned int i = 0; i < MIGRATION_MAX; i++)
		sessions += b->host.migrations.sessions[i] != NULL;
	cr_assert_eq(sessions, 2, "sessions only for the two real migrations");
	cr_assert_not_null(host_vm_find(&b->host, "vm1"));
	cr_assert_not_null(host_vm_find(&a->host, "vm2"));
}

/* A destination of our own that speaks the protocol with the right key and says in its ACCEPT
 * whatever MTU the test asks: a value off the wire that sizes every page message. */
struct lying_destination {
	uint16_t mtu;
	uint8_t psk[MIGRATION_KEY_MAX];
	int psk_len;
};

static void lying_keys(const struct lying_destination *d, const struct proto_hello *hello,
                       const struct proto_terms *terms, uint32_t ip, uint16_t port,
                       uint64_t session, struct proto_keys *keys)
{
	struct proto_transcript t = {.hello = *hello,
	                             .source_ip = ip,
	                             .destination_ip = b->host.vmks[0]->netif.ip,
	                             .source_port = rte_cpu_to_be_16(port),
	                             .destination_port = rte_cpu_to_be_16(PROTO_DEFAULT_PORT),
	                             .session = rte_cpu_to_be_64(session),
	                             .terms = *terms};
	cr_assert_eq(proto_keys_derive(d->psk, (size_t)d->psk_len, &t, keys), 0);
}

static void lying_rx(void *ctx, uint32_t ip, uint16_t port, const uint8_t *payload, uint16_t len,
                     uint16_t dst_port)
{
	struct lying_destination *d = ctx;
	struct netif *vmk = &b->host.vmks[0]->netif;
	struct proto_message msg;
	struct proto_keys keys;
	uint8_t buf[256];

	(void)dst_port;
	if (proto_parse(payload, len, &msg) != PROTO_OK)
		return;
	if (msg.type == PROTO_HELLO) {
		struct proto_challenge challenge = {.terms = {.encrypt = 1}};
		const struct proto_hello *hello = msg.body;
		challenge.terms.cipher = hello->cipher;
		cr_assert_eq(proto_nonce(challenge.terms.nonce), 0);
		lying_keys(d, hello, &challenge.terms, ip, port, msg.session, &keys);
		memcpy(challenge.proof, keys.destination_proof, PROTO_MAC_LEN);
		uint16_t n = message(buf, PROTO_CHALLENGE, msg.session, 0, &challenge,
		                     sizeof(challenge));
		netif_udp_send(vmk, ip, port, PROTO_DEFAULT_PORT, buf, n,
		               loop_now_ns(&b->host.loop));
	} else if (msg.type == PROTO_AUTH) {
		const struct proto_auth *auth = msg.body;
		struct proto_sealer sealer;
		lying_keys(d, &auth->hello, &auth->terms, ip, port, msg.session, &keys);
		cr_assert(proto_proof_equal(keys.source_proof, auth->proof),
		          "the source has the key");
		struct proto_accept accept = {.mtu = rte_cpu_to_be_16(d->mtu),
		                              .free_memory_mb = rte_cpu_to_be_32(1024)};
		uint16_t n = message(buf, PROTO_ACCEPT, msg.session, PROTO_CONTROL_SEQ_BASE + 1,
		                     &accept, sizeof(accept));
		cr_assert_eq(proto_sealer_init(&sealer, auth->terms.cipher, auth->terms.encrypt,
		                               false, keys.reply_key),
		             0);
		cr_assert_eq(proto_seal(&sealer, buf, n, buf + n), 0);
		proto_sealer_fini(&sealer);
		netif_udp_send(vmk, ip, port, PROTO_DEFAULT_PORT, buf,
		               (uint16_t)(n + PROTO_TAG_LEN), loop_now_ns(&b->host.loop));
	}
}

/* 84 to 91 once made the data per message 0 and divided by it; below 84 it underflowed. */
Test(refuse, a_peer_mtu_under_the_minimum_is_refused)
{
	static const uint16_t mtus[] = {0, 83, 84, 91, 575};
	struct lying_destination d;
	char why[128];

	d.psk_len = host_key_load(key_path, d.psk, sizeof(d.psk), why, sizeof(why));
	cr_assert_gt(d.psk_len, 0, "%s", why);
	ctl(b, "migrate unlisten vmk1");
	cr_assert_eq(netif_udp_bind(&b->host.vmks[0]->netif, PROTO_DEFAULT_PORT, lying_rx, &d), 0);
	create_vm(a, "vm1", 8, "uniform,rate=1000");
	for (unsigned int i = 0; i < sizeof(mtus) / sizeof(mtus[0]); i++) {
		d.mtu = mtus[i];
		const struct migration_info *m = wait_done(a, start("vm1", "force"), 10 * SECOND);
		char words[64];
		snprintf(words, sizeof(words), "vMotion MTU is %u, under the 576", mtus[i]);
		cr_assert_eq(m->status, MIGRATION_FAILED);
		cr_assert(strstr(m->reason, words) != NULL, "MTU %u: %s", mtus[i], m->reason);
		assert_vm_unmoved();
	}
	netif_udp_unbind(&b->host.vmks[0]->netif, PROTO_DEFAULT_PORT);
}

/* A VM's encryption policy against the destination's: required and disabled never meet, and
 * the refusal says whose policy is what; opportunistic takes what the other end allows. */
Test(refuse, encryption_policies_that_disagree)
{
	create_vm(a, "vm1", 8, "uniform,rate=1000");
	ctl(a, "vm set vm1 encryption disabled");
	ctl(b, "migrate listen vmk1 key %s encryption required", key_path);
	const struct migration_info *m = wait_done(a, start("vm1", ""), 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED, "%s: %s", migration_status_name(m->status),
	             m->reason);
	cr_assert(strstr(m->reason, "the VM's encryption is disabled, this host's required") !=
	                  NULL,
	          "%s", m->reason);
	assert_vm_unmoved();

	ctl(a, "vm set vm1 encryption required");
	ctl(b, "migrate listen vmk1 key %s encryption disabled", key_path);
	m = wait_done(a, start("vm1", ""), 10 * SECOND);
	cr_assert_eq(m->status, MIGRATION_FAILED);
	cr_assert(strstr(m->reason, "the VM's encryption is required, this host's disabled") !=
	                  NULL,
	          "%s", m->reason);
	assert_vm_unmoved();
	/* Each refused start counted (a slow answer may bring its HELLO once more). */
	cr_assert_geq(drops(b, MIGRATION_DROP_POLICY), 2);

	ctl(a, "vm set vm1 encryption opportunistic");
	m = wait_done(a, start("vm1", LOOSE_PREFLIGHT), 20 * SECOND);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_not(m->encrypted, "authenticated only, as the destination allows");
	cr_assert_neq(m->cipher, 0);
	char out[256];
	cr_assert_neq(ctl_try(a, out, sizeof(out), "vm set vm2 encryption sometimes"), 0);
	cr_assert_neq(ctl_try(a, out, sizeof(out), "migrate listen vmk1 key %s encryption maybe",
	                      key_path),
	              0);
	cr_assert(strstr(out, "required, opportunistic or disabled") != NULL, "%s", out);
}

/* The pages a VM wrote, on the wire: a capture of a migration's frames holds a 64-byte pattern
 * the VM wrote when the session only authenticates, and none of it when it encrypts, with either
 * cipher. */
struct capture {
	pcap_dumper_t *dumper;
};

static bool capture_filter(enum wire_direction direction, struct rte_mbuf *frame, void *ctx)
{
	struct capture *c = ctx;
	struct pcap_pkthdr h = {.caplen = rte_pktmbuf_data_len(frame),
	                        .len = rte_pktmbuf_data_len(frame)};

	if (direction == WIRE_A_TO_B)
		pcap_dump((u_char *)c->dumper, &h, rte_pktmbuf_mtod(frame, const u_char *));
	return true;
}

static bool pattern_on_the_wire(const char *policy, const char *cipher)
{
	static const char pattern[65] =
	        "ferry-pattern-0123456789abcdef-the-vm-wrote-this-into-its-pages!";
	char path[96];
	struct capture c;

	create_vm(a, "vm1", 8, "uniform,rate=100,fill=20");
	struct vm *vm = host_vm_find(&a->host, "vm1");
	for (uint64_t page = 100; page < 164; page++)
		for (uint32_t w = 0; w < 8; w++) {
			uint64_t v;
			memcpy(&v, pattern + 8 * w, 8);
			machine_write64(&vm->machine, page, 8 * w, v);
		}
	ctl(a, "vm set vm1 encryption %s", policy);
	snprintf(path, sizeof(path), "/tmp/ferry-test-capture-%d.pcap", getpid());
	pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
	c.dumper = pcap_dump_open(dead, path);
	cr_assert_not_null(c.dumper);
	wire_filter = capture_filter;
	wire_filter_ctx = &c;
	const struct migration_info *m = wait_done(a, start("vm1", cipher), 20 * SECOND);
	wire_filter = NULL;
	pcap_dump_close(c.dumper);
	pcap_close(dead);
	cr_assert_eq(m->status, MIGRATION_COMPLETED, "%s", m->reason);
	cr_assert_eq(m->encrypted, strcmp(policy, "disabled") != 0);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	static char bytes[64 << 20];
	size_t n = fread(bytes, 1, sizeof(bytes), f);
	fclose(f);
	unlink(path);
	/* The pages the VM wrote (a fifth of 8 MiB) and the pre-flight probe's filler. */
	cr_assert_gt(n, (8u << 20) / 5 + MIGRATION_PROBE_BYTES,
	             "the capture holds the written pages' worth (%zu bytes)", n);
	/* The VM is on b now: bring it home for the next case. */
	ctl(b, "vm destroy vm1");
	return memmem(bytes, n, pattern, 64) != NULL;
}

Test(refuse, encrypted_pages_are_not_on_the_wire)
{
	cr_assert(pattern_on_the_wire("disabled", LOOSE_PREFLIGHT),
	          "authenticated only: the pattern is on the wire (the search works)");
	cr_assert_not(pattern_on_the_wire("required", "cipher chacha20-poly1305 " LOOSE_PREFLIGHT),
	              "encrypted with ChaCha20-Poly1305: nowhere");
	cr_assert_not(pattern_on_the_wire("required", "cipher aes-256-gcm " LOOSE_PREFLIGHT),
	              "encrypted with AES-256-GCM: nowhere");
}
