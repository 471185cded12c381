/* The virtual switches of a host, shaped like vSphere standard vSwitches: uplinks (802.1Q
 * trunks), port groups with a VLAN each, VM and VMkernel ports, and a MAC table per vswitch. */
#ifndef FERRY_VSWITCH_VSWITCH_H
#define FERRY_VSWITCH_VSWITCH_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_epoll.h>

#include "dataplane/loop.h"
#include "vswitch/fdb.h"

#include "dataplane/port.h"

struct rte_mbuf;

#define VSWITCH_MAX            16
#define VSWITCH_MAX_PORTGROUPS 256
#define VSWITCH_MAX_PORTS      FDB_MAX_PORTS
#define VSWITCH_NAME_MAX       32
#define VSWITCH_VLAN_MAX       4094
#define VSWITCH_DEFAULT_NAME   "vSwitch0"

/* Every reason the switch drops a frame, in one table (X(enum suffix, name, description,
 * side)). They are counted in the port's upper_drops, so they stay with the port when it moves
 * between port groups, and an rx drop is counted on the port the frame came in on, a tx drop on
 * the port it was to leave by. */
#define VSWITCH_DROP_REASONS(X)                                                                    \
	X(RUNT, "runt", "frame shorter than an Ethernet header", RX)                               \
	X(VLAN_TRUNCATED, "vlan_truncated", "802.1Q tag cut short", RX)                            \
	X(OVERSIZE, "oversize", "frame larger than the port's MTU", RX)                            \
	X(VLAN_NOT_CARRIED, "vlan_not_carried", "VLAN not carried by the port", RX)                \
	X(NO_PORTGROUP, "no_portgroup", "port is in no port group", RX)                            \
	X(SAME_PORT, "same_port", "destination is the port the frame came in on", RX)              \
	X(UPLINK_TO_UPLINK, "uplink_to_uplink", "never from one uplink to another", RX)            \
	X(NO_DESTINATION, "no_destination", "no other port to send the frame to", RX)              \
	X(NO_MBUF, "no_mbuf", "no buffer for a copy of the frame", RX)                             \
	X(TX_OVERSIZE, "tx_oversize", "frame larger than the output port's MTU", TX)

enum vswitch_drop_reason {
#define VSWITCH_DROP_ENUM(e, name, text, side) VSWITCH_DROP_##e,
	VSWITCH_DROP_REASONS(VSWITCH_DROP_ENUM)
#undef VSWITCH_DROP_ENUM
	        VSWITCH_DROP_MAX
};

_Static_assert(VSWITCH_DROP_MAX <= PORT_UPPER_DROPS, "the switch's drops fit a port's counters");

/* Counts one frame the switch dropped, on a port, in a worker's counters. */
static inline void vswitch_count_drop(struct port *port, unsigned int worker,
                                      enum vswitch_drop_reason reason)
{
	port->workers[worker].counters.upper_drops[reason]++;
}

/* One drop counter of a port, named: the switch's reasons, then the port's own. */
struct vswitch_drop_counter {
	const char *name;
	const char *description;
	enum port_drop_side side;
	uint64_t count;
};

#define VSWITCH_PORT_DROP_COUNTERS (VSWITCH_DROP_MAX + PORT_DROP_MAX)

/* Fills out (VSWITCH_PORT_DROP_COUNTERS entries) with every drop counter of a port, switched or
 * not, in one order: what `show port stats` and `show errors` list. */
void vswitch_port_drop_counters(const struct port *port, struct vswitch_drop_counter *out);

enum vswitch_role {
	VSWITCH_ROLE_UPLINK, /* to the physical network: every port group's VLAN, tagged */
	VSWITCH_ROLE_VNIC,   /* a VM's port: access to one port group, untagged */
	VSWITCH_ROLE_VMK,    /* a VMkernel port: a host interface on one port group */
};

struct vswitch;

/* What a VM that arrives on a port group tells the physical switches (ESXi's "Notify
 * switches"): RARP requests from its MAC (QEMU's and vMotion's), gratuitous ARPs for its
 * address, or both. */
enum vswitch_notify {
	VSWITCH_NOTIFY_RARP,
	VSWITCH_NOTIFY_GARP,
	VSWITCH_NOTIFY_BOTH,
	VSWITCH_NOTIFY_MAX,
};

/* "rarp", "garp", "both"; and back (-1 for an unknown name). */
const char *vswitch_notify_name(enum vswitch_notify notify);
int vswitch_notify_parse(const char *name);

struct vswitch_portgroup {
	char name[VSWITCH_NAME_MAX];
	uint16_t vlan;              /* 0 = untagged on the uplinks */
	bool notify_switches;       /* a VM that arrives announces itself (default on) */
	enum vswitch_notify notify; /* how (default RARP) */
	struct vswitch *vswitch;
	unsigned int nb_ports;
};

struct vswitch_port {
	struct port *port;
	enum vswitch_role role;
	struct vswitch_portgroup *portgroup; /* NULL for uplinks */
	uint16_t index;                      /* slot in the vswitch, the MAC table's port id */
	struct vswitch *vswitch;
	bool receive_off; /* not polled: its frames wait in the device (vswitch_port_set_receive) */
};

struct vswitch_table;

struct vswitch {
	char name[VSWITCH_NAME_MAX];
	struct vswitch_table *vswitches;
	struct vswitch_port *slots[VSWITCH_MAX_PORTS]; /* by index; NULL = free */
	uint16_t order[VSWITCH_MAX_PORTS];             /* used slots, in attach order */
	unsigned int nb_ports;
	uint16_t vlan_portgroups[VSWITCH_VLAN_MAX + 1]; /* port groups per VLAN on this vswitch */
	struct fdb fdb;
};

#define VSWITCH_MAX_WORKERS   PORT_MAX_WORKERS
#define VSWITCH_WORKER_RX_MAX 256  /* rx queues one worker polls */
#define VSWITCH_LEARN_RING    4096 /* learning requests a worker may have waiting */

/* One rx queue of a switch port, as a worker polls it. */
struct vswitch_rx {
	struct vswitch_port *vport;
	uint16_t queue;
};

/* A forwarding worker. Worker 0 is the main lcore, which also runs everything else (VMs,
 * migrations, the CLI) and is the one writer of the MAC tables; workers 1.. run only the switch,
 * each on its own lcore and loop, and send what they learn to worker 0 through their ring. */
struct vswitch_worker {
	/* Set before it runs and read by other lcores (worker 0 drains the ring every poll; the
	 * barrier reads the flags), so nothing the worker writes as it forwards shares these lines:
	 * worker 0 would miss on them every poll. */
	struct vswitch_table *vswitches;
	unsigned int id;
	unsigned int lcore;
	struct loop *loop;      /* worker 0: the host's; others: own_loop */
	struct rte_ring *learn; /* learning requests for worker 0 (workers 1.. only) */
	bool running;           /* its lcore is in vswitch_worker_run */
	bool parked;            /* waiting in vswitch_workers_park's barrier */
	/* Written by the worker every burst or iteration. */
	struct loop own_loop __rte_cache_aligned;
	uint64_t learn_dropped; /* requests the ring had no room for (the frames still went) */
	uint64_t vm_frames;     /* frames from VM ports this worker switched */
	unsigned int nb_rx;
	struct vswitch_rx rx[VSWITCH_WORKER_RX_MAX];
	/* Interrupt mode: when every queue it polls can wake it (rx interrupts, or a ring port only
	 * its own thread feeds), the idle worker waits on this epoll set of their interrupts. */
	int epoll_fd;
	struct rte_epoll_event wake_event; /* its loop's wake-up eventfd, in the set */
	bool interrupt_mode;
	unsigned int nb_armed; /* queues in the set, listed in armed */
	struct vswitch_rx armed[VSWITCH_WORKER_RX_MAX];
};

struct vswitch_table {
	struct vswitch *vswitches[VSWITCH_MAX];
	unsigned int nb_vswitches;
	struct vswitch_portgroup *portgroups[VSWITCH_MAX_PORTGROUPS];
	unsigned int nb_portgroups;
	struct loop *loop;
	struct loop_timer aging_timer;
	uint64_t
	        clock_offset_ns; /* added to the loop's clock: tests age entries without sleeping */
	uint32_t fdb_limit;      /* for vswitches created from now on */
	uint32_t fdb_aging_s;
	unsigned int nb_workers;
	struct vswitch_worker *workers[VSWITCH_MAX_WORKERS];
	bool park_request; /* workers 1.. wait in their barrier while set */
	bool parked;       /* set by vswitch_workers_park until worker 0's next poll */
};

/* Creates the host's switching state with vSwitch0 and nb_workers forwarding workers (0 or 1:
 * the main lcore only), registers worker 0's switching poller and the aging timer on loop.
 * Returns 0 or a negative errno. */
int vswitch_table_init(struct vswitch_table *vswitches, struct loop *loop, unsigned int nb_workers);

/* Runs worker id (1..) on the calling lcore until vswitch_workers_stop: for
 * rte_eal_remote_launch, with the worker as its argument. */
int vswitch_worker_run(void *worker);

/* Launches workers 1.. on the EAL's worker lcores, in order, and waits until each runs. Returns 0
 * or a negative errno. */
int vswitch_workers_launch(struct vswitch_table *vswitches);

/* Stops the launched workers and waits for their lcores. */
void vswitch_workers_stop(struct vswitch_table *vswitches);

/* Holds workers 1.. in a barrier, their frames sent and their learning applied, so the caller
 * may change what they read (ports, port groups, table sizes, link emulation). They go on at
 * worker 0's next poll. Cheap with one worker; idempotent. */
void vswitch_workers_park(struct vswitch_table *vswitches);

/* Frames the VMs' ports sent, all told: a migration yields while this grows (VM traffic
 * first). */
uint64_t vswitch_vm_frames(const struct vswitch_table *vswitches);

/* Detaches every port (the ports stay open) and frees every vswitch and port group. */
void vswitch_table_fini(struct vswitch_table *vswitches);

/* The switches' clock: the loop's, plus the offset tests may add. */
uint64_t vswitch_now_ns(const struct vswitch_table *vswitches);

/* Moves the switches' clock forward (for tests and replays: aging without waiting), then runs
 * aging at once. */
void vswitch_clock_advance(struct vswitch_table *vswitches, uint64_t ns);

/* Adds a vswitch. -EEXIST, -ENOSPC, or the MAC table's error. */
int vswitch_add(struct vswitch_table *vswitches, const char *name, struct vswitch **vswitch);

/* Removes an empty vswitch: -EBUSY while it has ports or port groups. */
int vswitch_del(struct vswitch *vswitch);

/* Finds a vswitch by name, NULL if absent. */
struct vswitch *vswitch_find(const struct vswitch_table *vswitches, const char *name);

/* Adds a port group (name unique on the host) on a vswitch with a VLAN (0 = untagged). */
int vswitch_portgroup_add(struct vswitch_table *vswitches, const char *name,
                          struct vswitch *vswitch, uint16_t vlan,
                          struct vswitch_portgroup **portgroup);

/* Removes a port group: -EBUSY while ports use it. */
int vswitch_portgroup_del(struct vswitch_table *vswitches, struct vswitch_portgroup *portgroup);

/* Finds a port group by name, NULL if absent. */
struct vswitch_portgroup *vswitch_portgroup_find(const struct vswitch_table *vswitches,
                                                 const char *name);

/* Attaches an open port to a vswitch in a role. Uplinks take no port group; vnic and vmk ports
 * need one on the same vswitch. */
int vswitch_port_attach(struct vswitch *vswitch, struct port *port, enum vswitch_role role,
                        struct vswitch_portgroup *portgroup, struct vswitch_port **vport);

/* Detaches a port (its queued frames are sent, its MAC entries flushed); the port stays open. */
void vswitch_port_detach(struct vswitch_port *vport);

/* Finds the vswitch port of an open port, NULL if it is attached nowhere. */
struct vswitch_port *vswitch_port_find(const struct vswitch_table *vswitches,
                                       const struct port *port);

/* Stops (off) or resumes polling a port's rx queues: while off, its frames wait in the device
 * (or its ring), as OpenFlow's no-receive stops a port taking frames in; what it sends is
 * unchanged. A replay uses it to let captures in one at a time. */
void vswitch_port_set_receive(struct vswitch_port *vport, bool on);

/* Moves a vnic or vmk port to another port group of its vswitch; its MAC entries are flushed. */
int vswitch_port_set_portgroup(struct vswitch_port *vport, struct vswitch_portgroup *portgroup);

/* Switches a burst of frames received on vport by a worker (takes the mbufs). Frames are queued
 * on the output ports; vswitch_table_flush sends them. */
void vswitch_input(struct vswitch_port *vport, unsigned int worker, struct rte_mbuf **pkts,
                   uint16_t n, uint64_t now_ns);

/* Sends every frame a worker queued on any port of any vswitch. */
void vswitch_table_flush(struct vswitch_table *vswitches, unsigned int worker);

/* Loop poller: a burst from every port of every vswitch, switched, then flushed. */
unsigned int vswitch_table_poll(void *vswitches);

/* Role names, for the CLI: "uplink", "vnic", "vmk". */
const char *vswitch_role_name(enum vswitch_role role);

/* Parses a role name; -EINVAL if unknown. */
int vswitch_role_parse(const char *name, enum vswitch_role *role);

/* The vswitch's fastest uplink's link speed in bit/s (what a vMotion link carries), 0 when no
 * uplink says. */
uint64_t vswitch_uplink_speed_bps(const struct vswitch *vswitch);

#endif
