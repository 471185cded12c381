/* Live migration refused and attacked: wrong keys and key files, duplicates, a missing port
 * group, bad, replayed and forged packets in both directions, between two hosts in one process. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

	/* Unknown version: a HELLO of version 3 gets a refusal that says why. */
	struct proto_hello hello = {.ciphers = PROTO_CIPHERS_ALL,
	                            .cipher = PROTO_CIPHER_CHACHA20_POLY1305};
	snprintf(hello.vm_name, sizeof(hello.vm_name), "intruder");
	uint16_t len = message(buf, PROTO_HELLO, 77, 0, &hello, sizeof(hello));
	buf[4] = 3;
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

	/* Replays of that session: its HELLO, pages over memory, its state again. */
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
	struct proto_ack ack = {.cumulative = rte_cpu_to_be_64(1u << 30), .sack = UINT64_MAX};
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
