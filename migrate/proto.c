/* The migration protocol's wire formats: every message between two hosts' migration engines,
 * as packed structs in network byte order with their sizes checked at build time, and one
 * parser that checks every length before anything trusts a byte. */
#include "proto.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
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
        [PROTO_QUERY] = 0,
        [PROTO_REGIONS] = sizeof(struct proto_regions),
        [PROTO_ABSENT] = sizeof(struct proto_absent),
        [PROTO_DEMAND] = sizeof(struct proto_demand),
        [PROTO_COMPLETE] = sizeof(struct proto_complete),
        [PROTO_NO_SESSION] = sizeof(struct proto_no_session),
        [PROTO_FRAME] = sizeof(struct proto_frame),
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
	bool carries_data = type == PROTO_PAGES || type == PROTO_STATE || type == PROTO_PROBE ||
	                    type == PROTO_REGIONS || type == PROTO_ABSENT || type == PROTO_FRAME;
	if (body_len < fixed || (!carries_data && body_len != fixed))
		return PROTO_ERR_LENGTH;

	msg->type = type;
	msg->session = rte_be_to_cpu_64(h.session);
	msg->seq = rte_be_to_cpu_64(h.seq);
	msg->body = (const uint8_t *)buf + sizeof(h);
	msg->data = (const uint8_t *)buf + sizeof(h) + fixed;
	msg->data_len = (uint16_t)(body_len - fixed);
	if (type == PROTO_PAGES) {
		struct proto_pages p;
		memcpy(&p, msg->body, sizeof(p));
		uint32_t offset = rte_be_to_cpu_16(p.offset);
		uint32_t data_len = rte_be_to_cpu_16(p.data_len);
		/* The data must be exactly what the header says: part of one page, or whole
		 * pages. */
		bool part = offset + data_len <= PROTO_PAGE_SIZE;
		bool whole = offset == 0 && data_len % PROTO_PAGE_SIZE == 0 &&
		             data_len / PROTO_PAGE_SIZE <= PROTO_PAGES_MAX_SPAN;
		if (data_len != msg->data_len || data_len == 0 || (!part && !whole))
			return PROTO_ERR_RANGE;
	}
	if (type == PROTO_FRAME) {
		struct proto_frame f;
		memcpy(&f, msg->body, sizeof(f));
		uint32_t offset = rte_be_to_cpu_16(f.offset),
		         frame_len = rte_be_to_cpu_16(f.frame_len);
		/* A non-empty part that lies inside a frame no longer than any port carries. */
		if (msg->data_len == 0 || frame_len > PROTO_FRAME_MAX ||
		    offset + msg->data_len > frame_len)
			return PROTO_ERR_RANGE;
	}
	if (type == PROTO_DEMAND) {
		struct proto_demand d;
		memcpy(&d, msg->body, sizeof(d));
		uint32_t count = rte_be_to_cpu_32(d.count);
		if (count == 0 || count > PROTO_DEMAND_MAX)
			return PROTO_ERR_RANGE;
	}
	if (type == PROTO_HELLO || type == PROTO_AUTH) {
		/* The HELLO (alone, or inside an AUTH) sizes the session's stream table. */
		const struct proto_hello *hello = (const struct proto_hello *)msg->body;
		if (hello->streams == 0 || hello->streams > PROTO_STREAMS_MAX)
			return PROTO_ERR_RANGE;
	}
	return PROTO_OK;
}

size_t proto_write_header(void *buf, enum proto_type type, uint64_t session, uint64_t seq,
                          uint16_t body_len)
{
	struct proto_header h = {
	        .magic = rte_cpu_to_be_32(PROTO_MAGIC),
	        .version = PROTO_VERSION,
	        .type = (uint8_t)type,
	        .length = rte_cpu_to_be_16(body_len),
	        .session = rte_cpu_to_be_64(session),
	        .seq = rte_cpu_to_be_64(seq),
	};
	memcpy(buf, &h, sizeof(h));
	return sizeof(h);
}

static int hkdf(int mode, const uint8_t *salt, size_t salt_len, const uint8_t *key, size_t key_len,
                const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
	         EVP_PKEY_CTX_set_hkdf_mode(ctx, mode) == 1 &&
	         EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
	         EVP_PKEY_CTX_set1_hkdf_key(ctx, key, (int)key_len) == 1 &&
	         (salt_len == 0 || EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, (int)salt_len) == 1) &&
	         (info_len == 0 || EVP_PKEY_CTX_add1_hkdf_info(ctx, info, (int)info_len) == 1) &&
	         EVP_PKEY_derive(ctx, out, &out_len) == 1;

	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

int proto_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *secret,
                       size_t secret_len, uint8_t prk[PROTO_HASH_LEN])
{
	return hkdf(EVP_PKEY_HKDEF_MODE_EXTRACT_ONLY, salt, salt_len, secret, secret_len, NULL, 0,
	            prk, PROTO_HASH_LEN);
}

int proto_hkdf_expand(const uint8_t prk[PROTO_HASH_LEN], const uint8_t *info, size_t info_len,
                      uint8_t *out, size_t out_len)
{
	return hkdf(EVP_PKEY_HKDEF_MODE_EXPAND_ONLY, NULL, 0, prk, PROTO_HASH_LEN, info, info_len,
	            out, out_len);
}

void proto_sha256(const void *buf, size_t len, uint8_t out[PROTO_HASH_LEN])
{
	SHA256(buf, len, out);
}

/* label | transcript hash: what each key and proof is bound to. */
static int expand_labelled(const uint8_t prk[PROTO_HASH_LEN], const char *label,
                           const uint8_t transcript[PROTO_HASH_LEN], uint8_t out[PROTO_KEY_LEN])
{
	uint8_t info[32 + PROTO_HASH_LEN];
	size_t label_len = strlen(label);

	memcpy(info, label, label_len);
	memcpy(info + label_len, transcript, PROTO_HASH_LEN);
	return proto_hkdf_expand(prk, info, label_len + PROTO_HASH_LEN, out, PROTO_KEY_LEN);
}

static int proof(const uint8_t proof_key[PROTO_KEY_LEN], const char role[4],
                 const uint8_t transcript[PROTO_HASH_LEN], uint8_t out[PROTO_MAC_LEN])
{
	uint8_t input[3 + PROTO_HASH_LEN];
	unsigned int out_len = 0;

	memcpy(input, role, 3);
	memcpy(input + 3, transcript, PROTO_HASH_LEN);
	if (HMAC(EVP_sha256(), proof_key, PROTO_KEY_LEN, input, sizeof(input), out, &out_len) ==
	            NULL ||
	    out_len != PROTO_MAC_LEN)
		return -EIO;
	return 0;
}

int proto_keys_derive(const uint8_t *psk, size_t psk_len, const struct proto_transcript *transcript,
                      struct proto_keys *keys)
{
	uint8_t salt[2 * PROTO_NONCE_LEN], prk[PROTO_HASH_LEN], hash[PROTO_HASH_LEN];
	uint8_t proof_key[PROTO_KEY_LEN];

	memcpy(salt, transcript->hello.nonce, PROTO_NONCE_LEN);
	memcpy(salt + PROTO_NONCE_LEN, transcript->terms.nonce, PROTO_NONCE_LEN);
	proto_sha256(transcript, sizeof(*transcript), hash);
	int ret = proto_hkdf_extract(salt, sizeof(salt), psk, psk_len, prk);
	if (ret == 0)
		ret = expand_labelled(prk, "ferry2 proof", hash, proof_key);
	if (ret == 0)
		ret = expand_labelled(prk, "ferry2 data", hash, keys->data_key);
	if (ret == 0)
		ret = expand_labelled(prk, "ferry2 reply", hash, keys->reply_key);
	if (ret == 0)
		ret = proof(proof_key, "src", hash, keys->source_proof);
	if (ret == 0)
		ret = proof(proof_key, "dst", hash, keys->destination_proof);
	OPENSSL_cleanse(prk, sizeof(prk));
	OPENSSL_cleanse(proof_key, sizeof(proof_key));
	if (ret < 0)
		proto_keys_forget(keys);
	return ret;
}

int proto_no_session_mac(const uint8_t *psk, size_t psk_len, const uint8_t *msg,
                         uint8_t mac[PROTO_MAC_LEN])
{
	static const char info[] = "ferry2 no session";
	uint8_t prk[PROTO_HASH_LEN], key[PROTO_KEY_LEN];
	const size_t covered = sizeof(struct proto_header) + offsetof(struct proto_no_session, mac);
	unsigned int out_len = 0;

	/* The header's session field is the salt, as it stands on the wire. */
	int ret = proto_hkdf_extract(msg + offsetof(struct proto_header, session), sizeof(uint64_t),
	                             psk, psk_len, prk);
	if (ret == 0)
		ret = proto_hkdf_expand(prk, (const uint8_t *)info, sizeof(info) - 1, key,
		                        sizeof(key));
	if (ret == 0 &&
	    (HMAC(EVP_sha256(), key, sizeof(key), msg, covered, mac, &out_len) == NULL ||
	     out_len != PROTO_MAC_LEN))
		ret = -EIO;
	OPENSSL_cleanse(prk, sizeof(prk));
	OPENSSL_cleanse(key, sizeof(key));
	return ret;
}

void proto_keys_forget(struct proto_keys *keys)
{
	OPENSSL_cleanse(keys, sizeof(*keys));
}

bool proto_proof_equal(const uint8_t a[PROTO_MAC_LEN], const uint8_t b[PROTO_MAC_LEN])
{
	return CRYPTO_memcmp(a, b, PROTO_MAC_LEN) == 0;
}

static const EVP_CIPHER *cipher_of(enum proto_cipher cipher)
{
	switch (cipher) {
	case PROTO_CIPHER_CHACHA20_POLY1305:
		return EVP_chacha20_poly1305();
	case PROTO_CIPHER_AES_256_GCM:
		return EVP_aes_256_gcm();
	default:
		return NULL;
	}
}

int proto_sealer_init(struct proto_sealer *sealer, enum proto_cipher cipher, bool encrypt,
                      bool opening, const uint8_t key[PROTO_KEY_LEN])
{
	const EVP_CIPHER *evp = cipher_of(cipher);

	if (evp == NULL)
		return -EINVAL;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return -ENOMEM;
	/* Keyed once: a message then only sets its nonce (the AES key schedule is not per
	 * message). */
	if (EVP_CipherInit_ex(ctx, evp, NULL, NULL, NULL, opening ? 0 : 1) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, PROTO_AEAD_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, opening ? 0 : 1) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return -EIO;
	}
	sealer->ctx = ctx;
	sealer->cipher = cipher;
	sealer->encrypt = encrypt;
	sealer->opening = opening;
	return 0;
}

void proto_sealer_fini(struct proto_sealer *sealer)
{
	EVP_CIPHER_CTX_free(sealer->ctx); /* cleanses the key schedule */
	sealer->ctx = NULL;
}

/* The 96-bit nonce: four zero bytes and the header's 64-bit sequence number, as sent. */
static void nonce_of(const uint8_t *msg, uint8_t nonce[PROTO_AEAD_NONCE_LEN])
{
	memset(nonce, 0, 4);
	memcpy(nonce + 4, msg + offsetof(struct proto_header, seq), 8);
}

/* Where a message's associated data ends: after the fixed body when it encrypts, else at its
 * end. */
static size_t associated_len(const struct proto_sealer *sealer, const uint8_t *msg, size_t len)
{
	size_t fixed = sizeof(struct proto_header) +
	               proto_body_size((enum proto_type)msg[offsetof(struct proto_header, type)]);

	return sealer->encrypt && fixed < len ? fixed : len;
}

int proto_aead_seal(struct proto_sealer *sealer, const uint8_t nonce[PROTO_AEAD_NONCE_LEN],
                    const uint8_t *aad, size_t aad_len, const uint8_t *in, uint8_t *out, size_t len,
                    uint8_t tag[PROTO_TAG_LEN])
{
	uint8_t none[1];
	int out_len;

	if (sealer->opening || aad_len > INT32_MAX || len > INT32_MAX ||
	    EVP_EncryptInit_ex(sealer->ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_EncryptUpdate(sealer->ctx, NULL, &out_len, aad, (int)aad_len) != 1 ||
	    (len != 0 && EVP_EncryptUpdate(sealer->ctx, out, &out_len, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(sealer->ctx, none, &out_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(sealer->ctx, EVP_CTRL_AEAD_GET_TAG, PROTO_TAG_LEN, tag) != 1)
		return -EIO;
	return 0;
}

bool proto_aead_open(struct proto_sealer *sealer, const uint8_t nonce[PROTO_AEAD_NONCE_LEN],
                     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                     uint8_t *out, const uint8_t tag[PROTO_TAG_LEN])
{
	uint8_t expected[PROTO_TAG_LEN], none[1];
	int out_len;

	memcpy(expected, tag, PROTO_TAG_LEN);
	return sealer->opening && aad_len <= INT32_MAX && len <= INT32_MAX &&
	       EVP_DecryptInit_ex(sealer->ctx, NULL, NULL, NULL, nonce) == 1 &&
	       EVP_CIPHER_CTX_ctrl(sealer->ctx, EVP_CTRL_AEAD_SET_TAG, PROTO_TAG_LEN, expected) ==
	               1 &&
	       EVP_DecryptUpdate(sealer->ctx, NULL, &out_len, aad, (int)aad_len) == 1 &&
	       (len == 0 || EVP_DecryptUpdate(sealer->ctx, out, &out_len, in, (int)len) == 1) &&
	       EVP_DecryptFinal_ex(sealer->ctx, none, &out_len) == 1;
}

int proto_seal(struct proto_sealer *sealer, uint8_t *msg, size_t len, uint8_t tag[PROTO_TAG_LEN])
{
	uint8_t nonce[PROTO_AEAD_NONCE_LEN];

	if (len < sizeof(struct proto_header))
		return -EIO;
	size_t aad = associated_len(sealer, msg, len);
	nonce_of(msg, nonce);
	return proto_aead_seal(sealer, nonce, msg, aad, msg + aad, msg + aad, len - aad, tag);
}

int proto_seal_from(struct proto_sealer *sealer, uint8_t *msg, size_t head_len, const void *src,
                    size_t data_len, uint8_t tag[PROTO_TAG_LEN])
{
	uint8_t nonce[PROTO_AEAD_NONCE_LEN];

	if (head_len < sizeof(struct proto_header) || head_len + data_len > INT32_MAX)
		return -EIO;
	size_t len = head_len + data_len;
	size_t aad = associated_len(sealer, msg, len);
	if (aad == len) {
		/* Authenticated only: the data is associated data, copied as it is. */
		if (data_len != 0)
			memcpy(msg + head_len, src, data_len);
		return proto_seal(sealer, msg, len, tag);
	}
	/* Encrypted: the head is the associated data, and the data goes from src to its place
	 * encrypted, one pass. */
	if (aad != head_len)
		return -EIO;
	nonce_of(msg, nonce);
	return proto_aead_seal(sealer, nonce, msg, head_len, src, msg + head_len, data_len, tag);
}

bool proto_open(struct proto_sealer *sealer, const uint8_t *raw, size_t raw_len,
                struct proto_message *msg, uint8_t *plain)
{
	size_t len = (size_t)(msg->data - raw) + msg->data_len;
	uint8_t nonce[PROTO_AEAD_NONCE_LEN];

	if (raw_len != len + PROTO_TAG_LEN)
		return false;
	size_t aad = associated_len(sealer, raw, len);
	if (aad < len && plain == NULL)
		return false;
	nonce_of(raw, nonce);
	if (!proto_aead_open(sealer, nonce, raw, aad, raw + aad, len - aad, plain, raw + len))
		return false;
	if (aad < len)
		msg->data = plain;
	return true;
}

enum proto_cipher proto_cipher_fastest(void)
{
	static const enum proto_cipher ciphers[] = {PROTO_CIPHER_CHACHA20_POLY1305,
	                                            PROTO_CIPHER_AES_256_GCM};
	uint8_t record[sizeof(struct proto_header) + 8192 + PROTO_TAG_LEN] = {0};
	enum proto_cipher best = PROTO_CIPHER_CHACHA20_POLY1305;
	uint64_t best_ns = UINT64_MAX;
	uint8_t key[PROTO_KEY_LEN] = {0};

	proto_write_header(record, PROTO_PROBE, 0, 1, 8192);
	for (unsigned int c = 0; c < sizeof(ciphers) / sizeof(ciphers[0]); c++) {
		struct proto_sealer sealer;
		if (proto_sealer_init(&sealer, ciphers[c], true, false, key) < 0)
			continue;
		/* The fastest of a few tries, so a preemption does not decide. */
		uint64_t fastest = UINT64_MAX;
		for (unsigned int t = 0; t < 5; t++) {
			struct timespec a, b;
			clock_gettime(CLOCK_MONOTONIC, &a);
			for (unsigned int i = 0; i < 16; i++)
				proto_seal(&sealer, record, sizeof(record) - PROTO_TAG_LEN,
				           record + sizeof(record) - PROTO_TAG_LEN);
			clock_gettime(CLOCK_MONOTONIC, &b);
			uint64_t ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull +
			              (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec;
			if (ns < fastest)
				fastest = ns;
		}
		proto_sealer_fini(&sealer);
		if (fastest < best_ns) {
			best_ns = fastest;
			best = ciphers[c];
		}
	}
	return best;
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
	        [PROTO_QUERY] = "query",       [PROTO_REGIONS] = "regions",
	        [PROTO_ABSENT] = "absent",     [PROTO_DEMAND] = "demand",
	        [PROTO_COMPLETE] = "complete", [PROTO_NO_SESSION] = "no-session",
	        [PROTO_FRAME] = "frame",
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
	case PROTO_REFUSE_ENCRYPTION:
		return "the encryption policies do not agree";
	case PROTO_REFUSE_ABORTED:
		return "the destination never took the state and dropped its copy";
	case PROTO_REFUSE_NO_DATASTORE:
		return "the destination lacks the datastore of the VM's disk";
	case PROTO_REFUSE_DISK:
		return "the disk's lock was not the source's to give";
	}
	return "refused";
}

static const char *const cipher_names[PROTO_CIPHER_MAX] = {
        [PROTO_CIPHER_CHACHA20_POLY1305] = "chacha20-poly1305",
        [PROTO_CIPHER_AES_256_GCM] = "aes-256-gcm",
};

static const char *const encryption_names[PROTO_ENCRYPTION_MAX] = {
        [PROTO_ENCRYPTION_REQUIRED] = "required",
        [PROTO_ENCRYPTION_OPPORTUNISTIC] = "opportunistic",
        [PROTO_ENCRYPTION_DISABLED] = "disabled",
};

const char *proto_cipher_name(enum proto_cipher cipher)
{
	return cipher > 0 && cipher < PROTO_CIPHER_MAX ? cipher_names[cipher] : "?";
}

const char *proto_encryption_name(enum proto_encryption policy)
{
	return (unsigned int)policy < PROTO_ENCRYPTION_MAX ? encryption_names[policy] : "?";
}

int proto_cipher_parse(const char *name)
{
	for (int c = 1; c < PROTO_CIPHER_MAX; c++)
		if (strcmp(name, cipher_names[c]) == 0)
			return c;
	return -EINVAL;
}

int proto_encryption_parse(const char *name)
{
	for (int p = 0; p < PROTO_ENCRYPTION_MAX; p++)
		if (strcmp(name, encryption_names[p]) == 0)
			return p;
	return -EINVAL;
}
