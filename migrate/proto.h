/* The migration protocol's wire formats: every message between two hosts' migration engines,
 * as packed structs in network byte order with their sizes checked at build time, and one
 * parser that checks every length before anything trusts a byte. */
#ifndef FERRY_MIGRATE_PROTO_H
#define FERRY_MIGRATE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC          0x46525259u /* "FRRY" */
#define PROTO_VERSION        7
#define PROTO_DEFAULT_PORT   8000
#define PROTO_NONCE_LEN      16
#define PROTO_MAC_LEN        32 /* HMAC-SHA256 */
#define PROTO_NAME_LEN       32
#define PROTO_REASON_LEN     64
#define PROTO_PAGE_SIZE      4096
#define PROTO_SACK_BITS      256 /* the channel's window: 2 MiB of pages in flight at MTU 9000 */
#define PROTO_SACK_WORDS     (PROTO_SACK_BITS / 64)
#define PROTO_KEY_LEN        32 /* every derived key */
#define PROTO_TAG_LEN        16 /* Poly1305 or GHASH */
#define PROTO_HASH_LEN       32 /* SHA-256 */
#define PROTO_AEAD_NONCE_LEN 12

enum proto_type {
	PROTO_HELLO = 1, /* source -> destination: the VM's configuration and a nonce */
	PROTO_CHALLENGE, /* destination -> source: a cookie nonce, the cipher, proof of the key */
	PROTO_AUTH,   /* source -> destination: the HELLO again, the cookie and proof of the key */
	PROTO_ACCEPT, /* destination -> source: the session may send pages */
	PROTO_REFUSE, /* either way: a reason, and the session is over */
	PROTO_PAGES,  /* source -> destination: page data (a whole page or a fragment) */
	PROTO_ZERO_RUN, /* source -> destination: a run of all-zero pages */
	PROTO_ACK,      /* destination -> source: cumulative and selective acknowledgement */
	PROTO_STATE,    /* source -> destination: the vCPU state, after the last pages */
	PROTO_CONFIRM,  /* destination -> source: it holds everything and runs the VM */
	PROTO_CANCEL,   /* source -> destination: give up */
	PROTO_PROBE, /* source -> destination: filler the pre-flight check measures the link with */
	PROTO_QUERY, /* source -> destination: the state went out, then silence: did the VM resume? */
	PROTO_REGIONS, /* source -> destination: which 2 MiB regions hold written pages */
	PROTO_ABSENT,  /* source -> destination: pages that come after the VM resumes (post-copy) */
	PROTO_DEMAND,  /* destination -> source: pages the running VM waits on, wanted first */
	PROTO_COMPLETE,   /* destination -> source: post-copy is over, every page is here */
	PROTO_NO_SESSION, /* destination -> source: a QUERY's answer from a host that holds no such
	                   * session (it restarted, or forgot it long after it ended) */
	PROTO_FRAME, /* source -> destination: a frame for the VM that reached the source after the
	              * pause, forwarded (or part of one) */
	PROTO_TYPE_MAX,
};

/* Why a destination refuses a session. */
enum proto_refusal {
	PROTO_REFUSE_VERSION = 1,
	PROTO_REFUSE_AUTH,
	PROTO_REFUSE_DUPLICATE_NAME,
	PROTO_REFUSE_DUPLICATE_MAC,
	PROTO_REFUSE_NO_PORTGROUP,
	PROTO_REFUSE_NO_MEMORY,
	PROTO_REFUSE_BUSY,
	PROTO_REFUSE_INCOMPLETE, /* the vCPU state came before every page */
	PROTO_REFUSE_STATE,      /* the vCPU state does not load */
	PROTO_REFUSE_VERIFY,     /* the memory's hash differs from the source's */
	PROTO_REFUSE_CANCELLED,  /* the destination's operator cancelled */
	PROTO_REFUSE_ENCRYPTION, /* the two ends' encryption policies do not agree */
	PROTO_REFUSE_ABORTED, /* asked after a silence: it never took the state, and never will */
	PROTO_REFUSE_NO_DATASTORE, /* the VM's disk is on a datastore this host does not have */
	PROTO_REFUSE_DISK,         /* the disk's lock was not the source's to give */
};

/* The AEADs a session may seal with. */
enum proto_cipher {
	PROTO_CIPHER_CHACHA20_POLY1305 = 1,
	PROTO_CIPHER_AES_256_GCM = 2,
	PROTO_CIPHER_MAX,
};

#define PROTO_CIPHERS_ALL                                                                          \
	((1u << PROTO_CIPHER_CHACHA20_POLY1305) | (1u << PROTO_CIPHER_AES_256_GCM))

/* A VM's encryption policy, as vSphere's encrypted vMotion has it; the HELLO carries the VM's. */
enum proto_encryption {
	PROTO_ENCRYPTION_REQUIRED = 0,      /* encrypted, or no migration */
	PROTO_ENCRYPTION_OPPORTUNISTIC = 1, /* encrypted when the other end allows it */
	PROTO_ENCRYPTION_DISABLED = 2,      /* authenticated only: contents travel in clear */
	PROTO_ENCRYPTION_MAX,
};

/* Every message starts with this: 24 bytes, network byte order. */
struct proto_header {
	uint32_t magic;
	uint8_t version;
	uint8_t type;
	uint16_t length; /* bytes after the header */
	uint64_t session;
	uint64_t seq; /* 0 for handshake messages; channel messages from 1, control from 2^63 */
} __attribute__((packed));

_Static_assert(sizeof(struct proto_header) == 24, "proto_header is 24 bytes");

/* HELLO: 148 bytes. */
struct proto_hello {
	uint8_t nonce[PROTO_NONCE_LEN];
	char vm_name[PROTO_NAME_LEN]; /* NUL-padded */
	char portgroup[PROTO_NAME_LEN];
	uint8_t mac[6];
	uint8_t prefix_len;
	uint8_t flags; /* PROTO_HELLO_CHECK_ONLY */
	uint32_t ip;
	uint64_t memory_pages;
	uint16_t announce_rounds; /* the self-announcement the destination sends on resume */
	uint16_t announce_initial_ms;
	uint16_t announce_step_ms;
	uint8_t announce_garp;
	uint8_t encryption; /* enum proto_encryption: the VM's policy */
	uint8_t ciphers;    /* bit c: the source seals with enum proto_cipher c */
	uint8_t cipher;     /* the one the source prefers (the faster on its host) */
	uint8_t streams;    /* channels the data travels in, 1 to PROTO_STREAMS_MAX */
	uint8_t reserved;
	/* The VM's disk, if it has one: on the datastore of this name (NUL-padded), in the VM's
	 * folder there, of disk_mib MiB; its lock passes to the destination at the switchover. */
	char datastore[PROTO_NAME_LEN];
	uint32_t disk_mib; /* 0: no disk */
} __attribute__((packed));

_Static_assert(sizeof(struct proto_hello) == 148, "proto_hello is 148 bytes");

#define PROTO_HELLO_CHECK_ONLY  1 /* a pre-flight check: admit, measure, keep nothing */
#define PROTO_HELLO_HUGEPAGES   2 /* the VM's memory is hugetlb-backed, and must be here too */
#define PROTO_HELLO_NO_POSTCOPY 4 /* the VM is marked postcopy off, and stays so there */
#define PROTO_HELLO_KVM         8 /* the VM runs on KVM (ferry's guest), and must there too */

/* ACCEPT: 8 bytes. What the pre-flight check compares. */
struct proto_accept {
	uint16_t mtu; /* of the destination's vmk */
	uint16_t reserved;
	uint32_t free_memory_mb; /* what the destination's host has available */
} __attribute__((packed));

_Static_assert(sizeof(struct proto_accept) == 8, "proto_accept is 8 bytes");

/* What the destination decided for a session, in its CHALLENGE and again in the AUTH: 20 bytes.
 * The nonce is a cookie (an epoch and a MAC over the HELLO and its addresses with the listener's
 * secret), so the destination keeps nothing for a HELLO and rebuilds it all from the AUTH. */
struct proto_terms {
	uint8_t nonce[PROTO_NONCE_LEN];
	uint8_t cipher;  /* enum proto_cipher */
	uint8_t encrypt; /* 1: page contents and state travel encrypted */
	uint16_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_terms) == 20, "proto_terms is 20 bytes");

/* CHALLENGE: 52 bytes. proof = the destination's proof over the transcript. */
struct proto_challenge {
	struct proto_terms terms;
	uint8_t proof[PROTO_MAC_LEN];
} __attribute__((packed));

_Static_assert(sizeof(struct proto_challenge) == 52, "proto_challenge is 52 bytes");

/* AUTH: 200 bytes. The HELLO as first sent, the destination's terms as received, and the source's
 * proof over the transcript. */
struct proto_auth {
	struct proto_hello hello;
	struct proto_terms terms;
	uint8_t proof[PROTO_MAC_LEN];
} __attribute__((packed));

_Static_assert(sizeof(struct proto_auth) == 200, "proto_auth is 200 bytes");

/* What both proofs and every key of a session are bound to: 188 bytes, hashed with SHA-256. Both
 * ends build it from what they sent, received and dialled, so a relay that sends a session to
 * another host, another port or with another VM's name or MAC breaks both proofs. */
struct proto_transcript {
	struct proto_hello hello;
	uint32_t source_ip; /* network byte order, as on the wire */
	uint32_t destination_ip;
	uint16_t source_port; /* network byte order */
	uint16_t destination_port;
	uint64_t session; /* network byte order */
	struct proto_terms terms;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_transcript) == 188, "proto_transcript is 188 bytes");

/* REFUSE: 68 bytes. */
struct proto_refuse {
	uint32_t reason;             /* enum proto_refusal */
	char text[PROTO_REASON_LEN]; /* NUL-padded, for people */
} __attribute__((packed));

_Static_assert(sizeof(struct proto_refuse) == 68, "proto_refuse is 68 bytes");

/* PAGES: 16 bytes, then data_len bytes of page data: either part of one page (a fragment, at MTU
 * 1500) or whole consecutive pages from page on (offset 0, data_len a multiple of the page size,
 * at most PROTO_PAGES_MAX_SPAN of them: two 4 KiB pages fill a 9000-byte frame, so the
 * per-message costs, the AEAD's set-up first, are paid once per 8 KiB). */
struct proto_pages {
	uint64_t page;     /* the (first) page the data belongs to */
	uint32_t round;    /* pre-copy round: an older copy never overwrites a newer one */
	uint16_t offset;   /* where in the page the data starts (fragments at MTU 1500) */
	uint16_t data_len; /* at most PROTO_PAGE_SIZE - offset, or whole pages */
} __attribute__((packed));

#define PROTO_PAGES_MAX_SPAN 2

_Static_assert(sizeof(struct proto_pages) == 16, "proto_pages is 16 bytes");
_Static_assert((PROTO_PAGES_MAX_SPAN * PROTO_PAGE_SIZE) <= UINT16_MAX, "data_len holds the span");

/* ZERO_RUN: 16 bytes. */
struct proto_zero_run {
	uint64_t first_page;
	uint32_t count;
	uint32_t round;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_zero_run) == 16, "proto_zero_run is 16 bytes");

/* ACK: 40 bytes. Everything below cumulative has arrived, and bit i of the sack (bit i % 64 of
 * word i / 64, each word big-endian) says whether cumulative + i has (bit 0, cumulative itself,
 * never has). */
struct proto_ack {
	uint64_t cumulative;
	uint64_t sack[PROTO_SACK_WORDS];
} __attribute__((packed));

_Static_assert(sizeof(struct proto_ack) == 40, "proto_ack is 40 bytes");

/* STATE: 32 bytes, then the vCPU state blob. Sent once every page copy is acknowledged. */
struct proto_state {
	uint64_t memory_hash; /* of the paused source's memory, when verify is set */
	uint32_t final_round;
	uint8_t verify;   /* 1: the destination compares its memory's hash before confirming (in
	                 * post-copy, once every page is here, and says it in its COMPLETE) */
	uint8_t running;  /* 1: the VM ran on the source, so it runs on the destination */
	uint8_t postcopy; /* 1: the pages the ABSENT maps name come after the VM resumes */
	uint8_t reserved;
	uint32_t frames; /* frames held since the pause, numbered below this: the destination gives
	                  * them to the VM ahead of any that reach it directly */
	uint32_t reserved2;
	/* The VM's disk: the one-time token the source wrote into the disk's lock file, flushed
	 * and offered; the destination takes the lock only if the file carries it. 0: no disk. */
	uint64_t disk_handoff;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_state) == 32, "proto_state is 32 bytes");

/* CONFIRM: 56 bytes. The destination holds every page and runs the VM; the source compares what
 * it holds with what it sent before it lets the VM go. */
struct proto_confirm {
	uint64_t memory_hash; /* the destination's, when verify was asked; else 0 */
	uint64_t resumed_ns;  /* the destination's clock when it resumed the VM (for its logs) */
	uint64_t pages;       /* pages it holds */
	uint8_t state_hash[PROTO_HASH_LEN]; /* SHA-256 of the STATE message's body it loaded */
} __attribute__((packed));

_Static_assert(sizeof(struct proto_confirm) == 56, "proto_confirm is 56 bytes");

/* REGIONS: 16 bytes, then a bitmap of count bits (bit i, LSB first in byte i / 8: region
 * first_region + i holds a written page). Sent before round 0, so the destination can back those
 * regions with memory ahead of the pages, and leave the rest unpopulated. */
struct proto_regions {
	uint64_t first_region;
	uint32_t count;
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_regions) == 16, "proto_regions is 16 bytes");

/* ABSENT: 16 bytes, then a bitmap of count bits (bit i, LSB first in byte i / 8: page
 * first_page + i is not at the destination in its newest copy). Sent at a post-copy switchover,
 * before the STATE that resumes the VM there: those pages come afterwards, demanded or in the
 * background, and the VM stalls on each until it comes. */
struct proto_absent {
	uint64_t first_page;
	uint32_t count;
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_absent) == 16, "proto_absent is 16 bytes");

#define PROTO_ABSENT_PER_MESSAGE 32768 /* at most a 4 KiB bitmap (128 MiB); less at small MTUs */

/* DEMAND: 16 bytes. The VM running at the destination touched a page it does not hold yet: the
 * source sends [page, page + count) ahead of its background stream. */
struct proto_demand {
	uint64_t page;
	uint32_t count;
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_demand) == 16, "proto_demand is 16 bytes");

#define PROTO_DEMAND_MAX 16 /* pages one DEMAND may ask for (the fault and its neighbours) */

/* COMPLETE: 16 bytes. Post-copy is over: the destination holds every page (its memory's hash
 * when the source asked to verify); the source may free its copy. */
struct proto_complete {
	uint64_t pages;
	uint64_t memory_hash;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_complete) == 16, "proto_complete is 16 bytes");

/* NO_SESSION: 48 bytes. The host that answers has no session keys for it, so the pre-shared key
 * vouches: mac = HMAC-SHA256(K, header | query_seq | uptime_ms) with K = HKDF(salt = the session
 * id, big-endian; secret = the key; info "ferry2 no session"). The uptime says whether the host
 * restarted after the session's state went out, which is what the source must know. */
struct proto_no_session {
	uint64_t query_seq; /* the QUERY it answers: a source takes only answers to its own */
	uint64_t uptime_ms; /* since the answering host's migration engine started */
	uint8_t mac[PROTO_MAC_LEN];
} __attribute__((packed));

_Static_assert(sizeof(struct proto_no_session) == 48, "proto_no_session is 48 bytes");

/* Writes a NO_SESSION's mac over msg (the header and the body before the mac, which follows
 * them). Returns 0 or -EIO. */
int proto_no_session_mac(const uint8_t *psk, size_t psk_len, const uint8_t *msg,
                         uint8_t mac[PROTO_MAC_LEN]);

/* FRAME: 8 bytes, then data_len bytes of an Ethernet frame (untagged, as the VM's port had it)
 * from offset on; a frame longer than a message at the vmk's MTU goes in parts. The number says
 * where it came in the order the source held them (from 0), which the destination keeps. */
struct proto_frame {
	uint32_t number;
	uint16_t offset;
	uint16_t frame_len; /* the whole frame's */
} __attribute__((packed));

_Static_assert(sizeof(struct proto_frame) == 8, "proto_frame is 8 bytes");

#define PROTO_FRAME_MAX 9022 /* the longest frame forwarded: a 9000-byte MTU's, with a VLAN tag */

#define PROTO_REGIONS_PER_MESSAGE 8192 /* at most a 1 KiB bitmap (16 GiB); less at small MTUs */

/* A parsed message: the header in host byte order and the body in place. */
struct proto_message {
	enum proto_type type;
	uint64_t session;
	uint64_t seq;
	const void *body;    /* the fixed part of the body (a struct above, still network order) */
	const uint8_t *data; /* PAGES and STATE: the bytes after the fixed part */
	uint16_t data_len;
};

/* Why a message was refused by proto_parse. */
enum proto_error {
	PROTO_OK = 0,
	PROTO_ERR_SHORT, /* shorter than a header, or than its length says */
	PROTO_ERR_MAGIC,
	PROTO_ERR_VERSION,
	PROTO_ERR_TYPE,
	PROTO_ERR_LENGTH, /* the body's length is wrong for its type */
	PROTO_ERR_RANGE,  /* a PAGES fragment that runs past its page */
};

/* The fixed body size of each type (PAGES and STATE carry data after it). */
size_t proto_body_size(enum proto_type type);

/* Checks a received datagram and describes it. Nothing in buf is trusted before this says
 * PROTO_OK; page numbers are the engine's to check against the VM. */
enum proto_error proto_parse(const void *buf, size_t len, struct proto_message *msg);

/* Writes a header for a body of body_len bytes; returns the header size. */
size_t proto_write_header(void *buf, enum proto_type type, uint64_t session, uint64_t seq,
                          uint16_t body_len);

/* RFC 5869's HKDF with SHA-256: extract a pseudo-random key from a secret and a salt, and expand
 * it into out_len bytes for an info string. Return 0 or -EIO. */
int proto_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *secret,
                       size_t secret_len, uint8_t prk[PROTO_HASH_LEN]);
int proto_hkdf_expand(const uint8_t prk[PROTO_HASH_LEN], const uint8_t *info, size_t info_len,
                      uint8_t *out, size_t out_len);

/* A session's secrets, derived from the pre-shared key, both nonces and the transcript: a proof
 * per role and a key per direction. */
struct proto_keys {
	uint8_t source_proof[PROTO_MAC_LEN];
	uint8_t destination_proof[PROTO_MAC_LEN];
	uint8_t data_key[PROTO_KEY_LEN];  /* seals source -> destination */
	uint8_t reply_key[PROTO_KEY_LEN]; /* seals destination -> source */
};

/* PRK = HKDF-Extract(hello nonce | cookie nonce, psk); T = SHA-256(transcript); the proof key,
 * the data key and the reply key are HKDF-Expand(PRK, label | T); each proof is HMAC(proof key,
 * role | T). Returns 0 or -EIO. */
int proto_keys_derive(const uint8_t *psk, size_t psk_len, const struct proto_transcript *transcript,
                      struct proto_keys *keys);

/* Forgets a session's secrets. */
void proto_keys_forget(struct proto_keys *keys);

/* Messages outside the channel (accept, ack, confirm, refuse, cancel, query) are sealed too,
 * numbered from here up in their sender's direction: their nonces never meet the channel's,
 * which count from 1. */
#define PROTO_CONTROL_SEQ_BASE (1ull << 63)

/* A session's data travels in up to PROTO_STREAMS_MAX streams, each a channel with its own window,
 * as vMotion's stream helpers and QEMU's multifd channels. A data message's sequence number
 * carries its stream from bit PROTO_STREAM_SHIFT up: numbers (and so nonces) never meet across
 * streams, and an ACK's cumulative number names the stream it acknowledges. */
#define PROTO_STREAMS_MAX  4
#define PROTO_STREAM_SHIFT 56
_Static_assert(((uint64_t)PROTO_STREAMS_MAX << PROTO_STREAM_SHIFT) <= PROTO_CONTROL_SEQ_BASE,
               "stream numbers stay under the control messages'");

/* The stream a channel message's sequence number belongs to. */
static inline unsigned int proto_stream_of(uint64_t seq)
{
	return (unsigned int)(seq >> PROTO_STREAM_SHIFT);
}

/* Seals and opens one direction of a session with an AEAD. The header and the fixed part of the
 * body are associated data, always in clear (so a dissector reads page numbers and rounds); what
 * follows (page contents, the vCPU state, probe filler) is encrypted when the session encrypts,
 * associated data too when not. The nonce is the header's sequence number, unique per message
 * and direction in a session (a retransmission is the same bytes), and each direction has its own
 * key. So nothing on the vMotion network writes into a VM's memory without the key, or reads it
 * when the session encrypts. */
struct proto_sealer {
	void *ctx; /* EVP_CIPHER_CTX, keyed once */
	enum proto_cipher cipher;
	bool encrypt;
	bool opening; /* receives */
};

/* Prepares a sealer for a cipher and a key, to seal (opening false) or open. Returns 0, -EINVAL
 * for an unknown cipher, -ENOMEM or -EIO. */
int proto_sealer_init(struct proto_sealer *sealer, enum proto_cipher cipher, bool encrypt,
                      bool opening, const uint8_t key[PROTO_KEY_LEN]);

/* Frees it and forgets the key. */
void proto_sealer_fini(struct proto_sealer *sealer);

/* The AEAD itself, as RFC 8439 and NIST's GCM define it (the test vectors check these): seals
 * len bytes of in into out (may be in; len 0 authenticates aad alone) and writes the tag; opens
 * in into out (may be in) when the tag checks. */
int proto_aead_seal(struct proto_sealer *sealer, const uint8_t nonce[PROTO_AEAD_NONCE_LEN],
                    const uint8_t *aad, size_t aad_len, const uint8_t *in, uint8_t *out, size_t len,
                    uint8_t tag[PROTO_TAG_LEN]);
bool proto_aead_open(struct proto_sealer *sealer, const uint8_t nonce[PROTO_AEAD_NONCE_LEN],
                     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                     uint8_t *out, const uint8_t tag[PROTO_TAG_LEN]);

/* Seals msg[0, len) (a whole message, header first, type known), encrypting its data in place
 * when the sealer encrypts, and writes the tag. Returns 0 or -EIO. */
int proto_seal(struct proto_sealer *sealer, uint8_t *msg, size_t len, uint8_t tag[PROTO_TAG_LEN]);

/* The same, for a message whose data is elsewhere (a guest page): msg holds the header and fixed
 * body (head_len bytes, its length field counting the data); the data is written after them,
 * encrypted from src in the same pass when the sealer encrypts, copied when it only
 * authenticates; then the tag at tag. Returns 0 or -EIO. */
int proto_seal_from(struct proto_sealer *sealer, uint8_t *msg, size_t head_len, const void *src,
                    size_t data_len, uint8_t tag[PROTO_TAG_LEN]);

/* Checks a parsed message's tag (it follows the message) and, when the session encrypts,
 * decrypts its data into plain (msg->data_len bytes) and points msg->data there. Nothing is
 * trusted, nor written to plain's reader, unless this returns true. */
bool proto_open(struct proto_sealer *sealer, const uint8_t *raw, size_t raw_len,
                struct proto_message *msg, uint8_t *plain);

/* The cipher a host seals fastest with: each sealed over 8 KiB records for a moment. */
enum proto_cipher proto_cipher_fastest(void);

/* SHA-256 of a buffer. */
void proto_sha256(const void *buf, size_t len, uint8_t out[PROTO_HASH_LEN]);

/* Compares two proofs in constant time. */
bool proto_proof_equal(const uint8_t a[PROTO_MAC_LEN], const uint8_t b[PROTO_MAC_LEN]);

/* Fills a nonce from the system's random source; 0 or -EIO. */
int proto_nonce(uint8_t out[PROTO_NONCE_LEN]);

/* The name of a parse error, a message type, a refusal, a cipher and a policy, for logs and the
 * CLI; the last two parse them back (-EINVAL for a name that is none). */
const char *proto_error_name(enum proto_error error);
const char *proto_type_name(enum proto_type type);
const char *proto_refusal_name(enum proto_refusal reason);
const char *proto_cipher_name(enum proto_cipher cipher);
const char *proto_encryption_name(enum proto_encryption policy);
int proto_cipher_parse(const char *name);
int proto_encryption_parse(const char *name);

#endif
