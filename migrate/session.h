/* What the migration engine's parts share, private to migrate/: a session, split by role, and the
 * means every role uses (sending, sealing, the session table, reasons and drop counters). */
#ifndef FERRY_MIGRATE_SESSION_H
#define FERRY_MIGRATE_SESSION_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_log.h>

#include "migrate/channel.h"
#include "migrate/migration.h"
#include "migrate/populate.h"
#include "migrate/proto.h"

struct iface;
struct rte_mbuf;

extern int migration_logtype;

#define MIG_LOG(level, fmt, ...)                                                                   \
	rte_log(RTE_LOG_##level, migration_logtype, "migrate: " fmt "\n", ##__VA_ARGS__)

#define NS_PER_SECOND 1000000000ull
/* Messages one poll may send per session: a burst, so the switch is polled between bursts (tens
 * of microseconds of sealing). */
#define SEND_BUDGET 32
/* While the host's VMs send frames, pre-copy takes at most this share of the worker, accounted
 * over SHARE_WINDOW_NS, as vSphere's network I/O control gives vMotion a share when the uplink
 * is contended: the VMs' traffic comes first, the migration gets the rest and all of an idle
 * worker. The switchover's last round is not held back (the VM is paused). */
#define SHARE_PERCENT         10
#define SHARE_WINDOW_NS       1000000ull
#define EPHEMERAL_FIRST       49152
#define SOURCE_DEMAND_QUEUE   64   /* post-copy: demanded pages queued ahead of the background */
#define DESTINATION_LATENCIES 4096 /* post-copy: fault latencies kept for the percentiles */
#define DEMAND_RESEND_NS      5000000ull /* post-copy: a demand unanswered this long goes again */
#define LINK_OVERHEAD         (14 + 20 + 8) /* Ethernet, IPv4 and UDP headers per message */
#define MESSAGE_OVERHEAD      (sizeof(struct proto_header) + sizeof(struct proto_pages) + PROTO_TAG_LEN)

/* The source's side: the pre-copy rounds and the switchover. */
struct migration_source {
	struct migration_params params;
	uint64_t *to_send; /* this round's pages */
	/* Hybrid's round 0: the log read at checkpoints while the round runs (the pages the VM
	 * wrote again behind the cursor), and the pages sent at the next checkpoint. */
	uint64_t *redirty;
	uint64_t next_check;
	uint64_t cursor;   /* the next page this round looks at */
	uint32_t fragment; /* bytes of the cursor's page already sent (MTU 1500) */
	uint64_t zero_first, zero_count;
	uint32_t round;
	uint64_t active_start_ns, active_start_bytes;
	/* Where the current round began: its record is written at its end. */
	uint64_t round_start_ns, round_start_pages, round_start_bytes;
	uint16_t max_data; /* page bytes per message at the smaller of the two MTUs */
	uint16_t peer_mtu;
	uint32_t peer_free_mb;
	uint32_t not_shrinking;
	bool was_running, paused;
	bool state_sent;       /* the vCPU state went out: from here only the destination decides */
	uint64_t disk_handoff; /* the VM's disk lock, offered with the state (0: no disk) */
	bool draining; /* switchover decided: waiting for the window to empty before the pause */
	bool refused;  /* the destination said no: it holds nothing of the VM */
	uint64_t pause_ns;
	uint64_t query_ns;        /* unknown outcome: when the destination was last asked */
	uint64_t state_sent_ns;   /* when the vCPU state first went out */
	uint64_t first_query_seq; /* the first QUERY's number: NO_SESSION answers only from it */
	bool verify_failed;       /* post-copy: the COMPLETE's hash differs from the pause's */
	bool forgotten;        /* a NO_SESSION from a host up all along: the reason says so, once */
	uint64_t regions_sent; /* round 0 begins with the REGIONS map: how far it went */
	/* The worker's share pre-copy took in the current accounting window, while VMs sent. */
	uint64_t vm_frames_seen;
	uint64_t share_start_ns, share_busy_ns;
	/* Post-copy: asked for (`migrate postcopy`, or the hybrid mode's decision), under way. */
	bool postcopy_asked, postcopy;
	uint64_t *absent;       /* pages the destination lacks that the channel has not taken */
	uint64_t absent_left;   /* how many */
	uint64_t absent_cursor; /* the background stream's next page */
	uint64_t maps_sent;     /* ABSENT maps: pages covered so far */
	uint64_t page_sending;  /* the page whose fragments are going out, or UINT64_MAX */
	uint32_t pages_sending; /* with the absent pages joined to it: one message's, or a run of
	                         * zero pages */
	uint32_t page_fragment; /* bytes of it sent */
	bool page_demanded;     /* it goes because the VM waits on it */
	uint64_t demand[SOURCE_DEMAND_QUEUE]; /* pages the VM waits on, oldest first (a ring) */
	unsigned int demand_head, demand_count;
	bool postcopy_silent; /* the destination fell silent: post-copy holds, reason set */
};

/* The source's pre-flight check: its items and the link measurement. */
struct migration_preflight {
	struct migration_check checks[MIGRATION_CHECK_MAX];
	uint64_t hello_sent_ns, auth_sent_ns, rtt_ns;
	uint64_t probe_start_ns, probe_start_bytes;
	bool probe_sent;
};

/* The destination's side: what arrived. */
struct migration_destination {
	uint32_t *page_round;  /* per page, the newest round held + 1; 0 = nothing yet */
	uint64_t *page_filled; /* per page, a bit per 64-byte block of its newest round held */
	uint64_t filled_end;   /* past the last page anything arrived for: page_filled is 0 there */
	uint64_t nb_complete;
	uint8_t acks_pending;         /* bit s: stream s received something since its last ACK */
	struct proto_accept accept;   /* as sent, for a source that did not hear it */
	struct proto_confirm confirm; /* as sent, for a source that asks again */
	uint8_t *plain;               /* the decrypted data of the message being applied */
	struct populate populate;     /* the helper that backs dense regions ahead of the pages */
	/* Post-copy: the pages the source's ABSENT maps named, then the VM running here (the
	 * host's) while they come, and the page its vCPU waits on. */
	uint64_t *absent;
	bool postcopy;
	bool verify;            /* post-copy: the memory's hash is summed as its pages come */
	uint64_t expected_hash; /* the source's, at the pause (the STATE's) */
	uint64_t postcopy_hash; /* what is here: held at the resume, then each page arrived */
	uint64_t fault_page, fault_ns, demand_ns;
	uint32_t nb_latencies; /* fault-to-arrival times kept, the first DESTINATION_LATENCIES */
	uint64_t latencies[DESTINATION_LATENCIES];
	/* The VM's disk here (hello.disk_mib != 0): its file on this host's datastore. */
	char disk_path[PATH_MAX];
	struct vm_disk_place disk_place;
};

/* Frames for the VM around the switchover (migrate/forward.c). */
struct migration_forward {
	/* source: the port the MAC points at from the pause, and the frames it took */
	struct iface *hold;      /* its netif has the VM's MAC, its port the VM's port group */
	bool pinned;             /* the MAC's static entry points at the hold */
	uint32_t limit;          /* frames kept at most */
	uint64_t settle_ns;      /* no frame for the VM this long: the network has relearned */
	struct rte_mbuf **queue; /* a ring of MIGRATION_FORWARD_RING: held frames, oldest first */
	uint32_t head, count;
	uint32_t sent;   /* of them, the first so many went out whole (kept until the commit) */
	uint16_t offset; /* bytes of the next one already out */
	uint32_t first_number; /* queue[head]'s */
	bool committed;
	uint64_t pause_ns, commit_ns, last_frame_ns;
	/* destination: the source's frames by number, and those that came directly */
	struct vm *vm;
	struct rte_mbuf **reorder; /* MIGRATION_FORWARD_RING slots, by number */
	uint16_t *filled;          /* bytes of each arrived; FORWARD_SKIP: given up */
	uint32_t deliver_next;     /* the next number the VM gets */
	uint32_t numbered;         /* the STATE's: the source held those below before the resume */
	bool resumed, batch_done, diverting;
	uint64_t resumed_ns;
	struct rte_mbuf **direct; /* a MIGRATION_FORWARD_RING array */
	uint32_t direct_count;
	uint64_t *signatures; /* of frames given to the VM lately (a ring), against duplicates */
	uint32_t signature_next, signature_count;
};

struct migration {
	struct migration_engine *engine;
	uint32_t id; /* this host's number for it, from 1 */
	enum migration_role role;
	enum migration_status status;
	char reason[MIGRATION_REASON_MAX];
	char vm_name[VM_NAME_MAX];
	uint64_t session;
	struct iface *vmk;
	uint32_t peer_ip;
	uint16_t peer_port, local_port;
	struct vm *vm; /* source: the VM leaving; destination: its copy, until it runs */
	struct channel channels[PROTO_STREAMS_MAX]; /* the streams: hello.streams of them */
	struct channel_pacer pacer;                 /* theirs together: the session's rate */
	unsigned int next_stream;                   /* where the next message is offered first */
	struct channel_frames frames;               /* what the vmk lends the channels */
	struct rte_mempool *frame_pool;             /* where they come from, reserved */
	uint32_t frames_reserved;
	bool channel_ready;
	struct proto_sealer tx_sealer; /* what this side seals with (data key at the source) */
	struct proto_sealer rx_sealer; /* what the peer seals with (reply key at the source) */
	bool sealer_ready;             /* kept after the end, so a destination can answer a QUERY */
	uint64_t tx_control_seq;       /* control messages sent, from PROTO_CONTROL_SEQ_BASE */
	uint64_t rx_control_seq;       /* the highest control sequence number opened */
	struct proto_hello hello;      /* as sent (source) or received (destination) */
	struct proto_terms terms;      /* the destination's: cookie nonce, cipher, encryption */
	uint8_t source_proof[PROTO_MAC_LEN]; /* the AUTH's: sent again, or known again */
	uint8_t state_hash[PROTO_HASH_LEN];  /* of the vCPU state sent, or loaded */
	uint64_t last_rx_ns, last_handshake_ns;
	uint64_t confirm_hash;
	struct migration_stats stats;
	struct migration_source source;
	struct migration_preflight preflight;
	struct migration_destination destination;
	struct migration_forward forward;
};

/* The engine's clock. */
uint64_t session_now_ns(const struct migration_engine *engine);

/* Counts a message the engine refused. */
void session_count_drop(struct migration_engine *engine, enum migration_drop_reason reason);

/* True while the session holds its VM: setup to switchover, and an unknown outcome. */
bool session_running(const struct migration *m);

/* A new session in a free slot (or the oldest finished one's), NULL if every slot runs or the
 * role has MIGRATION_ROLE_MAX running already. */
struct migration *session_new(struct migration_engine *engine, enum migration_role role);

/* Frees what a session holds for its transfer (channel, bitmaps), keeping its keys. */
void session_release_transfer(struct migration *m);

/* Frees everything a session holds; its record stays for `migrate status`. */
void session_release(struct migration *m);

/* Sets the session's reason; the old reason may be one of the arguments. */
void session_set_reason(struct migration *m, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void session_vset_reason(struct migration *m, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

/* Every datagram to the engine goes through here first: counted, parsed, and counted again by
 * reason if it does not parse. */
enum proto_error session_receive(struct migration_engine *engine, const uint8_t *payload,
                                 uint16_t len, struct proto_message *msg);

/* The transcript both ends' proofs and keys are bound to; ports in host byte order, addresses in
 * network byte order. */
void session_transcript(struct proto_transcript *t, const struct proto_hello *hello,
                        const struct proto_terms *terms, uint32_t source_ip, uint16_t source_port,
                        uint32_t destination_ip, uint16_t destination_port, uint64_t session);

/* A message outside the channel (handshake, acks, refusals): header and body in one datagram. */
int session_send_raw(struct iface *vmk, uint32_t ip, uint16_t port, uint16_t local_port,
                     enum proto_type type, uint64_t session, const void *body, uint16_t body_len,
                     uint64_t now);

/* The same, to the session's peer. */
int session_send(struct migration *m, enum proto_type type, const void *body, uint16_t body_len);

/* A REFUSE with its reason and text. */
int session_send_refusal(struct iface *vmk, uint32_t ip, uint16_t port, uint16_t local_port,
                         uint64_t session, enum proto_refusal reason, const char *text,
                         uint64_t now);

/* The channel's link: one datagram to the peer (ctx is the session). */
int session_link_send(void *ctx, const void *buf, uint16_t len);

/* Prepares the session's streams (hello.streams of them) with one configuration, each with its
 * number and its share of the pacer; a side that sends builds its messages in mbufs it reserves
 * from the host's pools. Returns 0, -EINVAL or -ENOMEM. */
int session_channels_init(struct migration *m, const struct channel_config *config, bool sends,
                          uint64_t now);

/* Sends a message on the next stream that has room (round robin); as channel_send, -EAGAIN when
 * none has. */
int64_t session_channel_send(struct migration *m, enum proto_type type, const void *body,
                             uint16_t body_len, const void *data, uint16_t data_len, uint64_t now);

/* The same on the streams from first on only (post-copy keeps stream 0 for demanded pages). */
int64_t session_channel_send_from(struct migration *m, unsigned int first, enum proto_type type,
                                  const void *body, uint16_t body_len, const void *data,
                                  uint16_t data_len, uint64_t now);

/* The same on one stream. */
int64_t session_channel_send_on(struct migration *m, unsigned int stream, enum proto_type type,
                                const void *body, uint16_t body_len, const void *data,
                                uint16_t data_len, uint64_t now);

/* The stream a channel message's (or an ACK's cumulative) number belongs to; NULL if the session
 * has no such stream. */
struct channel *session_channel_of(struct migration *m, uint64_t seq);

/* Retransmits what timed out on every stream. */
void session_channels_poll(struct migration *m, uint64_t now);

/* True once every stream's messages are acknowledged. */
bool session_channels_idle(const struct migration *m);

/* Makes streams [first, last) urgent (channel_set_urgent) and the others not. */
void session_channels_urgent(struct migration *m, unsigned int first, unsigned int last);

/* The streams' counters, summed (the shortest round trip of them all). */
void session_channels_stats(const struct migration *m, struct channel_stats *sum);

/* Copies the streams' figures into a session's stats: bytes, retransmissions, window cuts and
 * what each stream carried. */
void session_channels_report(const struct migration *m, struct migration_stats *stats);

/* Keys the session's sealers from its derived keys, by role, with its terms' cipher. Returns 0,
 * -ENOMEM or -EIO. */
int session_seal_begin(struct migration *m, const struct proto_keys *keys);

/* The channel's sealer (ctx is the session): the data sealed into place after the head, then the
 * tag. */
int session_seal(void *ctx, uint8_t *buf, uint16_t head_len, const void *data, uint16_t data_len);

/* A control message (outside the channel) to the peer, sealed with this side's key and its next
 * control number once the keys exist, plain before (handshake only). */
int session_send_control(struct migration *m, enum proto_type type, const void *body,
                         uint16_t body_len);

/* Opens a control message from the peer: its tag must check with the peer's key and its number
 * be new; counts the drop (auth, or duplicate for a replay) and returns false if not. */
bool session_open_control(struct migration *m, const struct proto_message *msg, const uint8_t *raw,
                          uint16_t raw_len);

#endif
