/* libFuzzer target: arbitrary datagrams through the migration protocol's parser and sealer. A
 * datagram that parses has its body read to the last byte it claims and its tag checked with
 * both ciphers, encrypted and not; and, sealed with each, it must open again to the same bytes.
 * Input: one datagram. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/proto.h"

#define MAX_DATAGRAM 9000

struct fuzz_proto {
	struct proto_sealer seal[PROTO_CIPHER_MAX][2];
	struct proto_sealer open[PROTO_CIPHER_MAX][2];
	uint8_t plain[MAX_DATAGRAM];
	uint8_t copy[MAX_DATAGRAM + PROTO_TAG_LEN];
	volatile uint8_t sink;
};

static void die(const char *what)
{
	fprintf(stderr, "fuzz_proto: %s\n", what);
	abort();
}

static struct fuzz_proto *fuzz_setup(void)
{
	static struct fuzz_proto f;
	uint8_t key[PROTO_KEY_LEN] = {7};

	for (int c = 1; c < PROTO_CIPHER_MAX; c++)
		for (int e = 0; e < 2; e++)
			if (proto_sealer_init(&f.seal[c][e], c, e, false, key) < 0 ||
			    proto_sealer_init(&f.open[c][e], c, e, true, key) < 0)
				die("sealer");
	return &f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_proto *f;
	struct proto_message msg;

	if (f == NULL)
		f = fuzz_setup();
	if (size > MAX_DATAGRAM || proto_parse(data, size, &msg) != PROTO_OK)
		return 0;
	/* Every byte the parse vouches for is readable (ASan says so if not). */
	const uint8_t *body = msg.body;
	uint8_t sum = 0;
	for (size_t i = 0; i < proto_body_size(msg.type); i++)
		sum ^= body[i];
	for (uint16_t i = 0; i < msg.data_len; i++)
		sum ^= msg.data[i];
	f->sink = sum;
	f->sink = (uint8_t)proto_type_name(msg.type)[0];
	if (msg.type == PROTO_REFUSE) {
		struct proto_refuse refuse;
		memcpy(&refuse, body, sizeof(refuse));
		f->sink = (uint8_t)proto_refusal_name((enum proto_refusal)refuse.reason)[0];
	}
	size_t len = (size_t)(msg.data - (const uint8_t *)data) + msg.data_len;
	for (int c = 1; c < PROTO_CIPHER_MAX; c++) {
		for (int e = 0; e < 2; e++) {
			/* As received: checked, whatever its length and tag. */
			struct proto_message received = msg;
			f->sink = proto_open(&f->open[c][e], data, size, &received, f->plain);
			/* Sealed here, it opens to what was sealed. */
			struct proto_message sealed;
			memcpy(f->copy, data, len);
			if (proto_seal(&f->seal[c][e], f->copy, len, f->copy + len) < 0)
				die("seal");
			if (proto_parse(f->copy, len, &sealed) != PROTO_OK)
				die("a sealed message no longer parses");
			if (!proto_open(&f->open[c][e], f->copy, len + PROTO_TAG_LEN, &sealed,
			                f->plain))
				die("a sealed message does not open");
			if (sealed.data_len != msg.data_len ||
			    memcmp(sealed.data, msg.data, msg.data_len) != 0)
				die("opened to other bytes");
		}
	}
	return 0;
}
