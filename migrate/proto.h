/* The migration protocol's wire formats: every message between two hosts' migration engines,
 * as packed structs in network byte order with their sizes checked at build time, and one
 * parser that checks every length before anything trusts a byte. */
#ifndef FERRY_MIGRATE_PROTO_H
#define FERRY_MIGRATE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC        0x46525259u /* "FRRY" */
#define PROTO_VERSION      1
#define PROTO_DEFAULT_PORT 8000
#define PROTO_NONCE_LEN    16
#define PROTO_MAC_LEN      32 /* HMAC-SHA256 */
#define PROTO_NAME_LEN     32
#define PROTO_REASON_LEN   64
#define PROTO_PAGE_SIZE    4096
#define PROTO_SACK_BITS    64
#define PROTO_KEY_LEN      32 /* the session's data key */
#define PROTO_TAG_LEN      16 /* Poly1305 */

enum proto_type {
	PROTO_HELLO = 1, /* source -> destination: the VM's configuration and a nonce */
	PROTO_CHALLENGE, /* destination -> source: its nonce, and proof it holds the key */
	PROTO_AUTH,      /* source -> destination: proof it holds the key */
	PROTO_ACCEPT,    /* destination -> source: the session may send pages */
	PROTO_REFUSE,    /* either way: a reason, and the session is over */
	PROTO_PAGES,     /* source -> destination: page data (a whole page or a fragment) */
	PROTO_ZERO_RUN,  /* source -> destination: a run of all-zero pages */
	PROTO_ACK,       /* destination -> source: cumulative and selective acknowledgement */
	PROTO_STATE,     /* source -> destination: the vCPU state, after the last pages */
	PROTO_CONFIRM,   /* destination -> source: it holds everything and runs the VM */
	PROTO_CANCEL,    /* source -> destination: give up */
	PROTO_PROBE, /* source -> destination: filler the pre-flight check measures the link with */
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
};

/* Every message starts with this: 24 bytes, network byte order. */
struct proto_header {
	uint32_t magic;
	uint8_t version;
	uint8_t type;
	uint16_t length; /* bytes after the header */
	uint64_t session;
	uint32_t seq; /* transport sequence number of this message (0 for handshake messages) */
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_header) == 24, "proto_header is 24 bytes");

/* HELLO: 108 bytes. */
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
	uint8_t reserved2;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_hello) == 108, "proto_hello is 108 bytes");

#define PROTO_HELLO_CHECK_ONLY 1 /* a pre-flight check: admit, measure, keep nothing */

/* ACCEPT: 8 bytes. What the pre-flight check compares. */
struct proto_accept {
	uint16_t mtu; /* of the destination's vmk */
	uint16_t reserved;
	uint32_t free_memory_mb; /* what the destination's host has available */
} __attribute__((packed));

_Static_assert(sizeof(struct proto_accept) == 8, "proto_accept is 8 bytes");

/* CHALLENGE: 48 bytes. proof = HMAC(key, "dst" | hello nonce | own nonce | session). */
struct proto_challenge {
	uint8_t nonce[PROTO_NONCE_LEN];
	uint8_t proof[PROTO_MAC_LEN];
} __attribute__((packed));

_Static_assert(sizeof(struct proto_challenge) == 48, "proto_challenge is 48 bytes");

/* AUTH: 32 bytes. proof = HMAC(key, "src" | hello nonce | challenge nonce | session). */
struct proto_auth {
	uint8_t proof[PROTO_MAC_LEN];
} __attribute__((packed));

_Static_assert(sizeof(struct proto_auth) == 32, "proto_auth is 32 bytes");

/* REFUSE: 68 bytes. */
struct proto_refuse {
	uint32_t reason;             /* enum proto_refusal */
	char text[PROTO_REASON_LEN]; /* NUL-padded, for people */
} __attribute__((packed));

_Static_assert(sizeof(struct proto_refuse) == 68, "proto_refuse is 68 bytes");

/* PAGES: 16 bytes, then data_len bytes of page data. */
struct proto_pages {
	uint64_t page;     /* the page the data belongs to */
	uint32_t round;    /* pre-copy round: an older copy never overwrites a newer one */
	uint16_t offset;   /* where in the page the data starts (fragments at MTU 1500) */
	uint16_t data_len; /* at most PROTO_PAGE_SIZE - offset */
} __attribute__((packed));

_Static_assert(sizeof(struct proto_pages) == 16, "proto_pages is 16 bytes");

/* ZERO_RUN: 16 bytes. */
struct proto_zero_run {
	uint64_t first_page;
	uint32_t count;
	uint32_t round;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_zero_run) == 16, "proto_zero_run is 16 bytes");

/* ACK: 16 bytes. Everything below cumulative has arrived, and bit i of sack says whether
 * cumulative + i has (bit 0, cumulative itself, never has). */
struct proto_ack {
	uint32_t cumulative;
	uint32_t reserved;
	uint64_t sack;
} __attribute__((packed));

_Static_assert(sizeof(struct proto_ack) == 16, "proto_ack is 16 bytes");

/* STATE: 16 bytes, then the vCPU state blob. Sent once every page copy is acknowledged. */
struct proto_state {
	uint64_t memory_hash; /* of the paused source's memory, when verify is set */
	uint32_t final_round;
	uint8_t verify;  /* 1: the destination compares its memory's hash before confirming */
	uint8_t running; /* 1: the VM ran on the source, so it runs on the destination */
	uint8_t reserved[2];
} __attribute__((packed));

_Static_assert(sizeof(struct proto_state) == 16, "proto_state is 16 bytes");

/* CONFIRM: 16 bytes. The destination holds every page and runs the VM. */
struct proto_confirm {
	uint64_t memory_hash; /* the destination's, when verify was asked; else 0 */
	uint64_t resumed_ns;  /* the destination's clock when it resumed the VM (for its logs) */
} __attribute__((packed));

_Static_assert(sizeof(struct proto_confirm) == 16, "proto_confirm is 16 bytes");

/* A parsed message: the header in host byte order and the body in place. */
struct proto_message {
	enum proto_type type;
	uint64_t session;
	uint32_t seq;
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
size_t proto_write_header(void *buf, enum proto_type type, uint64_t session, uint32_t seq,
                          uint16_t body_len);

/* HMAC-SHA256 proof over (role, hello nonce, challenge nonce, session) with the shared key;
 * role is "src" or "dst", so neither side's proof can be replayed as the other's. Returns 0 or
 * -EIO. */
int proto_proof(const uint8_t *key, size_t key_len, const char *role,
                const uint8_t hello_nonce[PROTO_NONCE_LEN],
                const uint8_t challenge_nonce[PROTO_NONCE_LEN], uint64_t session,
                uint8_t out[PROTO_MAC_LEN]);

/* The session's data key, from the shared key and both nonces (HMAC-SHA256, role "dat"): what
 * seals every message from the source to the destination. Returns 0 or -EIO. */
int proto_data_key(const uint8_t *key, size_t key_len, const uint8_t hello_nonce[PROTO_NONCE_LEN],
                   const uint8_t challenge_nonce[PROTO_NONCE_LEN], uint64_t session,
                   uint8_t out[PROTO_KEY_LEN]);

/* The session's reply key (role "rep"): what seals every message from the destination to the
 * source after the handshake. Another key per direction, so the two sides' sequence numbers
 * never make the same nonce. Returns 0 or -EIO. */
int proto_reply_key(const uint8_t *key, size_t key_len, const uint8_t hello_nonce[PROTO_NONCE_LEN],
                    const uint8_t challenge_nonce[PROTO_NONCE_LEN], uint64_t session,
                    uint8_t out[PROTO_KEY_LEN]);

/* Messages outside the channel (accept, ack, confirm, refuse, cancel, a confirm's nudge) are
 * sealed too, numbered from here up in their sender's direction: their nonces never meet the
 * channel's, which count from 1. */
#define PROTO_CONTROL_SEQ_BASE 0x80000000u

/* Seals and checks the source's channel messages with ChaCha20-Poly1305 over the whole message
 * (header included) as associated data; the nonce is the header's session and sequence number,
 * unique per message in a session (a retransmission is the same bytes). So nothing on the vMotion
 * network writes into a VM's memory without the key. */
struct proto_sealer {
	void *ctx; /* EVP_CIPHER_CTX */
	uint8_t key[PROTO_KEY_LEN];
};

/* Prepares a sealer with a data key. Returns 0 or -ENOMEM. */
int proto_sealer_init(struct proto_sealer *sealer, const uint8_t key[PROTO_KEY_LEN]);

/* Frees it and forgets the key. */
void proto_sealer_fini(struct proto_sealer *sealer);

/* Writes the tag of msg[0, len) (a whole message, header first). Returns 0 or -EIO. */
int proto_seal(struct proto_sealer *sealer, const uint8_t *msg, size_t len,
               uint8_t tag[PROTO_TAG_LEN]);

/* True if tag is msg[0, len)'s. */
bool proto_unseal(struct proto_sealer *sealer, const uint8_t *msg, size_t len,
                  const uint8_t tag[PROTO_TAG_LEN]);

/* Compares two proofs in constant time. */
bool proto_proof_equal(const uint8_t a[PROTO_MAC_LEN], const uint8_t b[PROTO_MAC_LEN]);

/* Fills a nonce from the system's random source; 0 or -EIO. */
int proto_nonce(uint8_t out[PROTO_NONCE_LEN]);

/* The name of a parse error, a message type and a refusal, for logs and the CLI. */
const char *proto_error_name(enum proto_error error);
const char *proto_type_name(enum proto_type type);
const char *proto_refusal_name(enum proto_refusal reason);

#endif
