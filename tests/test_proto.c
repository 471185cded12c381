/* Unit tests of the migration protocol's wire formats and its cryptography: round trips, every
 * way a datagram can lie about its length, HKDF and both AEADs against their published vectors,
 * and the key derivation against an independent one. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

#include "migrate/proto.h"

static size_t build(uint8_t *buf, enum proto_type type, const void *body, uint16_t body_len)
{
	size_t n = proto_write_header(buf, type, 0x1122334455667788ull, 42, body_len);
	memcpy(buf + n, body, body_len);
	return n + body_len;
}

Test(proto, a_hello_round_trips)
{
	uint8_t buf[256];
	struct proto_hello hello = {.prefix_len = 24, .ip = RTE_BE32(0x0a000032), .streams = 1};
	struct proto_message msg;

	snprintf(hello.vm_name, sizeof(hello.vm_name), "web01");
	hello.memory_pages = rte_cpu_to_be_64(262144);
	size_t len = build(buf, PROTO_HELLO, &hello, sizeof(hello));
	cr_assert_eq(len, 24 + 148);
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_OK);
	cr_assert_eq(msg.type, PROTO_HELLO);
	cr_assert_eq(msg.session, 0x1122334455667788ull);
	cr_assert_eq(msg.seq, 42);
	const struct proto_hello *h = msg.body;
	cr_assert_str_eq(h->vm_name, "web01");
	cr_assert_eq(rte_be_to_cpu_64(h->memory_pages), 262144);
	/* The stream count sizes the session's stream table: none, or more than a session has,
	 * does not parse, alone or inside an AUTH. */
	struct proto_auth auth = {.hello = hello};
	len = build(buf, PROTO_AUTH, &auth, sizeof(auth));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_OK);
	for (unsigned int streams = 0; streams <= PROTO_STREAMS_MAX + 1;
	     streams += PROTO_STREAMS_MAX + 1) {
		hello.streams = (uint8_t)streams;
		auth.hello = hello;
		len = build(buf, PROTO_HELLO, &hello, sizeof(hello));
		cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_RANGE, "%u streams", streams);
		len = build(buf, PROTO_AUTH, &auth, sizeof(auth));
		cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_RANGE, "%u streams", streams);
	}
}

/* Post-copy's messages: a DEMAND names 1 to PROTO_DEMAND_MAX pages, never none or more; an
 * ABSENT map carries its bitmap as data; a COMPLETE is exactly its body. */
Test(proto, postcopy_messages_parse_within_their_limits)
{
	uint8_t buf[256];
	struct proto_message msg;

	for (uint32_t count = 0; count <= PROTO_DEMAND_MAX + 1; count++) {
		struct proto_demand d = {.page = rte_cpu_to_be_64(7),
		                         .count = rte_cpu_to_be_32(count)};
		size_t len = build(buf, PROTO_DEMAND, &d, sizeof(d));
		enum proto_error want =
		        count == 0 || count > PROTO_DEMAND_MAX ? PROTO_ERR_RANGE : PROTO_OK;
		cr_assert_eq(proto_parse(buf, len, &msg), want, "DEMAND of %u pages", count);
	}
	uint8_t absent[sizeof(struct proto_absent) + 2] = {0};
	struct proto_absent a = {.first_page = rte_cpu_to_be_64(64), .count = rte_cpu_to_be_32(16)};
	memcpy(absent, &a, sizeof(a));
	absent[sizeof(a)] = 0x81;
	size_t len = build(buf, PROTO_ABSENT, absent, sizeof(absent));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_OK);
	cr_assert_eq(msg.data_len, 2);
	cr_assert_eq(msg.data[0], 0x81);
	struct proto_complete c = {.pages = rte_cpu_to_be_64(1)};
	len = build(buf, PROTO_COMPLETE, &c, sizeof(c));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_OK);
	len = build(buf, PROTO_COMPLETE, &c, sizeof(c) - 1);
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_LENGTH);
}

/* A NO_SESSION is exactly its body, and its mac binds the key, the session and every field: a
 * change to any of them changes the mac. */
Test(proto, a_no_session_answer_is_bound_to_key_session_and_fields)
{
	uint8_t buf[128], mac[PROTO_MAC_LEN], other[PROTO_MAC_LEN];
	struct proto_no_session n = {.query_seq = rte_cpu_to_be_64(PROTO_CONTROL_SEQ_BASE + 3),
	                             .uptime_ms = rte_cpu_to_be_64(1500)};
	struct proto_message msg;
	const uint8_t key[] = "a key of sixteen bytes or more";

	size_t len = build(buf, PROTO_NO_SESSION, &n, sizeof(n));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_OK);
	cr_assert_eq(proto_parse(buf, build(buf, PROTO_NO_SESSION, &n, sizeof(n) - 1), &msg),
	             PROTO_ERR_LENGTH);
	len = build(buf, PROTO_NO_SESSION, &n, sizeof(n));
	cr_assert_eq(proto_no_session_mac(key, sizeof(key), buf, mac), 0);
	cr_assert_eq(proto_no_session_mac(key, sizeof(key), buf, other), 0);
	cr_assert_arr_eq(mac, other, PROTO_MAC_LEN, "deterministic");
	cr_assert_eq(proto_no_session_mac(key, sizeof(key) - 1, buf, other), 0);
	cr_assert_arr_neq(mac, other, PROTO_MAC_LEN, "another key");
	size_t fields[] = {
	        offsetof(struct proto_header, session),
	        sizeof(struct proto_header) + offsetof(struct proto_no_session, query_seq),
	        sizeof(struct proto_header) + offsetof(struct proto_no_session, uptime_ms)};
	for (unsigned int f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
		buf[fields[f]] ^= 1;
		cr_assert_eq(proto_no_session_mac(key, sizeof(key), buf, other), 0);
		cr_assert_arr_neq(mac, other, PROTO_MAC_LEN, "field at %zu", fields[f]);
		buf[fields[f]] ^= 1;
	}
}

Test(proto, stream_numbers_name_their_stream)
{
	/* Each stream's numbers start at 1 in its own space, under the control messages'. */
	for (unsigned int s = 0; s < PROTO_STREAMS_MAX; s++) {
		uint64_t first = ((uint64_t)s << PROTO_STREAM_SHIFT) + 1;
		cr_assert_eq(proto_stream_of(first), s);
		cr_assert_eq(proto_stream_of(first + 1000000), s);
		cr_assert_lt(first, PROTO_CONTROL_SEQ_BASE);
	}
	cr_assert_geq(proto_stream_of(PROTO_CONTROL_SEQ_BASE), PROTO_STREAMS_MAX);
}

Test(proto, every_truncation_and_garbage_is_refused)
{
	uint8_t buf[256];
	struct proto_ack ack = {.cumulative = RTE_BE32(7)};
	struct proto_message msg;
	size_t len = build(buf, PROTO_ACK, &ack, sizeof(ack));

	for (size_t cut = 0; cut < len; cut++)
		cr_assert_eq(proto_parse(buf, cut, &msg), PROTO_ERR_SHORT, "cut at %zu", cut);
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_OK);
	/* Random bytes essentially never carry the magic; a fixed seed keeps it repeatable. */
	srand(7);
	for (int i = 0; i < 10000; i++) {
		uint8_t junk[64];
		for (size_t b = 0; b < sizeof(junk); b++)
			junk[b] = (uint8_t)rand();
		cr_assert_neq(proto_parse(junk, sizeof(junk), &msg), PROTO_OK);
	}
}

Test(proto, version_type_and_length_lies_are_named)
{
	uint8_t buf[256];
	struct proto_ack ack = {0};
	struct proto_message msg;
	size_t len = build(buf, PROTO_ACK, &ack, sizeof(ack));

	buf[0] ^= 1;
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_MAGIC);
	buf[0] ^= 1;
	buf[4] = PROTO_VERSION + 1;
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_VERSION);
	buf[4] = PROTO_VERSION;
	buf[5] = PROTO_TYPE_MAX;
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_TYPE);
	buf[5] = 0;
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_TYPE);
	/* An ACK is exactly 16 bytes of body: more is a lie too. */
	len = build(buf, PROTO_ACK, &ack, 15);
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_LENGTH);
	uint8_t longer[17] = {0};
	len = build(buf, PROTO_ACK, longer, 17);
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_LENGTH);
	/* A header that promises more than the datagram holds. */
	len = build(buf, PROTO_ACK, &ack, sizeof(ack));
	cr_assert_eq(proto_parse(buf, len - 1, &msg), PROTO_ERR_SHORT);
	cr_assert_str_eq(proto_error_name(PROTO_ERR_VERSION), "unknown version");
}

Test(proto, page_data_must_match_its_header_and_stay_in_its_page)
{
	uint8_t buf[3 * PROTO_PAGE_SIZE + 64], body[16 + 3 * PROTO_PAGE_SIZE];
	struct proto_pages p = {.page = rte_cpu_to_be_64(3)};
	struct proto_message msg;

	/* A whole page. */
	p.data_len = rte_cpu_to_be_16(PROTO_PAGE_SIZE);
	memcpy(body, &p, sizeof(p));
	memset(body + sizeof(p), 0xab, PROTO_PAGE_SIZE);
	size_t len = build(buf, PROTO_PAGES, body, (uint16_t)(sizeof(p) + PROTO_PAGE_SIZE));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_OK);
	cr_assert_eq(msg.data_len, PROTO_PAGE_SIZE);
	cr_assert_eq(msg.data[0], 0xab);
	/* A fragment that would run past the page. */
	p.offset = rte_cpu_to_be_16(3000);
	p.data_len = rte_cpu_to_be_16(1400);
	memcpy(body, &p, sizeof(p));
	len = build(buf, PROTO_PAGES, body, (uint16_t)(sizeof(p) + 1400));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_RANGE);
	/* A header that says 1400 bytes over 1000 bytes of data. */
	p.offset = 0;
	memcpy(body, &p, sizeof(p));
	len = build(buf, PROTO_PAGES, body, (uint16_t)(sizeof(p) + 1000));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_RANGE);
	/* No data at all. */
	p.data_len = 0;
	memcpy(body, &p, sizeof(p));
	len = build(buf, PROTO_PAGES, body, sizeof(p));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_RANGE);
	/* Two whole pages; then more than a message may span, then a span that does not start at
	 * a page or is not whole pages. */
	p.data_len = rte_cpu_to_be_16(PROTO_PAGES_MAX_SPAN * PROTO_PAGE_SIZE);
	memcpy(body, &p, sizeof(p));
	len = build(buf, PROTO_PAGES, body,
	            (uint16_t)(sizeof(p) + PROTO_PAGES_MAX_SPAN * PROTO_PAGE_SIZE));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_OK);
	p.data_len = rte_cpu_to_be_16((PROTO_PAGES_MAX_SPAN + 1) * PROTO_PAGE_SIZE);
	memcpy(body, &p, sizeof(p));
	len = build(buf, PROTO_PAGES, body,
	            (uint16_t)(sizeof(p) + (PROTO_PAGES_MAX_SPAN + 1) * PROTO_PAGE_SIZE));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_RANGE);
	p.offset = rte_cpu_to_be_16(64);
	p.data_len = rte_cpu_to_be_16(PROTO_PAGE_SIZE);
	memcpy(body, &p, sizeof(p));
	len = build(buf, PROTO_PAGES, body, (uint16_t)(sizeof(p) + PROTO_PAGE_SIZE));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_RANGE);
	p.offset = 0;
	p.data_len = rte_cpu_to_be_16(PROTO_PAGE_SIZE + 64);
	memcpy(body, &p, sizeof(p));
	len = build(buf, PROTO_PAGES, body, (uint16_t)(sizeof(p) + PROTO_PAGE_SIZE + 64));
	cr_assert_eq(proto_parse(buf, len, &msg), PROTO_ERR_RANGE);
}

static void unhex(const char *hex, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(sscanf(hex + 2 * i, "%2hhx", &out[i]), 1);
}

/* RFC 5869, appendix A, test cases 1 and 3 (SHA-256). */
Test(proto, hkdf_matches_rfc_5869)
{
	uint8_t ikm[22], salt[13], info[10], prk[32], okm[42], expected[42];

	memset(ikm, 0x0b, sizeof(ikm));
	for (unsigned int i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	for (unsigned int i = 0; i < sizeof(info); i++)
		info[i] = (uint8_t)(0xf0 + i);
	cr_assert_eq(proto_hkdf_extract(salt, sizeof(salt), ikm, sizeof(ikm), prk), 0);
	unhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", expected, 32);
	cr_assert_arr_eq(prk, expected, 32, "case 1: PRK");
	cr_assert_eq(proto_hkdf_expand(prk, info, sizeof(info), okm, sizeof(okm)), 0);
	unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b88718586"
	      "5",
	      expected, 42);
	cr_assert_arr_eq(okm, expected, 42, "case 1: OKM");

	cr_assert_eq(proto_hkdf_extract(NULL, 0, ikm, sizeof(ikm), prk), 0);
	unhex("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04", expected, 32);
	cr_assert_arr_eq(prk, expected, 32, "case 3: PRK");
	cr_assert_eq(proto_hkdf_expand(prk, NULL, 0, okm, sizeof(okm)), 0);
	unhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c"
	      "8",
	      expected, 42);
	cr_assert_arr_eq(okm, expected, 42, "case 3: OKM");
}

/* One published AEAD vector through the sealer, both ways: the ciphertext and tag as published,
 * the plaintext back, and a flipped tag bit refused. */
static void check_vector(enum proto_cipher cipher, const char *key_hex, const char *nonce_hex,
                         const char *aad_hex, const uint8_t *plain, size_t len,
                         const char *cipher_hex, const char *tag_hex)
{
	uint8_t key[32], nonce[12], aad[64], data[256], expected[256], tag[16], expected_tag[16];
	size_t aad_len = strlen(aad_hex) / 2;
	struct proto_sealer sealer, opener;

	unhex(key_hex, key, 32);
	unhex(nonce_hex, nonce, 12);
	unhex(aad_hex, aad, aad_len);
	unhex(cipher_hex, expected, len);
	unhex(tag_hex, expected_tag, 16);
	cr_assert_eq(proto_sealer_init(&sealer, cipher, true, false, key), 0);
	cr_assert_eq(proto_sealer_init(&opener, cipher, true, true, key), 0);
	memcpy(data, plain, len);
	cr_assert_eq(proto_aead_seal(&sealer, nonce, aad, aad_len, data, data, len, tag), 0);
	cr_assert_arr_eq(data, expected, len, "%s: ciphertext", proto_cipher_name(cipher));
	cr_assert_arr_eq(tag, expected_tag, 16, "%s: tag", proto_cipher_name(cipher));
	uint8_t back[256];
	cr_assert(proto_aead_open(&opener, nonce, aad, aad_len, data, len, back, tag));
	cr_assert_arr_eq(back, plain, len);
	tag[15] ^= 1;
	cr_assert_not(proto_aead_open(&opener, nonce, aad, aad_len, data, len, back, tag));
	proto_sealer_fini(&sealer);
	proto_sealer_fini(&opener);
}

/* RFC 8439, section 2.8.2. */
Test(proto, chacha20_poly1305_matches_rfc_8439)
{
	static const char plain[] =
	        "Ladies and Gentlemen of the class of '99: If I could offer you "
	        "only one tip for the future, sunscreen would be it.";
	check_vector(
	        PROTO_CIPHER_CHACHA20_POLY1305,
	        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
	        "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7", (const uint8_t *)plain,
	        sizeof(plain) - 1,
	        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca967"
	        "1282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee32809"
	        "1b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116",
	        "1ae10b594f09e26a7e902ecbd0600691");
}

/* The GCM specification's test case 16 (AES-256, 96-bit IV, with associated data), as NIST's
 * GCM validation uses it. */
Test(proto, aes_256_gcm_matches_the_gcm_specification)
{
	uint8_t plain[60];

	unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532f"
	      "cf0e2449a6b525b16aedf5aa0de657ba637b39",
	      plain, sizeof(plain));
	check_vector(
	        PROTO_CIPHER_AES_256_GCM,
	        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	        "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2", plain,
	        sizeof(plain),
	        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb"
	        "3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
	        "76fc6ece0f4e1768cddf8853bb2d551b");
}

static void test_transcript(struct proto_transcript *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < PROTO_NONCE_LEN; i++) {
		t->hello.nonce[i] = (uint8_t)i;
		t->terms.nonce[i] = (uint8_t)(16 + i);
	}
}

/* The source's proof and the data key against Python's hmac and hashlib (HKDF written out by
 * hand there), and every field of the transcript changing both. */
Test(proto, keys_and_proofs_match_an_independent_derivation_and_bind_the_transcript)
{
	static const uint8_t source_expected[PROTO_MAC_LEN] = {
	        0x99, 0x44, 0x1d, 0xfb, 0xb3, 0x15, 0xaa, 0x34, 0x21, 0xa2, 0xa3,
	        0xd5, 0x25, 0xa6, 0x8e, 0x05, 0x73, 0x9a, 0x47, 0x49, 0xc5, 0xe5,
	        0x48, 0xfe, 0xc9, 0x27, 0x47, 0x75, 0x09, 0xf8, 0x9a, 0x36};
	static const uint8_t data_expected[PROTO_KEY_LEN] = {
	        0xf3, 0x05, 0x28, 0x66, 0x0e, 0x5d, 0xed, 0xa0, 0x66, 0x82, 0xcb,
	        0x40, 0x45, 0x5f, 0x23, 0xcc, 0xea, 0xfb, 0x94, 0x04, 0x1b, 0xc4,
	        0x48, 0xaf, 0x44, 0x88, 0xed, 0xb2, 0xa7, 0x95, 0x0a, 0xd7};
	const uint8_t psk[] = "ferry-test-key";
	struct proto_transcript t;
	struct proto_keys keys, other;

	test_transcript(&t);
	cr_assert_eq(proto_keys_derive(psk, sizeof(psk) - 1, &t, &keys), 0);
	cr_assert(proto_proof_equal(keys.source_proof, source_expected));
	cr_assert(proto_proof_equal(keys.data_key, data_expected));
	cr_assert_not(proto_proof_equal(keys.source_proof, keys.destination_proof), "by role");
	cr_assert_not(proto_proof_equal(keys.data_key, keys.reply_key), "by direction");
	/* A relay that changes any of these breaks every proof and key. */
	for (unsigned int field = 0; field < 8; field++) {
		test_transcript(&t);
		switch (field) {
		case 0:
			t.source_ip = 1;
			break;
		case 1:
			t.destination_ip = 1;
			break;
		case 2:
			t.source_port = 1;
			break;
		case 3:
			t.destination_port = 1;
			break;
		case 4:
			t.session = 1;
			break;
		case 5:
			t.hello.vm_name[0] = 'x';
			break;
		case 6:
			t.hello.mac[5] = 1;
			break;
		case 7:
			t.hello.datastore[0] = 'x'; /* a relay may not send the disk elsewhere */
			break;
		}
		cr_assert_eq(proto_keys_derive(psk, sizeof(psk) - 1, &t, &other), 0);
		cr_assert_not(proto_proof_equal(keys.source_proof, other.source_proof), "%u",
		              field);
		cr_assert_not(proto_proof_equal(keys.destination_proof, other.destination_proof));
		cr_assert_not(proto_proof_equal(keys.data_key, other.data_key));
	}
	test_transcript(&t);
	cr_assert_eq(proto_keys_derive((const uint8_t *)"other", 5, &t, &other), 0);
	cr_assert_not(proto_proof_equal(keys.destination_proof, other.destination_proof),
	              "another key proves nothing");
	proto_keys_forget(&keys);
	cr_assert_not(proto_proof_equal(keys.data_key, data_expected), "forgotten");
}

Test(proto, nonces_are_fresh)
{
	uint8_t a[PROTO_NONCE_LEN], b[PROTO_NONCE_LEN];

	cr_assert_eq(proto_nonce(a), 0);
	cr_assert_eq(proto_nonce(b), 0);
	cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
}

/* A page message sealed and opened with each cipher, encrypted and not: it opens only intact,
 * with the direction's key; encrypted, its page bytes are not on the wire. */
Test(proto, sealed_messages_open_only_intact_and_with_the_key)
{
	uint8_t key[PROTO_KEY_LEN] = {1}, other[PROTO_KEY_LEN] = {2};
	enum { LEN = 24 + 16 + 128 };

	for (int cipher = 1; cipher < PROTO_CIPHER_MAX; cipher++) {
		for (int encrypt = 0; encrypt < 2; encrypt++) {
			uint8_t msg[LEN + PROTO_TAG_LEN], sent[LEN + PROTO_TAG_LEN], plain[128];
			struct proto_sealer sealer, opener, stranger;
			struct proto_message parsed;
			struct proto_pages p = {.page = rte_cpu_to_be_64(3),
			                        .data_len = rte_cpu_to_be_16(128)};

			cr_assert_eq(proto_sealer_init(&sealer, cipher, encrypt, false, key), 0);
			cr_assert_eq(proto_sealer_init(&opener, cipher, encrypt, true, key), 0);
			cr_assert_eq(proto_sealer_init(&stranger, cipher, encrypt, true, other), 0);
			proto_write_header(msg, PROTO_PAGES, 9, 42, LEN - 24);
			memcpy(msg + 24, &p, sizeof(p));
			for (unsigned int i = 0; i < 128; i++)
				msg[40 + i] = (uint8_t)(i * 7);
			/* Sealed from the data where it lies (a guest page): the same bytes. */
			uint8_t from[LEN + PROTO_TAG_LEN];
			memcpy(from, msg, 40);
			cr_assert_eq(proto_seal_from(&sealer, from, 40, msg + 40, 128, from + LEN),
			             0);
			cr_assert_eq(proto_seal(&sealer, msg, LEN, msg + LEN), 0);
			cr_assert_arr_eq(from, msg, sizeof(msg), "seal_from equals copy and seal");
			memcpy(sent, msg, sizeof(msg));
			bool data_in_clear = true;
			for (unsigned int i = 0; i < 128; i++)
				data_in_clear &= sent[40 + i] == (uint8_t)(i * 7);
			cr_assert_eq(data_in_clear, !encrypt, "%s, encrypt %d",
			             proto_cipher_name(cipher), encrypt);
			cr_assert_eq(proto_parse(sent, LEN, &parsed), PROTO_OK);
			cr_assert(proto_open(&opener, sent, sizeof(sent), &parsed, plain));
			for (unsigned int i = 0; i < 128; i++)
				cr_assert_eq(parsed.data[i], (uint8_t)(i * 7));
			cr_assert_eq(proto_parse(sent, LEN, &parsed), PROTO_OK);
			cr_assert_not(proto_open(&stranger, sent, sizeof(sent), &parsed, plain),
			              "another key opens nothing");
			/* Any flipped bit, header (sequence number), page number, data or tag. */
			for (unsigned int i = 0; i < sizeof(sent); i++) {
				sent[i] ^= 0x10;
				if (proto_parse(sent, LEN, &parsed) == PROTO_OK)
					cr_assert_not(proto_open(&opener, sent, sizeof(sent),
					                         &parsed, plain),
					              "byte %u", i);
				sent[i] ^= 0x10;
			}
			cr_assert_eq(proto_parse(sent, LEN, &parsed), PROTO_OK);
			cr_assert_not(proto_open(&opener, sent, sizeof(sent) - 1, &parsed, plain),
			              "a truncation breaks it");
			proto_sealer_fini(&sealer);
			proto_sealer_fini(&opener);
			proto_sealer_fini(&stranger);
		}
	}
}
