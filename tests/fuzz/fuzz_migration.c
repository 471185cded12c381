/* libFuzzer target: the migration engine's receive path, both roles, on a real host. The
 * harness is a peer that holds the key: it completes a real handshake (as a source to the host's
 * listener, or as the destination of a migration the host starts), then sends the fuzzer's
 * messages, sealed with the session's keys when the fuzzer says so, so pages, zero runs, states,
 * acks, confirms, refusals, queries, cancels and forwarded frames with any content reach the
 * code past the tag (seeds/migration/frames: frames in parts, out of order, out of window).
 * Nothing may crash or leak; the session is ended after each input.
 * Input: [role: 1 byte] then records [flags: 1][type: 1][seq: 8 LE][length: 2 LE][body]...
 * flags bit 0: seal with the session's key (else a tag of the input's bytes); bit 1: number it
 * after the last sealed message instead of seq. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "cli/cli.h"
#include "ferryd/commands.h"
#include "host/host.h"
#include "migrate/channel.h"
#include "migrate/proto.h"

#define PEER_IP   "50.50.50.2"
#define PEER_PORT 41000
#define HOST_IP   "50.50.50.1"

struct fuzz_migration {
	struct host host;
	struct cli_table cli;
	struct rte_ring *rx, *tx;
	struct rte_mempool *pool;
	uint32_t peer_ip, host_ip;
	uint8_t psk[MIGRATION_KEY_MAX];
	int psk_len;
	uint8_t peer_mac[6];
	uint64_t next_session;
	/* the session under test */
	uint64_t session;
	uint16_t host_port; /* where the harness sends: the listener, or the host's source port */
	uint16_t peer_port; /* where it sends from: its own port, or the one the host dialled */
	struct proto_keys keys;
	struct proto_terms terms;
	struct proto_sealer sealer; /* the harness's direction */
	bool sealer_ready;
	uint64_t seq, control_seq;
	uint8_t reply[2048]; /* the last datagram the host sent the harness */
	uint16_t reply_len;
};

static void die(const char *what)
{
	fprintf(stderr, "fuzz_migration: %s\n", what);
	abort();
}

static void ctl(struct fuzz_migration *f, const char *fmt, ...)
{
	char *text;
	va_list ap;

	va_start(ap, fmt);
	int ret = cli_vrunf(&f->cli, &text, fmt, ap);
	va_end(ap);
	if (ret != 0) {
		fprintf(stderr, "fuzz_migration: %s\n", text != NULL ? text : "");
		abort();
	}
	free(text);
}

/* A UDP datagram from the peer to the host's vmk, tagged for the vMotion VLAN. */
static void inject(struct fuzz_migration *f, uint16_t dst_port, const void *payload, uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(f->pool);
	const struct netif *vmk = &f->host.vmks[0]->netif;
	uint16_t ip_len = (uint16_t)(20 + 8 + len);
	uint8_t *p = m != NULL ? (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(18 + ip_len)) : NULL;

	if (p == NULL)
		die("no buffer");
	memcpy(p, vmk->mac.addr_bytes, 6);
	memcpy(p + 6, f->peer_mac, 6);
	const uint8_t tag[6] = {0x81, 0x00, 0x00, 20, 0x08, 0x00};
	memcpy(p + 12, tag, sizeof(tag));
	struct rte_ipv4_hdr ip = {.version_ihl = 0x45,
	                          .total_length = rte_cpu_to_be_16(ip_len),
	                          .time_to_live = 64,
	                          .next_proto_id = IPPROTO_UDP,
	                          .src_addr = f->peer_ip,
	                          .dst_addr = vmk->ip};
	ip.hdr_checksum = rte_ipv4_cksum(&ip);
	memcpy(p + 18, &ip, sizeof(ip));
	struct rte_udp_hdr udp = {.src_port = rte_cpu_to_be_16(f->peer_port),
	                          .dst_port = rte_cpu_to_be_16(dst_port),
	                          .dgram_len = rte_cpu_to_be_16((uint16_t)(8 + len))};
	memcpy(p + 38, &udp, sizeof(udp));
	memcpy(p + 46, payload, len);
	if (rte_ring_enqueue(f->rx, m) != 0)
		rte_pktmbuf_free(m);
}

/* Answers the host's ARP request for the peer (frame p, tagged). */
static void answer_arp(struct fuzz_migration *f, const uint8_t *p)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(f->pool);
	uint8_t *r = m != NULL ? (uint8_t *)rte_pktmbuf_append(m, 18 + 28) : NULL;

	if (r == NULL)
		die("no buffer");
	memcpy(r, p + 6, 6); /* to the asker */
	memcpy(r + 6, f->peer_mac, 6);
	const uint8_t head[14] = {0x81, 0x00, 0x00, 20, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2};
	memcpy(r + 12, head, sizeof(head));
	memcpy(r + 26, f->peer_mac, 6);
	memcpy(r + 32, &f->peer_ip, 4);
	memcpy(r + 36, p + 18 + 8, 6);  /* the asker's MAC */
	memcpy(r + 42, p + 18 + 14, 4); /* and address */
	if (rte_ring_enqueue(f->rx, m) != 0)
		rte_pktmbuf_free(m);
}

/* Runs the host a few turns, keeping the last migration datagram it sent the peer and answering
 * its ARP for the peer. */
static void pump(struct fuzz_migration *f, unsigned int turns)
{
	for (unsigned int t = 0; t < turns; t++) {
		loop_run_once(&f->host.loop);
		void *frame;
		while (rte_ring_dequeue(f->tx, &frame) == 0) {
			struct rte_mbuf *m = frame;
			uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
			uint32_t size = rte_pktmbuf_data_len(m);
			if (size >= 46 && p[16] == 0x08 && p[17] == 0x06 && p[18 + 7] == 1)
				answer_arp(f, p);
			else if (size >= 46 && p[16] == 0x08 && p[17] == 0x00 &&
			         p[18 + 9] == IPPROTO_UDP && size - 46 <= sizeof(f->reply)) {
				f->reply_len = (uint16_t)(size - 46);
				memcpy(f->reply, p + 46, f->reply_len);
				uint16_t sport;
				memcpy(&sport, p + 38, 2);
				if (f->host_port != PROTO_DEFAULT_PORT || f->session == 0)
					f->host_port = rte_be_to_cpu_16(sport);
			}
			rte_pktmbuf_free(m);
		}
	}
}

static bool reply_is(struct fuzz_migration *f, enum proto_type type, struct proto_message *msg)
{
	return f->reply_len > 0 && proto_parse(f->reply, f->reply_len, msg) == PROTO_OK &&
	       msg->type == type;
}

static void keys_for(struct fuzz_migration *f, const struct proto_hello *hello, uint32_t src_ip,
                     uint16_t src_port, uint32_t dst_ip, uint16_t dst_port)
{
	struct proto_transcript t = {.hello = *hello,
	                             .source_ip = src_ip,
	                             .destination_ip = dst_ip,
	                             .source_port = rte_cpu_to_be_16(src_port),
	                             .destination_port = rte_cpu_to_be_16(dst_port),
	                             .session = rte_cpu_to_be_64(f->session),
	                             .terms = f->terms};
	if (proto_keys_derive(f->psk, (size_t)f->psk_len, &t, &f->keys) < 0)
		die("keys");
}

static size_t build(uint8_t *buf, enum proto_type type, uint64_t seq, const void *body,
                    uint16_t len, uint64_t session)
{
	size_t n = proto_write_header(buf, type, session, seq, len);
	if (len != 0)
		memcpy(buf + n, body, len);
	return n + len;
}

/* Seals with the harness's key and sends. */
static void send_sealed(struct fuzz_migration *f, enum proto_type type, uint64_t seq,
                        const void *body, uint16_t len)
{
	uint8_t buf[CHANNEL_MSG_MAX + PROTO_TAG_LEN];
	size_t n = build(buf, type, seq, body, len, f->session);

	if (proto_seal(&f->sealer, buf, n, buf + n) < 0)
		die("seal");
	inject(f, f->host_port, buf, (uint16_t)(n + PROTO_TAG_LEN));
}

/* The harness as a source: HELLO, CHALLENGE, AUTH, ACCEPT, to the host's listener. */
static bool handshake_as_source(struct fuzz_migration *f)
{
	struct proto_hello hello = {.prefix_len = 24,
	                            .ip = RTE_BE32(0x0a0a000f),
	                            .memory_pages = rte_cpu_to_be_64(512),
	                            .encryption = PROTO_ENCRYPTION_REQUIRED,
	                            .ciphers = PROTO_CIPHERS_ALL,
	                            .cipher = (uint8_t)(1 + f->next_session % 2),
	                            .streams = (uint8_t)(1 + f->next_session % PROTO_STREAMS_MAX)};
	uint8_t buf[512];
	struct proto_message msg;

	f->session = ++f->next_session;
	f->host_port = PROTO_DEFAULT_PORT;
	f->peer_port = PEER_PORT;
	snprintf(hello.vm_name, sizeof(hello.vm_name), "fuzzed");
	snprintf(hello.portgroup, sizeof(hello.portgroup), "VM Network");
	const uint8_t mac[6] = {0x02, 0, 0, 0, 0x0f, 0x0f};
	memcpy(hello.mac, mac, 6);
	f->reply_len = 0;
	inject(f, PROTO_DEFAULT_PORT, buf,
	       (uint16_t)build(buf, PROTO_HELLO, 0, &hello, sizeof(hello), f->session));
	pump(f, 4);
	if (!reply_is(f, PROTO_CHALLENGE, &msg))
		return false;
	struct proto_challenge challenge;
	memcpy(&challenge, msg.body, sizeof(challenge));
	f->terms = challenge.terms;
	keys_for(f, &hello, f->peer_ip, PEER_PORT, f->host_ip, PROTO_DEFAULT_PORT);
	struct proto_auth auth = {.hello = hello, .terms = f->terms};
	memcpy(auth.proof, f->keys.source_proof, PROTO_MAC_LEN);
	f->reply_len = 0;
	inject(f, PROTO_DEFAULT_PORT, buf,
	       (uint16_t)build(buf, PROTO_AUTH, 0, &auth, sizeof(auth), f->session));
	pump(f, 4);
	if (!reply_is(f, PROTO_ACCEPT, &msg))
		return false;
	if (proto_sealer_init(&f->sealer, f->terms.cipher, f->terms.encrypt, false,
	                      f->keys.data_key) < 0)
		die("sealer");
	f->sealer_ready = true;
	return true;
}

/* The harness as a destination: the host migrates its VM to the harness, which answers HELLO
 * with a CHALLENGE and the AUTH with an ACCEPT. */
static bool handshake_as_destination(struct fuzz_migration *f)
{
	struct proto_message msg;
	uint8_t buf[512];

	if (host_vm_find(&f->host, "src") == NULL)
		ctl(f, "vm create src mem 2 mac 02:00:00:00:0e:0e ip 10.10.0.14/24 portgroup \"VM "
		       "Network\" workload uniform,rate=100");
	f->host_port = 0;
	f->peer_port = PROTO_DEFAULT_PORT;
	f->session = 0;
	f->reply_len = 0;
	ctl(f, "migrate start src to %s key /tmp/ferry-fuzz-key force max-bandwidth unlimited",
	    PEER_IP);
	pump(f, 8);
	if (!reply_is(f, PROTO_HELLO, &msg))
		return false;
	f->session = msg.session;
	struct proto_hello hello;
	memcpy(&hello, msg.body, sizeof(hello));
	struct proto_challenge challenge = {.terms = {.cipher = hello.cipher, .encrypt = 1}};
	if (proto_nonce(challenge.terms.nonce) < 0)
		die("nonce");
	f->terms = challenge.terms;
	keys_for(f, &hello, f->host_ip, f->host_port, f->peer_ip, PROTO_DEFAULT_PORT);
	memcpy(challenge.proof, f->keys.destination_proof, PROTO_MAC_LEN);
	f->reply_len = 0;
	inject(f, f->host_port, buf,
	       (uint16_t)build(buf, PROTO_CHALLENGE, 0, &challenge, sizeof(challenge), f->session));
	pump(f, 4);
	if (!reply_is(f, PROTO_AUTH, &msg))
		return false;
	if (proto_sealer_init(&f->sealer, f->terms.cipher, f->terms.encrypt, false,
	                      f->keys.reply_key) < 0)
		die("sealer");
	f->sealer_ready = true;
	f->control_seq = PROTO_CONTROL_SEQ_BASE;
	struct proto_accept accept = {.mtu = rte_cpu_to_be_16(9000),
	                              .free_memory_mb = rte_cpu_to_be_32(1024)};
	send_sealed(f, PROTO_ACCEPT, ++f->control_seq, &accept, sizeof(accept));
	pump(f, 2);
	return true;
}

static struct fuzz_migration *fuzz_setup(void)
{
	static struct fuzz_migration f;
	char *argv[] = {"fuzz_migration", "--no-huge",      "--no-shconf",        "-m", "512",
	                "--no-pci",       "--no-telemetry", "--log-level=*:error"};
	struct host_config config = {.mbuf_data_room = 9216 + 128, .min_mbufs = 2048};
	char why[128];

	if (rte_eal_init((int)RTE_DIM(argv), argv) < 0)
		die("EAL");
	f.rx = rte_ring_create("fuzz_rx", 4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	f.tx = rte_ring_create("fuzz_tx", 4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	f.pool = rte_pktmbuf_pool_create("fuzz_wire", 4095, 0, 0, 9216 + RTE_PKTMBUF_HEADROOM,
	                                 SOCKET_ID_ANY);
	int fd = open("/tmp/ferry-fuzz-key", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (f.rx == NULL || f.tx == NULL || f.pool == NULL || fd < 0 ||
	    write(fd, "fuzzing horse battery staple\n", 29) != 29 || close(fd) < 0 ||
	    host_init(&f.host, &config) < 0 || ferryd_commands_init(&f.cli, &f.host) < 0 ||
	    host_uplink_add_rings(&f.host, "link0", f.rx, f.tx, 9000) < 0)
		die("setup");
	ctl(&f, "portgroup add \"VM Network\" vlan 10");
	ctl(&f, "portgroup add vMotion vlan 20");
	ctl(&f, "vmk add vmk1 portgroup vMotion ip %s/24 mtu 9000", HOST_IP);
	ctl(&f, "migrate listen vmk1 key /tmp/ferry-fuzz-key");
	f.psk_len = host_key_load("/tmp/ferry-fuzz-key", f.psk, sizeof(f.psk), why, sizeof(why));
	if (f.psk_len <= 0 || netif_parse_ipv4(PEER_IP, &f.peer_ip) < 0 ||
	    netif_parse_ipv4(HOST_IP, &f.host_ip) < 0)
		die("key");
	const uint8_t mac[6] = {0x02, 0x5f, 0, 0, 0, 2};
	memcpy(f.peer_mac, mac, 6);
	/* The host learns the peer's MAC from a first datagram's ARP: a gratuitous one would do,
	 * a HELLO answered does too. */
	return &f;
}

/* Ends whatever the input left running: the host's session is cancelled (a source's unknown
 * outcome resolved), so each input starts afresh. */
static void finish(struct fuzz_migration *f, bool as_source)
{
	struct migration_info info;
	uint32_t last = f->host.migrations.next_id;

	if (f->sealer_ready && as_source)
		send_sealed(f, PROTO_CANCEL, ++f->control_seq, NULL, 0);
	pump(f, 2);
	for (uint32_t id = 1; id <= last; id++) {
		if (migration_info(&f->host.migrations, id, loop_now_ns(&f->host.loop), &info) <
		            0 ||
		    !info.running)
			continue;
		/* A source whose state went out becomes unknown-outcome when cancelled. */
		if (info.status != MIGRATION_UNKNOWN_OUTCOME)
			migration_cancel(&f->host.migrations, id);
		if (migration_info(&f->host.migrations, id, loop_now_ns(&f->host.loop), &info) ==
		            0 &&
		    info.status == MIGRATION_UNKNOWN_OUTCOME)
			migration_resolve(&f->host.migrations, id, MIGRATION_RESUME_SOURCE);
	}
	pump(f, 2);
	if (f->sealer_ready)
		proto_sealer_fini(&f->sealer);
	f->sealer_ready = false;
	proto_keys_forget(&f->keys);
	/* A VM that arrived from the harness leaves again. */
	if (host_vm_find(&f->host, "fuzzed") != NULL)
		ctl(f, "vm destroy fuzzed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_migration *f;
	uint8_t buf[CHANNEL_MSG_MAX + PROTO_TAG_LEN];

	if (f == NULL)
		f = fuzz_setup();
	if (size < 1)
		return 0;
	/* The harness is the source (the host's destination receives) or the destination. */
	bool as_source = (data[0] & 1) == 0;
	data++;
	size--;
	bool ready = as_source ? handshake_as_source(f) : handshake_as_destination(f);
	f->seq = as_source ? 1 : PROTO_CONTROL_SEQ_BASE + 1;
	f->control_seq = as_source ? PROTO_CONTROL_SEQ_BASE : f->control_seq;
	while (ready && size >= 12) {
		uint8_t flags = data[0], type = data[1];
		uint64_t seq;
		uint16_t len;
		memcpy(&seq, data + 2, 8);
		memcpy(&len, data + 10, 2);
		data += 12;
		size -= 12;
		if (len > size)
			len = (uint16_t)size;
		if (len > CHANNEL_MSG_MAX - sizeof(struct proto_header) - PROTO_TAG_LEN)
			len = CHANNEL_MSG_MAX - sizeof(struct proto_header) - PROTO_TAG_LEN;
		if (flags & 2) {
			bool control = type != PROTO_PAGES && type != PROTO_ZERO_RUN &&
			               type != PROTO_STATE && type != PROTO_PROBE;
			seq = control || !as_source ? ++f->control_seq : f->seq++;
		}
		if (flags & 1) {
			send_sealed(f, type, seq, data, len);
		} else {
			size_t n = build(buf, type, seq, data, len, f->session);
			inject(f, f->host_port, buf, (uint16_t)n);
		}
		data += len;
		size -= len;
		pump(f, 1);
	}
	finish(f, as_source);
	return 0;
}
