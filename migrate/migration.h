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

#include "vm/announce.h"
#include "migrate/channel.h"
#include "vm/vm.h"
#include "migrate/proto.h"

struct iface;
struct loop;
struct pktpool_set;
struct vswitch_table;

#define MIGRATION_MAX            16 /* sessions kept, running and finished, both directions */
#define MIGRATION_KEY_MIN        16 /* bytes of pre-shared key */
#define MIGRATION_KEY_MAX        256
#define MIGRATION_REASON_MAX     128
#define MIGRATION_LISTENERS      4
#define MIGRATION_MIN_MTU        576 /* a vmk below this cannot carry page fragments sensibly */
#define MIGRATION_DEFAULT_LIMIT  300000000ull /* downtime limit: 300 ms, as QEMU's */
#define MIGRATION_DOWNTIME_FLOOR 1000000ull   /* below this, another round saves too little */
#define MIGRATION_SETUP_TIMEOUT  3000000000ull
#define MIGRATION_PEER_TIMEOUT   3000000000ull  /* silence that ends a session */
#define MIGRATION_RESEND_NS      200000000ull   /* handshake messages, until answered */
#define MIGRATION_LINGER_NS      10000000000ull /* a finished destination re-confirms */
#define MIGRATION_THROTTLE_FIRST 20             /* auto-converge, as QEMU's cpu-throttle-initial */
#define MIGRATION_THROTTLE_STEP  10             /* and cpu-throttle-increment */
#define MIGRATION_THROTTLE_MAX   99
#define MIGRATION_DEFAULT_RTT    5000000ull   /* pre-flight: the classic vMotion limit */
#define MIGRATION_DEFAULT_MIN_BW 622000000ull /* pre-flight: vMotion's minimum, OC-12 */
#define MIGRATION_PROBE_BYTES    (16u << 20)  /* pre-flight: what the link is measured with */
#define MIGRATION_PROBE_NS       300000000ull /* ... or for how long, whichever ends first */

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
	X(BAD_STATE, "bad_state", "a vCPU state the VM's backend refuses")

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
	bool check_only;            /* pre-flight check, no migration */
	bool force;                 /* migrate even if a pre-flight item fails */
	uint64_t rtt_limit_ns;      /* 0 = MIGRATION_DEFAULT_RTT */
	uint64_t min_bandwidth_bps; /* 0 = MIGRATION_DEFAULT_MIN_BW */
	struct announce_config announce;
};

/* Figures in the shape of QEMU's query-migrate. */
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
	uint64_t dirty_pages_rate;     /* the VM's page writes per second */
	uint64_t dirty_pages_last;     /* pages found dirty at the last round's end */
	uint32_t rounds;               /* pre-copy rounds started (round 0 is the full copy) */
	uint32_t throttle_percent;     /* auto-converge's current throttle */
	uint64_t bandwidth_bps;        /* measured */
};

struct migration_engine;

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
	struct vm *vm;
	struct migration_params params;
	struct channel channel;
	bool channel_ready;
	struct proto_sealer sealer; /* the data key: source seals, destination checks */
	bool sealer_ready;
	uint8_t hello_nonce[PROTO_NONCE_LEN], challenge_nonce[PROTO_NONCE_LEN];
	struct proto_hello hello; /* as sent (source) or received (destination) */
	uint64_t last_rx_ns, last_handshake_ns;
	struct migration_stats stats;
	/* source: the pre-copy */
	uint64_t *to_send; /* this round's pages */
	uint64_t cursor;   /* the next page this round looks at */
	uint32_t fragment; /* bytes of the cursor's page already sent (MTU 1500) */
	uint64_t zero_first, zero_count;
	uint32_t round;
	uint64_t active_start_ns, active_start_bytes;
	/* source: the pre-flight check */
	struct migration_check checks[MIGRATION_CHECK_MAX];
	uint64_t hello_sent_ns, auth_sent_ns, rtt_ns;
	uint64_t probe_start_ns, probe_start_bytes;
	bool probe_sent;
	uint16_t peer_mtu;
	uint32_t peer_free_mb;
	uint32_t not_shrinking;
	bool was_running, paused, state_sent;
	bool draining; /* switchover decided: waiting for the window to empty before the pause */
	bool refused;  /* the destination said no: it holds nothing of the VM */
	uint64_t pause_ns;
	uint16_t max_data; /* page bytes per message at the vmk's MTU */
	/* destination: what arrived */
	uint32_t *page_round;
	uint16_t *page_filled; /* bytes of the page's newest round held */
	uint64_t nb_complete;
	bool ack_pending;
	uint64_t confirm_hash;
	struct proto_accept accept; /* as sent, for a source that did not hear it */
};

struct migration_listener {
	struct iface *vmk;
	uint16_t port;
	uint8_t key[MIGRATION_KEY_MAX];
	uint16_t key_len;
	struct migration_engine *engine;
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
};

/* Prepares an engine for a host and registers its poller. */
int migration_engine_init(struct migration_engine *engine, struct loop *loop,
                          struct vswitch_table *vswitches, struct pktpool_set *pools,
                          const struct migration_hooks *hooks);

/* Ends every session (a running source resumes its VM) and frees the engine. */
void migration_engine_fini(struct migration_engine *engine);

/* Accepts incoming migrations on a vmk's UDP port with a pre-shared key. -EADDRINUSE if the
 * port is taken, -ENOSPC with every listener slot used. */
int migration_listen(struct migration_engine *engine, struct iface *vmk, uint16_t port,
                     const uint8_t *key, uint16_t key_len);

/* Stops listening on a vmk (sessions already accepted go on). -ENOENT if it was not. */
int migration_unlisten(struct migration_engine *engine, struct iface *vmk);

/* The listener on a vmk, NULL if none. */
const struct migration_listener *migration_listener_find(const struct migration_engine *engine,
                                                         const struct iface *vmk);

/* Starts migrating a vm from a vmk to a destination. Returns the session's id, or a
 * negative errno: -EBUSY if the vm migrates already, -EMSGSIZE for a vmk MTU under
 * MIGRATION_MIN_MTU, -ENOSPC with no slot free. */
int migration_start(struct migration_engine *engine, struct vm *vm, struct iface *vmk,
                    const struct migration_params *params);

/* Cancels a running session: a source resumes its VM, a destination drops its copy. -ENOENT for
 * an unknown id, -EALREADY for a finished one. */
int migration_cancel(struct migration_engine *engine, uint32_t id);

/* A session by id, NULL if unknown. */
const struct migration *migration_find(const struct migration_engine *engine, uint32_t id);

/* True while a session holds the vm (it may not be destroyed). */
bool migration_vm_busy(const struct migration_engine *engine, const struct vm *vm);

/* True while any session runs. */
bool migration_running(const struct migration *migration);

/* True if every pre-flight item that ran passed. */
bool migration_checks_passed(const struct migration *migration);

/* Loop poller: every session's sending, timeouts and acknowledgements. Returns non-zero while a
 * session runs, so the worker does not sleep in the middle of a migration. */
unsigned int migration_poll(void *engine);

/* Reads a pre-shared key file (MIGRATION_KEY_MIN to MIGRATION_KEY_MAX bytes, a trailing newline
 * dropped). Returns the key's length or a negative errno. */
int migration_key_load(const char *path, uint8_t *key, uint16_t size);

/* Names, for the CLI. */
const char *migration_status_name(enum migration_status status);
const char *migration_role_name(enum migration_role role);

#endif
