/* The migration protocol's wire formats: every message between two hosts' migration engines,
 * as packed structs in network byte order with their sizes checked at build time, and one
 * parser that checks every length before anything trusts a byte. */
#include "proto.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <rte_byteorder.h>

static const size_t body_sizes[PROTO_TYPE_MAX] = {
        [PROTO_HELLO] = sizeof(struct proto_hello),
        [PROTO_CHALLENGE] = sizeof(struct proto_challenge),
        [PROTO_AUTH] = sizeof(struct proto_auth),
        [PROTO_ACCEPT] = sizeof(struct proto_accept),
        [PROTO_REFUSE] = sizeof(struct proto_refuse),
        [PROTO_PAGES] = sizeof(struct proto_pages),
        [PROTO_ZERO_RUN] = sizeof(struct proto_zero_run),
        [PROTO_ACK] = sizeof(struct proto_ack),
        [PROTO_STATE] = sizeof(struct proto_state),
        [PROTO_CONFIRM] = sizeof(struct proto_confirm),
        [PROTO_CANCEL] = 0,
        [PROTO_PROBE] = 0,
};

size_t proto_body_size(enum proto_type type)
{
	return type > 0 && type < PROTO_TYPE_MAX ? body_sizes[type] : 0;
}

enum proto_error proto_parse(const void *buf, size_t len, struct proto_message *msg)
{
	struct proto_header h;

	if (len < sizeof(h))
		return PROTO_ERR_SHORT;
	memcpy(&h, buf, sizeof(h));
	if (rte_be_to_cpu_32(h.magic) != PROTO_MAGIC)
		return PROTO_ERR_MAGIC;
	if (h.version != PROTO_VERSION)
		return PROTO_ERR_VERSION;
	if (h.type == 0 || h.type >= PROTO_TYPE_MAX)
		return PROTO_ERR_TYPE;
	uint16_t body_len = rte_be_to_cpu_16(h.length);
	if (len < sizeof(h) + body_len)
		return PROTO_ERR_SHORT;
	enum proto_type type = (enum proto_type)h.type;
	size_t fixed = body_sizes[type];
	bool carries_data = type == PROTO_PAGES || type == PROTO_STATE || type == PROTO_PROBE;
	if (body_len < fixed || (!carries_data && body_len != fixed))
		return PROTO_ERR_LENGTH;

	msg->type = type;
	msg->session = rte_be_to_cpu_64(h.session);
	msg->seq = rte_be_to_cpu_32(h.seq);
	msg->body = (const uint8_t *)buf + sizeof(h);
	msg->data = (const uint8_t *)buf + sizeof(h) + fixed;
	msg->data_len = (uint16_t)(body_len - fixed);
	if (type == PROTO_PAGES) {
		struct proto_pages p;
		memcpy(&p, msg->body, sizeof(p));
		uint32_t offset = rte_be_to_cpu_16(p.offset);
		uint32_t data_len = rte_be_to_cpu_16(p.data_len);
		/* The data must be exactly what the header says, and stay inside one page. */
		if (data_len != msg->data_len || data_len == 0 ||
		    offset + data_len > PROTO_PAGE_SIZE)
			return PROTO_ERR_RANGE;
	}
	return PROTO_OK;
}

size_t proto_write_header(void *buf, enum proto_type type, uint64_t session, uint32_t seq,
                          uint16_t body_len)
{
	struct proto_header h = {
	        .magic = rte_cpu_to_be_32(PROTO_MAGIC),
	        .version = PROTO_VERSION,
	        .type = (uint8_t)type,
	        .length = rte_cpu_to_be_16(body_len),
	        .session = rte_cpu_to_be_64(session),
	        .seq = rte_cpu_to_be_32(seq),
	};
	memcpy(buf, &h, sizeof(h));
	return sizeof(h);
}

int proto_proof(const uint8_t *key, size_t key_len, const char *role,
                const uint8_t hello_nonce[PROTO_NONCE_LEN],
                const uint8_t challenge_nonce[PROTO_NONCE_LEN], uint64_t session,
                uint8_t out[PROTO_MAC_LEN])
{
	uint8_t input[3 + 2 * PROTO_NONCE_LEN + sizeof(uint64_t)];
	uint64_t session_be = rte_cpu_to_be_64(session);
	unsigned int out_len = 0;

	memcpy(input, role, 3);
	memcpy(input + 3, hello_nonce, PROTO_NONCE_LEN);
	memcpy(input + 3 + PROTO_NONCE_LEN, challenge_nonce, PROTO_NONCE_LEN);
	memcpy(input + 3 + 2 * PROTO_NONCE_LEN, &session_be, sizeof(session_be));
	if (HMAC(EVP_sha256(), key, (int)key_len, input, sizeof(input), out, &out_len) == NULL ||
	    out_len != PROTO_MAC_LEN)
		return -EIO;
	return 0;
}

bool proto_proof_equal(const uint8_t a[PROTO_MAC_LEN], const uint8_t b[PROTO_MAC_LEN])
{
	return CRYPTO_memcmp(a, b, PROTO_MAC_LEN) == 0;
}

int proto_data_key(const uint8_t *key, size_t key_len, const uint8_t hello_nonce[PROTO_NONCE_LEN],
                   const uint8_t challenge_nonce[PROTO_NONCE_LEN], uint64_t session,
                   uint8_t out[PROTO_KEY_LEN])
{
	_Static_assert(PROTO_KEY_LEN == PROTO_MAC_LEN, "the data key is an HMAC-SHA256");
	return proto_proof(key, key_len, "dat", hello_nonce, challenge_nonce, session, out);
}

int proto_reply_key(const uint8_t *key, size_t key_len, const uint8_t hello_nonce[PROTO_NONCE_LEN],
                    const uint8_t challenge_nonce[PROTO_NONCE_LEN], uint64_t session,
                    uint8_t out[PROTO_KEY_LEN])
{
	return proto_proof(key, key_len, "rep", hello_nonce, challenge_nonce, session, out);
}

int proto_sealer_init(struct proto_sealer *sealer, const uint8_t key[PROTO_KEY_LEN])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx == NULL)
		return -ENOMEM;
	if (EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return -EIO;
	}
	sealer->ctx = ctx;
	memcpy(sealer->key, key, PROTO_KEY_LEN);
	return 0;
}

void proto_sealer_fini(struct proto_sealer *sealer)
{
	EVP_CIPHER_CTX_free(sealer->ctx);
	sealer->ctx = NULL;
	OPENSSL_cleanse(sealer->key, sizeof(sealer->key));
}

int proto_seal(struct proto_sealer *sealer, const uint8_t *msg, size_t len,
               uint8_t tag[PROTO_TAG_LEN])
{
	/* The nonce: the header's session (8 bytes) and sequence number (4), as sent. */
	const uint8_t *nonce = msg + offsetof(struct proto_header, session);
	uint8_t none[1];
	int out_len;

	if (len < sizeof(struct proto_header) || len > INT32_MAX ||
	    EVP_EncryptInit_ex(sealer->ctx, NULL, NULL, sealer->key, nonce) != 1 ||
	    EVP_EncryptUpdate(sealer->ctx, NULL, &out_len, msg, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(sealer->ctx, none, &out_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(sealer->ctx, EVP_CTRL_AEAD_GET_TAG, PROTO_TAG_LEN, tag) != 1)
		return -EIO;
	return 0;
}

bool proto_unseal(struct proto_sealer *sealer, const uint8_t *msg, size_t len,
                  const uint8_t tag[PROTO_TAG_LEN])
{
	uint8_t expected[PROTO_TAG_LEN];

	return proto_seal(sealer, msg, len, expected) == 0 &&
	       CRYPTO_memcmp(expected, tag, PROTO_TAG_LEN) == 0;
}

int proto_nonce(uint8_t out[PROTO_NONCE_LEN])
{
	return RAND_bytes(out, PROTO_NONCE_LEN) == 1 ? 0 : -EIO;
}

const char *proto_error_name(enum proto_error error)
{
	static const char *const names[] = {
	        [PROTO_OK] = "ok",
	        [PROTO_ERR_SHORT] = "short",
	        [PROTO_ERR_MAGIC] = "bad magic",
	        [PROTO_ERR_VERSION] = "unknown version",
	        [PROTO_ERR_TYPE] = "unknown type",
	        [PROTO_ERR_LENGTH] = "wrong length for its type",
	        [PROTO_ERR_RANGE] = "page data out of range",
	};
	return (unsigned int)error < sizeof(names) / sizeof(names[0]) ? names[error] : "?";
}

const char *proto_type_name(enum proto_type type)
{
	static const char *const names[PROTO_TYPE_MAX] = {
	        [PROTO_HELLO] = "hello",       [PROTO_CHALLENGE] = "challenge",
	        [PROTO_AUTH] = "auth",         [PROTO_ACCEPT] = "accept",
	        [PROTO_REFUSE] = "refuse",     [PROTO_PAGES] = "pages",
	        [PROTO_ZERO_RUN] = "zero-run", [PROTO_ACK] = "ack",
	        [PROTO_STATE] = "state",       [PROTO_CONFIRM] = "confirm",
	        [PROTO_CANCEL] = "cancel",     [PROTO_PROBE] = "probe",
	};
	return type > 0 && type < PROTO_TYPE_MAX ? names[type] : "?";
}

const char *proto_refusal_name(enum proto_refusal reason)
{
	switch (reason) {
	case PROTO_REFUSE_VERSION:
		return "protocol version not spoken";
	case PROTO_REFUSE_AUTH:
		return "the key could not be proven";
	case PROTO_REFUSE_DUPLICATE_NAME:
		return "a VM of that name exists on the destination";
	case PROTO_REFUSE_DUPLICATE_MAC:
		return "a VM with that MAC exists on the destination";
	case PROTO_REFUSE_NO_PORTGROUP:
		return "the destination lacks the VM's port group";
	case PROTO_REFUSE_NO_MEMORY:
		return "the destination lacks memory for the VM";
	case PROTO_REFUSE_BUSY:
		return "the destination is busy with another migration";
	case PROTO_REFUSE_INCOMPLETE:
		return "the vCPU state came before every page";
	case PROTO_REFUSE_STATE:
		return "the vCPU state does not load on the destination";
	case PROTO_REFUSE_VERIFY:
		return "the destination's memory differs from the source's";
	case PROTO_REFUSE_CANCELLED:
		return "cancelled on the destination";
	}
	return "refused";
}
