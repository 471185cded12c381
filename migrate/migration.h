/* The live-migration engine: both ends of a pre-copy migration, poll-mode on the worker, over UDP
 * between two VMkernel interfaces. The source sends rounds of pages until what is left fits the
 * downtime limit, pauses the VM, sends the rest and the vCPU state; the destination checks it
 * holds every page, confirms, resumes the VM and announces it. Nothing runs on two hosts: any
 * failure before the confirmation resumes the VM on the source. */
#ifndef FERRY_MIGRATE_MIGRATION_H
#define FERRY_MIGRATE_MIGRATION_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>

#include "migrate/proto.h"
#include "vm/announce.h"
#include "vm/vm.h"

struct iface;
struct loop;
struct pktpool_set;
struct vswitch_table;

#define MIGRATION_MAX               16 /* sessions kept, running and finished, both directions */
#define MIGRATION_ROLE_MAX          8 /* running sessions of one role: incoming never starve outgoing */
#define MIGRATION_KEY_MIN           16 /* bytes of pre-shared key */
#define MIGRATION_KEY_MAX           256
#define MIGRATION_REASON_MAX        128
#define MIGRATION_LISTENERS         4
#define MIGRATION_MIN_MTU           576 /* a vmk below this cannot carry page fragments sensibly */
#define MIGRATION_DEFAULT_LIMIT     300000000ull /* downtime limit: 300 ms, as QEMU's */
#define MIGRATION_DOWNTIME_FLOOR    1000000ull   /* below this, another round saves too little */
#define MIGRATION_SETUP_TIMEOUT     3000000000ull
#define MIGRATION_PEER_TIMEOUT      3000000000ull  /* silence that ends a session */
#define MIGRATION_RESEND_NS         200000000ull   /* handshake messages, until answered */
#define MIGRATION_REACK_NS          10000000000ull /* a finished destination acks a resent state */
#define MIGRATION_LINGER_NS         60000000000ull /* and answers queries about its outcome */
#define MIGRATION_QUERY_NS          500000000ull   /* an unknown outcome asks this often */
#define MIGRATION_COOKIE_NS         5000000000ull  /* a CHALLENGE's cookie: good for one to two */
#define MIGRATION_ADMITTED_MAX      64             /* session ids admitted lately: AUTH replays */
#define MIGRATION_HELLO_BUCKETS     256            /* per-source HELLO and AUTH rate limits */
#define MIGRATION_HELLO_RATE        50             /* per second, per source address */
#define MIGRATION_HELLO_BURST       32
#define MIGRATION_THROTTLE_FIRST    20 /* auto-converge, as QEMU's cpu-throttle-initial */
#define MIGRATION_THROTTLE_STEP     10 /* and cpu-throttle-increment */
#define MIGRATION_THROTTLE_MAX      99
#define MIGRATION_MAX_ROUNDS        1000000 /* no migration runs more rounds, whatever its options */
#define MIGRATION_DEFAULT_RTT       5000000ull   /* pre-flight: the classic vMotion limit */
#define MIGRATION_DEFAULT_MIN_BW    622000000ull /* pre-flight: vMotion's minimum, OC-12 */
#define MIGRATION_PROBE_BYTES       (4u << 20)   /* pre-flight: what the link is measured with */
#define MIGRATION_PROBE_NS          100000000ull /* ... or for how long, whichever ends first */
#define MIGRATION_FORWARD_LIMIT     1024 /* frames a switchover's hold keeps at most, by default */
#define MIGRATION_FORWARD_RING      1024 /* and the most it may be set to */
#define MIGRATION_FORWARD_SETTLE_NS 100000000ull  /* no frame for the VM this long: relearned */
#define MIGRATION_FORWARD_BOUND_NS  2000000000ull /* the hold ends this long after the resume */
#define MIGRATION_FORWARD_SETTLES   20 /* ... or so many settle times, if that is longer */
#define MIGRATION_FORWARD_WAIT_NS                                                                  \
	50000000ull /* a destination waits this long for the source's
                                                 * held frames before it gives the VM others */

/* Why a frame held for a VM around its switchover never reached it (X(enum suffix, name,
 * description)). */
#define MIGRATION_FORWARD_DROPS(X)                                                                 \
	X(HOLD_FULL, "hold_full", "the hold had as many frames as its bound (forward-limit)")      \
	X(TOO_BIG, "too_big", "longer than the destination's buffers")                             \
	X(NO_MBUF, "no_mbuf", "no buffer for it at the destination")                               \
	X(DUPLICATE, "duplicate", "a copy reached the VM already (flooded to both hosts)")         \
	X(NO_VM, "no_vm", "the VM was not there to take it (removed, lost, or left paused)")       \
	X(PEER_SILENT, "peer_silent", "the destination stopped acknowledging the forwarded frames")

enum migration_forward_drop {
#define MIGRATION_FORWARD_ENUM(e, name, text) MIGRATION_FORWARD_DROP_##e,
	MIGRATION_FORWARD_DROPS(MIGRATION_FORWARD_ENUM)
#undef MIGRATION_FORWARD_ENUM
	        MIGRATION_FORWARD_DROP_MAX
};

/* Their names and descriptions, indexed by enum migration_forward_drop. */
extern const char *const migration_forward_drop_names[MIGRATION_FORWARD_DROP_MAX];
extern const char *const migration_forward_drop_descriptions[MIGRATION_FORWARD_DROP_MAX];

/* Frames for the VM around the switchover, as `migrate status` shows them. */
struct migration_forward_stats {
	uint64_t held;      /* source: frames for the VM held from the pause; destination: frames
	                     * that reached it directly while it held them */
	uint64_t forwarded; /* source: sent over the channel; destination: arrived over it */
	uint64_t delivered; /* given to the VM (at the source: when the migration failed) */
	uint64_t dropped[MIGRATION_FORWARD_DROP_MAX];
	uint64_t hold_ns;      /* source: how long the MAC was held, pause to settle */
	uint64_t last_held_ns; /* source: the last frame held, after the pause */
	uint64_t announce_ns;  /* destination: resume to the first announce frame */
	bool announced;        /* destination: an announce went (announce_ns says when) */
};

/* The pre-flight check's items, as vCenter's vMotion compatibility check lists them. */
enum migration_check_item {
	MIGRATION_CHECK_REACHABLE, /* the destination's vmk answers the migration protocol */
	MIGRATION_CHECK_SUBNET,    /* both vmks on one IP subnet */
	MIGRATION_CHECK_RTT,       /* round trip under the limit */
	MIGRATION_CHECK_BANDWIDTH, /* the link carries at least the minimum */
	MIGRATION_CHECK_ADMISSION, /* port group, memory, no VM of that name or MAC */
	MIGRATION_CHECK_MTU,       /* both vmks' MTUs equal */
	MIGRATION_CHECK_MAX,
};

struct migration_check {
	bool done, ok;
	char value[64]; /* what was measured */
	char limit[32]; /* what it had to be */
};

/* The items' names, indexed by enum migration_check_item. */
extern const char *const migration_check_names[MIGRATION_CHECK_MAX];

/* Every message the engine refuses, with its counter name and description. */
#define MIGRATION_DROP_REASONS(X)                                                                  \
	X(MALFORMED, "malformed", "not a well-formed message (short, magic, type or length)")      \
	X(VERSION, "version", "a protocol version this host does not speak")                       \
	X(UNKNOWN_SESSION, "unknown_session", "a session id no live session has")                  \
	X(WRONG_PEER, "wrong_peer", "a session's id from another address or port")                 \
	X(UNEXPECTED, "unexpected", "a message the session's state does not expect")               \
	X(AUTH, "auth", "a proof of the key that does not verify")                                 \
	X(BUSY, "busy", "a new session while every slot is taken")                                 \
	X(BAD_PAGE, "bad_page", "a page number outside the VM's memory")                           \
	X(DUPLICATE, "duplicate", "a message received before (retransmission or replay)")          \
	X(OUT_OF_WINDOW, "out_of_window", "a sequence number outside the receive window")          \
	X(STALE_COPY, "stale_copy", "a page copy from an older round than the one held")           \
	X(BAD_ROUND, "bad_round", "a round number past MIGRATION_MAX_ROUNDS")                      \
	X(BAD_STATE, "bad_state", "a vCPU state the VM's backend refuses")                         \
	X(COOKIE, "cookie",                                                                        \
	  "an AUTH whose cookie this listener did not make, or made too long ago")                 \
	X(RATE_LIMITED, "rate_limited", "a HELLO or AUTH over its source address's rate")          \
	X(POLICY, "policy", "a HELLO whose encryption policy this host's refuses")                 \
	X(MISMATCH, "mismatch", "a CONFIRM whose state or page count differs from what was sent")  \
	X(BAD_FRAME, "bad_frame", "a forwarded frame outside the window, or at odds with its parts")

#define MIGRATION_DROP_ENUM(e, name, text) MIGRATION_DROP_##e,
enum migration_drop_reason { MIGRATION_DROP_REASONS(MIGRATION_DROP_ENUM) MIGRATION_DROP_MAX };
#undef MIGRATION_DROP_ENUM

/* Counter names and descriptions, indexed by enum migration_drop_reason. */
extern const char *const migration_drop_names[MIGRATION_DROP_MAX];
extern const char *const migration_drop_descriptions[MIGRATION_DROP_MAX];

enum migration_role {
	MIGRATION_SOURCE,
	MIGRATION_DESTINATION,
};

/* As QEMU's query-migrate. */
enum migration_status {
	MIGRATION_SETUP,      /* handshake */
	MIGRATION_PREFLIGHT,  /* the destination admitted the VM: measuring the link */
	MIGRATION_ACTIVE,     /* pre-copy rounds, the VM runs */
	MIGRATION_SWITCHOVER, /* the VM is paused: the last pages and the vCPU state */
	MIGRATION_COMPLETED,
	MIGRATION_FAILED,
	MIGRATION_CANCELLED,
	/* Source: the state went out and the destination fell silent: it may run the VM, so the
	 * VM stays paused here while the engine asks; resolved by an authenticated answer or by
	 * `migrate resolve`. */
	MIGRATION_UNKNOWN_OUTCOME,
	MIGRATION_ABANDONED, /* source: the operator let the VM go to the destination unconfirmed */
	/* Post-copy: the VM runs on the destination, which pulls the pages it still lacks; the
	 * source holds them until the destination has them all (COMPLETE). */
	MIGRATION_POSTCOPY,
	/* Source: post-copy ended with the VM nowhere: the destination, which ran it, restarted
	 * (or an operator said so); its memory and vCPU there are gone. */
	MIGRATION_LOST,
};

/* How a migration moves memory, as QEMU's precopy and postcopy-ram. */
enum migration_mode {
	MIGRATION_MODE_PRECOPY,  /* rounds until what is left fits the downtime limit */
	MIGRATION_MODE_POSTCOPY, /* resume at the destination at once, pull the rest */
	MIGRATION_MODE_HYBRID,   /* pre-copy while rounds shrink, then post-copy, never throttle */
	MIGRATION_MODE_MAX,
};

/* "precopy", "postcopy", "hybrid"; and back (-1 for an unknown name). */
const char *migration_mode_name(enum migration_mode mode);
int migration_mode_parse(const char *name);

/* How an operator settles an unknown outcome. */
enum migration_resolution {
	MIGRATION_RESUME_SOURCE,  /* the destination does not run it: run it here again */
	MIGRATION_ABANDON,        /* the destination runs it: forget it here */
	MIGRATION_LOST_WITH_PEER, /* post-copy, the peer gone for good: the VM went with it */
};

/* What the host does for the engine: its VMs are the host's, not the engine's. */
struct migration_hooks {
	void *ctx;
	/* Destination: does the host have a VM with this name or this MAC? */
	bool (*vm_exists)(void *ctx, const char *name, const struct rte_ether_addr *mac);
	/* Destination: may the host take one more VM? */
	bool (*vm_room)(void *ctx);
	/* Destination: a VM arrived and runs; the host takes it (it was calloc'ed). */
	void (*vm_arrived)(void *ctx, struct vm *vm);
	/* Source: the VM runs on the destination; the host frees its copy. */
	void (*vm_departed)(void *ctx, struct vm *vm);
	/* Destination: memory the host can give a VM of that backing, in MiB (admission and the
	 * pre-flight check compare a VM's size with it); NULL means no limit. */
	uint32_t (*available_mb)(void *ctx, enum machine_backing backing);
	/* Destination: where a VM's disk on the datastore of that name is on this host (the VM's
	 * folder there; path is PATH_MAX bytes), with this host's name and the datastore's lease
	 * in place. -ENOENT without such a datastore; NULL: this host has none. */
	int (*disk_place)(void *ctx, const char *datastore, const char *vm_name, char *path,
	                  struct vm_disk_place *place);
};

struct migration_params {
	uint32_t dst_ip; /* network byte order */
	uint16_t dst_port;
	uint8_t key[MIGRATION_KEY_MAX];
	uint16_t key_len;
	uint64_t max_bandwidth_bps; /* pacer; 0 = unpaced */
	uint64_t downtime_limit_ns; /* 0 = MIGRATION_DEFAULT_LIMIT */
	uint32_t max_rounds;        /* 0 = no limit (auto-converge still ends it) */
	bool auto_converge;         /* throttle the VM when rounds stop shrinking */
	bool verify;                /* compare memory hashes before confirming */
	bool no_forward;            /* drop frames for the VM from the pause, as QEMU does */
	uint32_t forward_limit;     /* frames the hold keeps; 0 = MIGRATION_FORWARD_LIMIT */
	uint64_t forward_settle_ns; /* quiet that ends the hold; 0 = MIGRATION_FORWARD_SETTLE_NS */
	bool check_only;            /* pre-flight check, no migration */
	bool force;                 /* migrate even if a pre-flight item fails */
	uint64_t rtt_limit_ns;      /* 0 = MIGRATION_DEFAULT_RTT */
	uint64_t min_bandwidth_bps; /* 0 = MIGRATION_DEFAULT_MIN_BW */
	struct announce_config announce;
	enum proto_encryption encryption; /* the VM's policy */
	enum proto_cipher cipher;         /* 0: the one this host seals fastest with */
	unsigned int streams; /* channels the pages travel in; 0 = 1, or 2 with post-copy (one for
	                       * demanded pages) */
	enum migration_mode mode;
};

/* Post-copy's figures: faults, what they waited, and what the background sent. */
struct migration_postcopy_stats {
	uint64_t start_ns;         /* the switchover into post-copy (0: it never happened) */
	uint64_t last_page_ns;     /* when the last absent page arrived (destination) */
	uint64_t pages_absent;     /* pages the VM resumed without */
	uint64_t pages_demanded;   /* sent (source) or asked (destination) on demand */
	uint64_t pages_background; /* source: sent by the background stream */
	uint64_t remote_faults;    /* destination: vCPU accesses that found a page elsewhere */
	uint64_t stall_ns;         /* destination: time the vCPU waited, all told */
	uint64_t fault_p50_ns, fault_p99_ns, fault_max_ns; /* destination: fault to arrival */
};

/* Figures in the shape of QEMU's query-migrate. */
/* One round of a source's copy, as `migrate status <id>` lists it and the timeline draws it: the
 * pre-copy rounds, the last pages sent while paused, and post-copy's background stream. */
struct migration_round {
	uint32_t round;
	uint32_t throttle_percent; /* auto-converge's throttle while it ran */
	uint64_t start_ns, end_ns; /* the engine's clock */
	uint64_t pages;            /* pages sent in it, with data or as zero runs */
	uint64_t wire_bytes;       /* bytes it put on the wire, retransmissions included */
	uint64_t dirty;            /* pages found dirty at its end (the next round's to send) */
};

#define MIGRATION_ROUND_LOG 64 /* rounds kept: the first 63, then the last in the last slot */

struct migration_stats {
	uint64_t start_ns, end_ns;
	uint64_t setup_ns;             /* start to the destination's accept */
	uint64_t downtime_ns;          /* pause to the destination's confirmation */
	uint64_t expected_downtime_ns; /* of the last round, at the measured bandwidth */
	uint64_t bytes_transferred;    /* on the wire, headers and retransmissions included */
	uint64_t bytes_remaining;      /* dirty pages not yet sent, times the page size */
	uint64_t pages_normal;         /* pages sent as data */
	uint64_t pages_zero;           /* pages sent as zero-run markers */
	uint64_t pages_retransmitted;  /* messages sent again */
	uint64_t window_cuts;          /* the congestion window halved for a loss */
	uint64_t stream_messages[PROTO_STREAMS_MAX]; /* source: messages each stream carried */
	uint64_t yielded_polls;    /* source: polls left to the VMs' traffic (share used) */
	uint64_t dirty_pages_rate; /* the VM's page writes per second */
	uint64_t dirty_pages_last; /* pages found dirty at the last round's end */
	uint32_t rounds;           /* pre-copy rounds started (round 0 is the full copy) */
	uint32_t throttle_percent; /* auto-converge's current throttle */
	uint64_t bandwidth_bps;    /* measured */
	/* Source: the rounds, and the switchover's moments on the engine's clock (0 until then):
	 * the VM paused, and the destination's confirmation that it runs there. */
	struct migration_round round_log[MIGRATION_ROUND_LOG];
	uint32_t nb_round_log;
	uint64_t paused_at_ns, confirmed_at_ns;
	struct migration_postcopy_stats postcopy;
	struct migration_forward_stats forward;
};

struct migration;

/* A session at one moment, as `migrate status`, the benchmarks and the tests read it: every
 * figure computed once, by migration_info(). */
struct migration_info {
	uint32_t id;
	enum migration_role role;
	enum migration_status status;
	bool running;
	bool check_only; /* source: the pre-flight check alone */
	bool verified;   /* source: completed with the memory hashes compared */
	char reason[MIGRATION_REASON_MAX];
	char vm_name[VM_NAME_MAX];
	uint64_t session;
	uint32_t peer_ip; /* network byte order */
	uint16_t peer_port;
	uint16_t local_port;          /* this host's UDP port for it */
	uint16_t peer_mtu;            /* source: the destination vmk's MTU, from its accept */
	struct migration_stats stats; /* bytes and retransmissions live from the channel */
	uint64_t total_ns;            /* start to end, or to now while it runs */
	uint64_t ended_ago_ns;        /* how long ago it ended; 0 while it runs */
	uint64_t transfer_ns;         /* source: since the first round began; 0 before */
	uint64_t throughput_bps;      /* source: wire bytes over the time since the accept */
	uint64_t pages_per_second;    /* source: pages sent over that time */
	uint32_t round;               /* source: the round being sent */
	/* Source: the self-announcement the destination sends at the resume (the HELLO's). */
	uint16_t announce_rounds, announce_initial_ms, announce_step_ms;
	double round_percent;       /* source: how far into it, -1 when no round runs */
	uint64_t max_bandwidth_bps; /* source: the pacer, 0 = unpaced */
	uint64_t downtime_limit_ns; /* source */
	uint64_t pages_held;        /* destination: pages complete, while it receives */
	bool receiving;             /* destination: pages_held is meaningful */
	uint64_t regions_populated; /* destination: 2 MiB regions backed ahead of their pages */
	enum proto_encryption encryption; /* the VM's policy (the HELLO's) */
	enum proto_cipher cipher;         /* the session's, 0 before the terms */
	bool encrypted;                   /* contents travel encrypted (else authenticated only) */
	unsigned int streams;             /* channels the pages travel in (the HELLO's) */
	enum migration_mode mode;         /* source: what it was started with */
	struct migration_check checks[MIGRATION_CHECK_MAX]; /* source */
};

struct migration_listener {
	struct iface *vmk;
	uint16_t port;
	uint8_t key[MIGRATION_KEY_MAX];
	uint16_t key_len;
	enum proto_encryption encryption; /* what this host requires of incoming VMs */
	uint8_t cookie_secret[PROTO_KEY_LEN];
	struct migration_engine *engine;
};

/* A source address's HELLO and AUTH budget (addresses share a bucket by hash). */
struct migration_hello_bucket {
	double tokens;
	uint64_t refill_ns;
};

struct migration_engine {
	struct loop *loop;
	struct vswitch_table *vswitches;
	struct pktpool_set *pools;
	struct migration_hooks hooks;
	struct migration *sessions[MIGRATION_MAX];
	uint32_t next_id;
	struct migration_listener listeners[MIGRATION_LISTENERS];
	uint64_t drops[MIGRATION_DROP_MAX];
	uint64_t rx_messages;
	uint64_t rx_by_type[PROTO_TYPE_MAX]; /* messages that parsed, by type */
	uint64_t hellos;                     /* HELLOs received, answered or not */
	enum proto_cipher cipher; /* the one this host seals fastest with, measured at init */
	uint64_t start_ns;        /* when it started: a NO_SESSION's uptime */
	uint64_t admitted[MIGRATION_ADMITTED_MAX]; /* ring of session ids admitted lately */
	unsigned int admitted_next;
	struct migration_hello_bucket hello_buckets[MIGRATION_HELLO_BUCKETS];
};

/* Prepares an engine for a host and registers its poller. */
int migration_engine_init(struct migration_engine *engine, struct loop *loop,
                          struct vswitch_table *vswitches, struct pktpool_set *pools,
                          const struct migration_hooks *hooks);

/* Ends every session (a running source resumes its VM) and frees the engine. */
void migration_engine_fini(struct migration_engine *engine);

/* Accepts incoming migrations on a vmk's UDP port with a pre-shared key and an encryption policy
 * (a VM whose policy disagrees is refused). -EADDRINUSE if the port is taken, -ENOSPC with every
 * listener slot used. */
int migration_listen(struct migration_engine *engine, struct iface *vmk, uint16_t port,
                     const uint8_t *key, uint16_t key_len, enum proto_encryption encryption);

/* Stops listening on a vmk (sessions already accepted go on). -ENOENT if it was not. */
int migration_unlisten(struct migration_engine *engine, struct iface *vmk);

/* The listener on a vmk, NULL if none. */
const struct migration_listener *migration_listener_find(const struct migration_engine *engine,
                                                         const struct iface *vmk);

/* Starts migrating a vm from a vmk to a destination. Returns the session's id, or a
 * negative errno: -EBUSY if the vm migrates already, -EMSGSIZE for a vmk MTU under
 * MIGRATION_MIN_MTU, -ENOSPC with no slot free, -EPERM for post-copy or hybrid of a VM marked
 * postcopy off. */
int migration_start(struct migration_engine *engine, struct vm *vm, struct iface *vmk,
                    const struct migration_params *params);

/* Switches a running pre-copy into post-copy at its next round's end, as QEMU's
 * migrate-start-postcopy. -ENOENT for an unknown id, -EINVAL for a session that is not a source
 * still copying, -EPERM for a VM marked postcopy off. */
int migration_postcopy(struct migration_engine *engine, uint32_t id);

/* Cancels a running session: a source resumes its VM, a destination drops its copy. Once a
 * source's state went out only the destination decides: the outcome becomes unknown and the
 * engine asks it. -ENOENT for an unknown id, -EALREADY for a finished one, -EBUSY in post-copy
 * (the VM runs on the destination and needs what the source holds). */
int migration_cancel(struct migration_engine *engine, uint32_t id);

/* QEMU's postcopy recovery: a post-copy session whose link failed goes on at once, on either side,
 * to a new peer address if one is given (peer_ip, network order; 0 keeps it: the source sends to
 * it, the destination takes the source's messages from it). Returns 0, -ENOENT for an unknown id,
 * -EINVAL for a session not in post-copy. */
int migration_recover(struct migration_engine *engine, uint32_t id, uint32_t peer_ip);

/* Settles a source's unknown outcome by the operator's word (resume-source or abandon), or
 * declares a post-copy VM lost with its silent peer, on either side (lost). -ENOENT for an
 * unknown id, -EINVAL for a session whose outcome is known or a resolution that does not fit its
 * state, -EBUSY when the post-copy peer still answers. */
int migration_resolve(struct migration_engine *engine, uint32_t id,
                      enum migration_resolution resolution);

/* Fills info with a session's figures at now. Returns 0, or -ENOENT for an unknown id. */
int migration_info(const struct migration_engine *engine, uint32_t id, uint64_t now,
                   struct migration_info *info);

/* The host made a VM with this MAC: a finished migration that still holds the MAC here (a VM of
 * that MAC left moments ago) lets it go. */
void migration_mac_in_use(struct migration_engine *engine, const struct rte_ether_addr *mac);

/* The host removes a VM: no session gives it frames any more. */
void migration_forget_vm(struct migration_engine *engine, const struct vm *vm);

/* True while a session holds the vm (it may not be destroyed). */
bool migration_vm_busy(const struct migration_engine *engine, const struct vm *vm);

/* Loop poller: every session's sending, timeouts and acknowledgements. Returns non-zero while a
 * session runs, so the worker does not sleep in the middle of a migration. */
unsigned int migration_poll(void *engine);

/* Names, for the CLI. */
const char *migration_status_name(enum migration_status status);
const char *migration_role_name(enum migration_role role);

#endif
