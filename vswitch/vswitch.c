/* The virtual switches of a host, shaped like vSphere standard vSwitches: uplinks (802.1Q
 * trunks), port groups with a VLAN each, VM and VMkernel ports, and a MAC table per vswitch. */
#include "vswitch.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_epoll.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dataplane/port.h"

static RTE_LOG_REGISTER(vswitch_logtype, ferry.vswitch, INFO);

#define VSWITCH_LOG(level, fmt, ...)                                                               \
	rte_log(RTE_LOG_##level, vswitch_logtype, "vswitch: " fmt "\n", ##__VA_ARGS__)

#define AGING_PERIOD_NS (1000ull * 1000 * 1000)
#define VLAN_HDR_LEN    4

static const struct {
	const char *name, *description;
	enum port_drop_side side;
} drop_reasons[VSWITCH_DROP_MAX] = {
#define VSWITCH_DROP_ROW(e, name, text, side)                                                      \
	[VSWITCH_DROP_##e] = {name, text, PORT_DROP_SIDE_##side},
        VSWITCH_DROP_REASONS(VSWITCH_DROP_ROW)
#undef VSWITCH_DROP_ROW
};

void vswitch_port_drop_counters(const struct port *port, struct vswitch_drop_counter *out)
{
	struct port_counters counters;

	port_counters_sum(port, &counters);
	for (unsigned int r = 0; r < VSWITCH_DROP_MAX; r++)
		out[r] = (struct vswitch_drop_counter){
		        drop_reasons[r].name, drop_reasons[r].description, drop_reasons[r].side,
		        counters.upper_drops[r]};
	for (unsigned int r = 0; r < PORT_DROP_MAX; r++)
		out[VSWITCH_DROP_MAX + r] =
		        (struct vswitch_drop_counter){port_drop_names[r], port_drop_descriptions[r],
		                                      port_drop_sides[r], counters.drops[r]};
}

static const char *const role_names[] = {
        [VSWITCH_ROLE_UPLINK] = "uplink",
        [VSWITCH_ROLE_VNIC] = "vnic",
        [VSWITCH_ROLE_VMK] = "vmk",
};

const char *vswitch_role_name(enum vswitch_role role)
{
	return role_names[role];
}

int vswitch_role_parse(const char *name, enum vswitch_role *role)
{
	for (unsigned int r = 0; r < RTE_DIM(role_names); r++) {
		if (strcmp(name, role_names[r]) == 0) {
			*role = (enum vswitch_role)r;
			return 0;
		}
	}
	return -EINVAL;
}

uint64_t vswitch_now_ns(const struct vswitch_table *vswitches)
{
	return loop_now_ns(vswitches->loop) + vswitches->clock_offset_ns;
}

static void vswitch_age_all(struct vswitch_table *vswitches)
{
	uint64_t now = vswitch_now_ns(vswitches);

	for (unsigned int i = 0; i < vswitches->nb_vswitches; i++)
		fdb_age(&vswitches->vswitches[i]->fdb, now);
}

static void vswitch_aging_timer(void *arg)
{
	vswitch_age_all(arg);
}

void vswitch_clock_advance(struct vswitch_table *vswitches, uint64_t ns)
{
	vswitches->clock_offset_ns += ns;
	vswitch_age_all(vswitches);
}

static unsigned int vswitch_worker_poll(void *worker);
static void assign_rx_queues(struct vswitch_table *vswitches);
static void workers_barrier(struct vswitch_table *vswitches);
static void worker_interrupts_setup(struct vswitch_worker *worker);

/* A learning request from a worker to the MAC tables' writer. */
struct learn_request {
	uint64_t key;
	struct vswitch *vswitch;
	uint16_t port;
	uint16_t unused[3];
};

_Static_assert(sizeof(struct learn_request) == 24, "learn_request is 24 bytes");

static void workers_free(struct vswitch_table *vswitches)
{
	for (unsigned int w = 0; w < VSWITCH_MAX_WORKERS; w++) {
		struct vswitch_worker *worker = vswitches->workers[w];
		if (worker == NULL)
			continue;
		if (worker->loop == &worker->own_loop)
			loop_fini(&worker->own_loop);
		else if (worker->loop != NULL)
			loop_set_waiter(worker->loop, NULL, NULL);
		if (worker->epoll_fd >= 0)
			close(worker->epoll_fd);
		rte_ring_free(worker->learn);
		rte_free(worker);
		vswitches->workers[w] = NULL;
	}
}

/* Puts the worker's loop's wake-up eventfd in its epoll set: loop_wake (a CLI command waiting,
 * say) ends an interrupt-mode sleep. */
static int worker_wake_event_add(struct vswitch_worker *worker)
{
	worker->wake_event.epdata.event = EPOLLIN;
	int ret = rte_epoll_ctl(worker->epoll_fd, EPOLL_CTL_ADD, loop_wake_fd(worker->loop),
	                        &worker->wake_event);
	return ret < 0 ? -EINVAL : 0;
}

static int workers_create(struct vswitch_table *vswitches, unsigned int nb_workers)
{
	char name[RTE_RING_NAMESIZE];

	vswitches->nb_workers = RTE_MAX(nb_workers, 1u);
	for (unsigned int w = 0; w < vswitches->nb_workers; w++) {
		struct vswitch_worker *worker = rte_zmalloc("vswitch_worker", sizeof(*worker), 0);
		if (worker == NULL)
			return -ENOMEM;
		vswitches->workers[w] = worker;
		worker->vswitches = vswitches;
		worker->id = w;
		worker->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
		if (worker->epoll_fd < 0)
			return -errno;
		if (w == 0) {
			worker->loop = vswitches->loop;
			int ret = worker_wake_event_add(worker);
			if (ret < 0)
				return ret;
			continue;
		}
		/* Ring names are process-wide: the table's address keeps two hosts apart. */
		snprintf(name, sizeof(name), "learn%u_%lx", w,
		         (unsigned long)((uintptr_t)vswitches & 0xffffffff));
		worker->learn =
		        rte_ring_create_elem(name, sizeof(struct learn_request), VSWITCH_LEARN_RING,
		                             (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (worker->learn == NULL)
			return -rte_errno;
		struct loop_backoff_config backoff = vswitches->loop->backoff.config;
		int ret = loop_init(&worker->own_loop, &backoff, NULL, NULL);
		if (ret < 0)
			return ret;
		worker->loop = &worker->own_loop;
		ret = loop_poller_add(worker->loop, "vswitch", LOOP_POLLER_DATAPLANE,
		                      vswitch_worker_poll, worker);
		if (ret == 0)
			ret = worker_wake_event_add(worker);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int vswitch_table_init(struct vswitch_table *vswitches, struct loop *loop, unsigned int nb_workers)
{
	struct vswitch *vswitch;

	memset(vswitches, 0, sizeof(*vswitches));
	vswitches->loop = loop;
	vswitches->fdb_limit = FDB_DEFAULT_LIMIT;
	vswitches->fdb_aging_s = FDB_DEFAULT_AGING_S;
	if (nb_workers > VSWITCH_MAX_WORKERS)
		return -EINVAL;
	int ret = workers_create(vswitches, nb_workers);
	if (ret < 0) {
		VSWITCH_LOG(ERR, "cannot create %u forwarding workers: %s", nb_workers,
		            rte_strerror(-ret));
		workers_free(vswitches);
		return ret;
	}
	ret = vswitch_add(vswitches, VSWITCH_DEFAULT_NAME, &vswitch);
	if (ret < 0)
		return ret;
	ret = loop_poller_add(loop, "vswitch", LOOP_POLLER_DATAPLANE, vswitch_table_poll,
	                      vswitches);
	if (ret == 0) {
		loop_timer_init(&vswitches->aging_timer, vswitch_aging_timer, vswitches);
		ret = loop_timer_arm(loop, &vswitches->aging_timer, AGING_PERIOD_NS,
		                     AGING_PERIOD_NS);
	}
	if (ret < 0)
		vswitch_table_fini(vswitches);
	return ret;
}

void vswitch_table_fini(struct vswitch_table *vswitches)
{
	vswitch_workers_stop(vswitches);
	loop_poller_del(vswitches->loop, vswitch_table_poll, vswitches);
	loop_timer_cancel(vswitches->loop, &vswitches->aging_timer);
	for (unsigned int i = 0; i < vswitches->nb_vswitches; i++) {
		struct vswitch *vswitch = vswitches->vswitches[i];
		while (vswitch->nb_ports > 0)
			vswitch_port_detach(vswitch->slots[vswitch->order[vswitch->nb_ports - 1]]);
	}
	while (vswitches->nb_portgroups > 0)
		vswitch_portgroup_del(vswitches,
		                      vswitches->portgroups[vswitches->nb_portgroups - 1]);
	for (unsigned int i = 0; i < vswitches->nb_vswitches; i++) {
		fdb_fini(&vswitches->vswitches[i]->fdb);
		free(vswitches->vswitches[i]);
	}
	vswitches->nb_vswitches = 0;
	workers_free(vswitches);
}

struct vswitch *vswitch_find(const struct vswitch_table *vswitches, const char *name)
{
	for (unsigned int i = 0; i < vswitches->nb_vswitches; i++)
		if (strcmp(vswitches->vswitches[i]->name, name) == 0)
			return vswitches->vswitches[i];
	return NULL;
}

/* The MAC table's resize hook. It runs inside a learning (the table half changed): the workers
 * only wait, their requests stay queued (applying them here would learn inside a learning). */
static void park_for_resize(void *vswitches)
{
	workers_barrier(vswitches);
}

int vswitch_add(struct vswitch_table *vswitches, const char *name, struct vswitch **out)
{
	char fdb_name[32];

	if (strlen(name) >= VSWITCH_NAME_MAX)
		return -ENAMETOOLONG;
	if (vswitch_find(vswitches, name) != NULL)
		return -EEXIST;
	if (vswitches->nb_vswitches == VSWITCH_MAX)
		return -ENOSPC;
	struct vswitch *vswitch = calloc(1, sizeof(*vswitch));
	if (vswitch == NULL)
		return -ENOMEM;
	snprintf(vswitch->name, sizeof(vswitch->name), "%s", name);
	vswitch->vswitches = vswitches;
	snprintf(fdb_name, sizeof(fdb_name), "fdb_%s", name);
	int ret = fdb_init(&vswitch->fdb, fdb_name, vswitches->fdb_limit, vswitches->fdb_aging_s);
	if (ret < 0) {
		free(vswitch);
		return ret;
	}
	/* Its slot array grows as it learns: workers must not be reading the old one then. */
	fdb_set_resize_hook(&vswitch->fdb, park_for_resize, vswitches);
	vswitch_workers_park(vswitches);
	vswitches->vswitches[vswitches->nb_vswitches++] = vswitch;
	*out = vswitch;
	return 0;
}

int vswitch_del(struct vswitch *vswitch)
{
	struct vswitch_table *vswitches = vswitch->vswitches;

	if (vswitch->nb_ports > 0)
		return -EBUSY;
	for (unsigned int i = 0; i < vswitches->nb_portgroups; i++)
		if (vswitches->portgroups[i]->vswitch == vswitch)
			return -EBUSY;
	vswitch_workers_park(vswitches);
	for (unsigned int i = 0; i < vswitches->nb_vswitches; i++) {
		if (vswitches->vswitches[i] != vswitch)
			continue;
		memmove(&vswitches->vswitches[i], &vswitches->vswitches[i + 1],
		        (vswitches->nb_vswitches - i - 1) * sizeof(vswitches->vswitches[0]));
		vswitches->nb_vswitches--;
		break;
	}
	fdb_fini(&vswitch->fdb);
	free(vswitch);
	return 0;
}

static const char *const notify_names[VSWITCH_NOTIFY_MAX] = {[VSWITCH_NOTIFY_RARP] = "rarp",
                                                             [VSWITCH_NOTIFY_GARP] = "garp",
                                                             [VSWITCH_NOTIFY_BOTH] = "both"};

const char *vswitch_notify_name(enum vswitch_notify notify)
{
	return notify < VSWITCH_NOTIFY_MAX ? notify_names[notify] : "?";
}

int vswitch_notify_parse(const char *name)
{
	for (int notify = 0; notify < VSWITCH_NOTIFY_MAX; notify++)
		if (strcmp(name, notify_names[notify]) == 0)
			return notify;
	return -1;
}

struct vswitch_portgroup *vswitch_portgroup_find(const struct vswitch_table *vswitches,
                                                 const char *name)
{
	for (unsigned int i = 0; i < vswitches->nb_portgroups; i++)
		if (strcmp(vswitches->portgroups[i]->name, name) == 0)
			return vswitches->portgroups[i];
	return NULL;
}

int vswitch_portgroup_add(struct vswitch_table *vswitches, const char *name,
                          struct vswitch *vswitch, uint16_t vlan, struct vswitch_portgroup **out)
{
	if (strlen(name) >= VSWITCH_NAME_MAX)
		return -ENAMETOOLONG;
	if (vlan > VSWITCH_VLAN_MAX)
		return -EINVAL;
	if (vswitch_portgroup_find(vswitches, name) != NULL)
		return -EEXIST;
	if (vswitches->nb_portgroups == VSWITCH_MAX_PORTGROUPS)
		return -ENOSPC;
	struct vswitch_portgroup *pg = calloc(1, sizeof(*pg));
	if (pg == NULL)
		return -ENOMEM;
	snprintf(pg->name, sizeof(pg->name), "%s", name);
	pg->vlan = vlan;
	pg->notify_switches = true;
	pg->notify = VSWITCH_NOTIFY_RARP;
	pg->vswitch = vswitch;
	vswitch_workers_park(vswitches);
	vswitch->vlan_portgroups[vlan]++;
	vswitches->portgroups[vswitches->nb_portgroups++] = pg;
	if (out != NULL)
		*out = pg;
	return 0;
}

int vswitch_portgroup_del(struct vswitch_table *vswitches, struct vswitch_portgroup *pg)
{
	if (pg->nb_ports > 0)
		return -EBUSY;
	vswitch_workers_park(vswitches);
	for (unsigned int i = 0; i < vswitches->nb_portgroups; i++) {
		if (vswitches->portgroups[i] != pg)
			continue;
		memmove(&vswitches->portgroups[i], &vswitches->portgroups[i + 1],
		        (vswitches->nb_portgroups - i - 1) * sizeof(vswitches->portgroups[0]));
		vswitches->nb_portgroups--;
		break;
	}
	struct vswitch *vswitch = pg->vswitch;
	/* The uplinks stop carrying the VLAN with its last port group: forget its MACs. */
	if (--vswitch->vlan_portgroups[pg->vlan] == 0)
		fdb_flush_vlan(&vswitch->fdb, pg->vlan);
	free(pg);
	return 0;
}

struct vswitch_port *vswitch_port_find(const struct vswitch_table *vswitches,
                                       const struct port *port)
{
	for (unsigned int v = 0; v < vswitches->nb_vswitches; v++) {
		const struct vswitch *vswitch = vswitches->vswitches[v];
		for (unsigned int i = 0; i < vswitch->nb_ports; i++)
			if (vswitch->slots[vswitch->order[i]]->port == port)
				return vswitch->slots[vswitch->order[i]];
	}
	return NULL;
}

int vswitch_port_attach(struct vswitch *vswitch, struct port *port, enum vswitch_role role,
                        struct vswitch_portgroup *pg, struct vswitch_port **out)
{
	if ((role == VSWITCH_ROLE_UPLINK) != (pg == NULL))
		return -EINVAL;
	if (pg != NULL && pg->vswitch != vswitch)
		return -EXDEV;
	if (vswitch_port_find(vswitch->vswitches, port) != NULL)
		return -EEXIST;
	unsigned int index;
	for (index = 0; index < VSWITCH_MAX_PORTS; index++)
		if (vswitch->slots[index] == NULL)
			break;
	if (index == VSWITCH_MAX_PORTS)
		return -ENOSPC;
	struct vswitch_port *vport = calloc(1, sizeof(*vport));
	if (vport == NULL)
		return -ENOMEM;
	*vport = (struct vswitch_port){
	        .port = port,
	        .role = role,
	        .portgroup = pg,
	        .index = (uint16_t)index,
	        .vswitch = vswitch,
	};
	if (pg != NULL)
		pg->nb_ports++;
	vswitch_workers_park(vswitch->vswitches);
	vswitch->slots[index] = vport;
	vswitch->order[vswitch->nb_ports++] = (uint16_t)index;
	assign_rx_queues(vswitch->vswitches);
	if (out != NULL)
		*out = vport;
	return 0;
}

void vswitch_port_detach(struct vswitch_port *vport)
{
	struct vswitch *vswitch = vport->vswitch;

	vswitch_workers_park(vswitch->vswitches);
	port_tx_flush(vport->port);
	fdb_flush_port(&vswitch->fdb, vport->index);
	for (unsigned int i = 0; i < vswitch->nb_ports; i++) {
		if (vswitch->order[i] != vport->index)
			continue;
		memmove(&vswitch->order[i], &vswitch->order[i + 1],
		        (vswitch->nb_ports - i - 1) * sizeof(vswitch->order[0]));
		vswitch->nb_ports--;
		break;
	}
	vswitch->slots[vport->index] = NULL;
	if (vport->portgroup != NULL)
		vport->portgroup->nb_ports--;
	assign_rx_queues(vswitch->vswitches);
	free(vport);
}

void vswitch_port_set_receive(struct vswitch_port *vport, bool on)
{
	if (vport->receive_off == !on)
		return;
	vswitch_workers_park(vport->vswitch->vswitches);
	vport->receive_off = !on;
	assign_rx_queues(vport->vswitch->vswitches);
}

int vswitch_port_set_portgroup(struct vswitch_port *vport, struct vswitch_portgroup *pg)
{
	if (vport->role == VSWITCH_ROLE_UPLINK)
		return -EINVAL;
	if (pg->vswitch != vport->vswitch)
		return -EXDEV;
	vswitch_workers_park(vport->vswitch->vswitches);
	fdb_flush_port(&vport->vswitch->fdb, vport->index);
	vport->portgroup->nb_ports--;
	pg->nb_ports++;
	vport->portgroup = pg;
	return 0;
}

/* The hot path. */

static inline bool port_carries(const struct vswitch *vswitch, const struct vswitch_port *vport,
                                uint16_t vlan)
{
	if (vport->role == VSWITCH_ROLE_UPLINK)
		return vswitch->vlan_portgroups[vlan] > 0;
	return vport->portgroup->vlan == vlan;
}

/* A frame we are about to change must be ours alone: a PMD such as net_ring may hand us a
 * buffer that another port still holds. */
static struct rte_mbuf *make_writable(struct rte_mbuf *m)
{
	if (likely(RTE_MBUF_DIRECT(m) && rte_mbuf_refcnt_read(m) == 1))
		return m;
	struct rte_mbuf *copy = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
	rte_pktmbuf_free(m);
	return copy;
}

/* Finds the frame's VLAN and takes its tag off, so every frame in the switch is untagged.
 * Returns VSWITCH_DROP_MAX with *vlan set, or the reason to drop the frame. */
static enum vswitch_drop_reason classify(const struct vswitch *vswitch,
                                         const struct vswitch_port *in, struct rte_mbuf **pm,
                                         uint16_t *vlan)
{
	struct rte_mbuf *m = *pm;
	uint32_t len = rte_pktmbuf_pkt_len(m);

	if (unlikely(rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr)))
		return VSWITCH_DROP_RUNT;
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	bool tagged = eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_VLAN);
	uint16_t vid = 0;
	if (tagged) {
		if (unlikely(rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr) + VLAN_HDR_LEN))
			return VSWITCH_DROP_VLAN_TRUNCATED;
		const struct rte_vlan_hdr *vh = (const struct rte_vlan_hdr *)(eth + 1);
		vid = rte_be_to_cpu_16(vh->vlan_tci) & 0xfff;
	}
	uint32_t header = sizeof(struct rte_ether_hdr) + (tagged ? VLAN_HDR_LEN : 0);
	if (unlikely(len - header > in->port->mtu))
		return VSWITCH_DROP_OVERSIZE;

	if (in->role == VSWITCH_ROLE_UPLINK) {
		*vlan = vid;
		if (vid > VSWITCH_VLAN_MAX || vswitch->vlan_portgroups[vid] == 0)
			return VSWITCH_DROP_VLAN_NOT_CARRIED;
	} else {
		/* An access port takes untagged frames (and priority tags, VLAN 0) only. */
		if (unlikely(vid != 0))
			return VSWITCH_DROP_VLAN_NOT_CARRIED;
		if (unlikely(in->portgroup == NULL))
			return VSWITCH_DROP_NO_PORTGROUP;
		*vlan = in->portgroup->vlan;
	}
	if (tagged) {
		m = make_writable(m);
		*pm = m;
		if (unlikely(m == NULL))
			return VSWITCH_DROP_NO_MBUF;
		rte_vlan_strip(m);
		m->ol_flags &= ~(RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED);
	}
	return VSWITCH_DROP_MAX;
}

static inline bool egress_fits(struct vswitch_port *out, unsigned int worker,
                               const struct rte_mbuf *m)
{
	if (likely(rte_pktmbuf_pkt_len(m) - sizeof(struct rte_ether_hdr) <= out->port->mtu))
		return true;
	vswitch_count_drop(out->port, worker, VSWITCH_DROP_TX_OVERSIZE);
	return false;
}

/* The frame with the VLAN tag an uplink needs, or NULL (the frame freed). A shared frame (a
 * sender such as the migration channel keeps its frames to resend them) is copied first: the tag
 * goes where the shared Ethernet header is. */
static struct rte_mbuf *with_tag(struct rte_mbuf *m, uint16_t vlan)
{
	m = make_writable(m);
	if (unlikely(m == NULL))
		return NULL;
	m->vlan_tci = vlan;
	if (unlikely(rte_vlan_insert(&m) < 0)) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	return m;
}

/* Queues a frame (or one reference of a shared one) on a port, made whole first if the port
 * wants one segment; false, counted on the ingress port, if no buffer was there for that. */
static inline bool send_reference(struct vswitch_port *in, struct port *out, unsigned int worker,
                                  struct rte_mbuf *m)
{
	if (unlikely((m = port_tx_prepare(out, m)) == NULL)) {
		vswitch_count_drop(in->port, worker, VSWITCH_DROP_NO_MBUF);
		return false;
	}
	port_tx_enqueue_worker(out, worker, m);
	return true;
}

static void send_one(struct vswitch_port *in, struct vswitch_port *out, unsigned int worker,
                     struct rte_mbuf *m, uint16_t vlan)
{
	if (!egress_fits(out, worker, m)) {
		rte_pktmbuf_free(m);
		return;
	}
	if (out->role == VSWITCH_ROLE_UPLINK && vlan != 0 && (m = with_tag(m, vlan)) == NULL) {
		vswitch_count_drop(in->port, worker, VSWITCH_DROP_NO_MBUF);
		return;
	}
	if (send_reference(in, out->port, worker, m))
		in->port->workers[worker].counters.rx_forwarded++;
}

/* Sends a frame to every port of its VLAN but the ingress port, never uplink to uplink. The
 * outputs share the buffer; uplinks that need a tag share one tagged copy. */
static void flood(struct vswitch *vswitch, struct vswitch_port *in, unsigned int worker,
                  struct rte_mbuf *m, uint16_t vlan)
{
	struct port *plain[VSWITCH_MAX_PORTS], *tagged[VSWITCH_MAX_PORTS];
	unsigned int nb_plain = 0, nb_tagged = 0;
	bool from_uplink = in->role == VSWITCH_ROLE_UPLINK;

	for (unsigned int i = 0; i < vswitch->nb_ports; i++) {
		struct vswitch_port *out = vswitch->slots[vswitch->order[i]];
		if (out == in || !port_carries(vswitch, out, vlan))
			continue;
		bool to_uplink = out->role == VSWITCH_ROLE_UPLINK;
		if ((from_uplink && to_uplink) || !egress_fits(out, worker, m))
			continue;
		if (to_uplink && vlan != 0)
			tagged[nb_tagged++] = out->port;
		else
			plain[nb_plain++] = out->port;
	}
	if (nb_plain + nb_tagged == 0) {
		vswitch_count_drop(in->port, worker, VSWITCH_DROP_NO_DESTINATION);
		rte_pktmbuf_free(m);
		return;
	}

	struct rte_mbuf *tagged_copy = NULL;
	if (nb_tagged > 0) {
		/* Without untagged outputs the frame itself takes the tag. */
		struct rte_mbuf *copy =
		        nb_plain == 0 ? m : rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
		tagged_copy = copy != NULL ? with_tag(copy, vlan) : NULL;
		if (tagged_copy == NULL) {
			/* The untagged outputs still get theirs. */
			vswitch_count_drop(in->port, worker, VSWITCH_DROP_NO_MBUF);
			if (nb_plain == 0)
				return;
			nb_tagged = 0;
		}
	}
	in->port->workers[worker].counters.rx_forwarded++;
	if (nb_plain > 0) {
		rte_pktmbuf_refcnt_update(m, (int16_t)(nb_plain - 1));
		for (unsigned int i = 0; i < nb_plain; i++)
			send_reference(in, plain[i], worker, m);
	}
	if (nb_tagged > 0) {
		rte_pktmbuf_refcnt_update(tagged_copy, (int16_t)(nb_tagged - 1));
		for (unsigned int i = 0; i < nb_tagged; i++)
			send_reference(in, tagged[i], worker, tagged_copy);
	}
}

/* Known unicast goes to its port; anything else floods. */
static inline void forward(struct vswitch *vswitch, struct vswitch_port *in, unsigned int worker,
                           struct vswitch_port *out, struct rte_mbuf *m, uint16_t vlan)
{
	if (out == NULL || !port_carries(vswitch, out, vlan)) {
		flood(vswitch, in, worker, m, vlan);
	} else if (unlikely(out == in)) {
		vswitch_count_drop(in->port, worker, VSWITCH_DROP_SAME_PORT);
		rte_pktmbuf_free(m);
	} else if (unlikely(in->role == VSWITCH_ROLE_UPLINK && out->role == VSWITCH_ROLE_UPLINK)) {
		vswitch_count_drop(in->port, worker, VSWITCH_DROP_UPLINK_TO_UPLINK);
		rte_pktmbuf_free(m);
	} else {
		send_one(in, out, worker, m, vlan);
	}
}

/* Asks worker 0, the MAC table's writer, to learn a source; a full ring drops the request (the
 * next frame from that MAC asks again). */
static void learn_request(struct vswitch_port *in, unsigned int worker, uint64_t key)
{
	struct vswitch_worker *w = in->vswitch->vswitches->workers[worker];
	struct learn_request request = {.key = key, .vswitch = in->vswitch, .port = in->index};

	if (unlikely(rte_ring_sp_enqueue_elem(w->learn, &request, sizeof(request)) != 0))
		w->learn_dropped++;
}

/* How far ahead of the frame being parsed its successors' headers are fetched. */
#define PREFETCH_AHEAD 4

_Static_assert(RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN,
               "keys are built from 8-byte loads of the header as fdb_key_pack lays them out");

/* The VLAN an untagged frame from this port belongs to, or -1 if such frames need the slow path
 * (to be dropped with their reason). */
static inline int untagged_vlan(const struct vswitch *vswitch, const struct vswitch_port *in)
{
	if (in->role == VSWITCH_ROLE_UPLINK)
		return vswitch->vlan_portgroups[0] > 0 ? 0 : -1;
	return in->portgroup != NULL ? in->portgroup->vlan : -1;
}

/* The burst goes through in stages, each over every frame, so that one frame's cache misses
 * overlap the next ones' work: headers to keys, keys to home slots (prefetched), sources learned,
 * then destinations found and frames queued on their ports. A known source on its known port in
 * the grain of its last refresh costs a compare; only new, moved or refresh-due sources take the
 * learning call. Destinations are found after learning, so a frame answering one earlier in the
 * burst goes straight to it. */
void vswitch_input(struct vswitch_port *in, unsigned int worker, struct rte_mbuf **pkts, uint16_t n,
                   uint64_t now_ns)
{
	struct vswitch *vswitch = in->vswitch;
	struct fdb *fdb = &vswitch->fdb;
	struct rte_mbuf *kept[PORT_BURST];
	uint16_t vlans[PORT_BURST];
	uint64_t src[PORT_BURST], dst[PORT_BURST];
	uint32_t src_home[PORT_BURST], dst_home[PORT_BURST];
	const int plain_vlan = untagged_vlan(vswitch, in);
	const uint32_t max_len = in->port->mtu + (uint32_t)sizeof(struct rte_ether_hdr);
	const uint16_t stamp = fdb_stamp(now_ns);
	unsigned int nb = 0;

	for (uint16_t i = 0; i < RTE_MIN(n, PREFETCH_AHEAD); i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		if (i + PREFETCH_AHEAD < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + PREFETCH_AHEAD], void *));
		const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
		uint16_t vlan;
		if (likely(plain_vlan >= 0 && m->data_len >= sizeof(*eth) &&
		           eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_VLAN) &&
		           m->pkt_len <= max_len)) {
			vlan = (uint16_t)plain_vlan;
		} else {
			enum vswitch_drop_reason drop = classify(vswitch, in, &pkts[i], &vlan);
			if (unlikely(drop != VSWITCH_DROP_MAX)) {
				vswitch_count_drop(in->port, worker, drop);
				rte_pktmbuf_free(pkts[i]);
				continue;
			}
			m = pkts[i];
			eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
		}
		uint64_t head, tail;
		memcpy(&head, eth, sizeof(head));                      /* dst, then src's first 2 */
		memcpy(&tail, (const uint8_t *)eth + 4, sizeof(tail)); /* dst's last 2, then src */
		kept[nb] = m;
		vlans[nb] = vlan;
		dst[nb] = head << 16 | vlan;
		src[nb] = (tail & ~(uint64_t)0xffff) | vlan;
		nb++;
	}
	if (nb == 0)
		return;

	/* The group bit of a MAC's first byte is bit 16 of its key. */
	const uint64_t group = (uint64_t)1 << 16;
	for (unsigned int i = 0; i < nb; i++) {
		src_home[i] = fdb_home(fdb, src[i]);
		if (!(dst[i] & group))
			dst_home[i] = fdb_home(fdb, dst[i]);
	}

	uint64_t last_learned = 0;
	for (unsigned int i = 0; i < nb; i++) {
		uint16_t port, seen;
		/* Only unicast, non-zero sources are learned. */
		if (unlikely((src[i] & group) || (src[i] >> 16) == 0))
			continue;
		if (likely(fdb_find(fdb, src[i], src_home[i], &port, &seen) && port == in->index &&
		           seen == stamp))
			continue;
		if (worker == 0) {
			fdb_learn_key(fdb, src[i], in->index, now_ns);
		} else if (src[i] != last_learned) {
			/* One request per MAC per burst: a new MAC's frames all miss until it is in. */
			learn_request(in, worker, src[i]);
			last_learned = src[i];
		}
	}

	/* A burst's frames mostly share their way out. What a known destination needs checked
	 * (its VLAN, not the ingress, not uplink to uplink, no tag to add, the MTU) is checked once
	 * per output port and VLAN; a frame that follows the last one out costs a compare and a
	 * store. Anything else takes forward(). */
	uint16_t fast_port = FDB_PORT_NONE, fast_vlan = 0;
	uint32_t fast_max_len = 0;
	struct port *fast_out = NULL;
	uint64_t forwarded = 0;
	for (unsigned int i = 0; i < nb; i++) {
		struct vswitch_port *out = NULL;
		uint16_t port, seen;
		if (!(dst[i] & group) && fdb_find(fdb, dst[i], dst_home[i], &port, &seen)) {
			if (port != fast_port || vlans[i] != fast_vlan) {
				out = vswitch->slots[port];
				bool plain = out != NULL && out != in &&
				             port_carries(vswitch, out, vlans[i]) &&
				             out->role != VSWITCH_ROLE_UPLINK;
				fast_port = plain ? port : FDB_PORT_NONE;
				fast_vlan = vlans[i];
				fast_out = plain ? out->port : NULL;
				fast_max_len =
				        plain ? out->port->mtu + sizeof(struct rte_ether_hdr) : 0;
			}
			if (likely(fast_out != NULL && kept[i]->pkt_len <= fast_max_len)) {
				forwarded += send_reference(in, fast_out, worker, kept[i]);
				continue;
			}
			out = vswitch->slots[port];
		}
		forward(vswitch, in, worker, out, kept[i], vlans[i]);
	}
	in->port->workers[worker].counters.rx_forwarded += forwarded;
}

void vswitch_table_flush(struct vswitch_table *vswitches, unsigned int worker)
{
	for (unsigned int v = 0; v < vswitches->nb_vswitches; v++) {
		struct vswitch *vswitch = vswitches->vswitches[v];
		for (unsigned int i = 0; i < vswitch->nb_ports; i++)
			port_tx_flush_worker(vswitch->slots[vswitch->order[i]]->port, worker);
	}
}

/* The switches' clock when the worker's current iteration began (no clock read). */
static inline uint64_t worker_now_ns(const struct vswitch_worker *worker)
{
	return loop_iteration_ns(worker->loop) + worker->vswitches->clock_offset_ns;
}

/* Applies what workers 1.. learned (worker 0 only: the one writer). */
static unsigned int learn_drain(struct vswitch_table *vswitches, uint64_t now_ns)
{
	struct learn_request requests[PORT_BURST];
	unsigned int total = 0, n;

	for (unsigned int w = 1; w < vswitches->nb_workers; w++) {
		struct rte_ring *ring = vswitches->workers[w]->learn;
		while ((n = rte_ring_sc_dequeue_burst_elem(ring, requests, sizeof(requests[0]),
		                                           PORT_BURST, NULL)) > 0) {
			for (unsigned int i = 0; i < n; i++)
				fdb_learn_key(&requests[i].vswitch->fdb, requests[i].key,
				              requests[i].port, now_ns);
			total += n;
		}
	}
	return total;
}

/* Polls a worker's rx queues once and switches what came; returns the frames. */
static unsigned int worker_switch(struct vswitch_worker *worker)
{
	struct vswitch_table *vswitches = worker->vswitches;
	struct rte_mbuf *pkts[PORT_BURST];
	unsigned int total = 0;
	const uint64_t now = worker_now_ns(worker);

	for (unsigned int i = 0; i < worker->nb_rx; i++) {
		struct vswitch_port *in = worker->rx[i].vport;
		uint16_t n = port_rx_burst_queue(in->port, worker->id, worker->rx[i].queue, pkts,
		                                 PORT_BURST);
		if (n == 0)
			continue;
		if (in->role == VSWITCH_ROLE_VNIC)
			worker->vm_frames += n;
		vswitch_input(in, worker->id, pkts, n, now);
		total += n;
	}
	if (total > 0)
		vswitch_table_flush(vswitches, worker->id);
	return total;
}

/* An idle worker in interrupt mode: arms its queues' interrupts, waits on them, disarms. */
static bool worker_wait(void *arg, uint64_t timeout_ns)
{
	struct vswitch_worker *worker = arg;
	struct rte_epoll_event events[8];

	for (unsigned int i = 0; i < worker->nb_armed; i++)
		port_rx_interrupt_arm(worker->armed[i].vport->port, worker->armed[i].queue, true);
	int timeout_ms = (int)((timeout_ns + 999999) / 1000000);
	int n = rte_epoll_wait(worker->epoll_fd, events, RTE_DIM(events), timeout_ms);
	for (unsigned int i = 0; i < worker->nb_armed; i++)
		port_rx_interrupt_arm(worker->armed[i].vport->port, worker->armed[i].queue, false);
	loop_wake_clear(worker->loop);
	return n > 0;
}

/* Puts the worker's queues' interrupts in its epoll set and chooses its idle mode. A worker can
 * sleep on events only if every queue it polls can wake it: one with rx interrupts, or a ring
 * port fed by its own thread alone (one worker: whoever fills it ran just before, busy). Runs
 * with the workers parked. */
static void worker_interrupts_setup(struct vswitch_worker *worker)
{
	bool every_queue_wakes = true;

	for (unsigned int i = 0; i < worker->nb_armed; i++)
		port_rx_interrupt_ctl(worker->armed[i].vport->port, worker->armed[i].queue,
		                      worker->epoll_fd, false);
	worker->nb_armed = 0;
	for (unsigned int i = 0; i < worker->nb_rx; i++) {
		struct port *port = worker->rx[i].vport->port;
		if (port_rx_interrupt_ctl(port, worker->rx[i].queue, worker->epoll_fd, true) == 0)
			worker->armed[worker->nb_armed++] = worker->rx[i];
		else if (!(port->in_process && worker->vswitches->nb_workers == 1))
			every_queue_wakes = false;
	}
	/* Worker 0 also polls the VMs' and vmks' host sides, which other workers fill: with
	 * several workers it keeps the back-off. */
	if (worker->id == 0 && worker->vswitches->nb_workers > 1)
		every_queue_wakes = false;
	worker->interrupt_mode = every_queue_wakes && worker->nb_armed > 0;
	loop_set_waiter(worker->loop, worker->interrupt_mode ? worker_wait : NULL, worker);
}

/* Hands every rx queue of every switch port to a worker, round robin over ports and queues so
 * that single-queue ports spread too. Runs with the workers parked. */
static void assign_rx_queues(struct vswitch_table *vswitches)
{
	unsigned int next = 0;

	for (unsigned int w = 0; w < vswitches->nb_workers; w++)
		vswitches->workers[w]->nb_rx = 0;
	for (unsigned int v = 0; v < vswitches->nb_vswitches; v++) {
		struct vswitch *vswitch = vswitches->vswitches[v];
		for (unsigned int i = 0; i < vswitch->nb_ports; i++) {
			struct vswitch_port *vport = vswitch->slots[vswitch->order[i]];
			if (vport->receive_off)
				continue;
			for (uint16_t q = 0; q < vport->port->nb_rx_queues; q++) {
				struct vswitch_worker *w =
				        vswitches->workers[next++ % vswitches->nb_workers];
				if (w->nb_rx == VSWITCH_WORKER_RX_MAX) {
					VSWITCH_LOG(WARNING, "worker %u polls %u queues already",
					            w->id, VSWITCH_WORKER_RX_MAX);
					continue;
				}
				w->rx[w->nb_rx++] = (struct vswitch_rx){vport, q};
			}
		}
	}
	for (unsigned int w = 0; w < vswitches->nb_workers; w++)
		worker_interrupts_setup(vswitches->workers[w]);
}

static void workers_resume(struct vswitch_table *vswitches)
{
	if (!vswitches->parked)
		return;
	vswitches->parked = false;
	__atomic_store_n(&vswitches->park_request, false, __ATOMIC_RELEASE);
}

/* Holds workers 1.. in their barrier; returns once each is there. */
static void workers_barrier(struct vswitch_table *vswitches)
{
	if (vswitches->nb_workers <= 1 || vswitches->parked)
		return;
	__atomic_store_n(&vswitches->park_request, true, __ATOMIC_SEQ_CST);
	for (unsigned int w = 1; w < vswitches->nb_workers; w++) {
		struct vswitch_worker *worker = vswitches->workers[w];
		if (!__atomic_load_n(&worker->running, __ATOMIC_ACQUIRE))
			continue;
		/* One asleep on its interrupts would come to the barrier only at its timeout. */
		loop_wake(worker->loop);
		while (!__atomic_load_n(&worker->parked, __ATOMIC_ACQUIRE))
			rte_pause();
	}
	vswitches->parked = true;
}

void vswitch_workers_park(struct vswitch_table *vswitches)
{
	if (vswitches->nb_workers <= 1 || vswitches->parked)
		return;
	workers_barrier(vswitches);
	learn_drain(vswitches, vswitch_now_ns(vswitches));
}

unsigned int vswitch_table_poll(void *arg)
{
	struct vswitch_table *vswitches = arg;
	unsigned int total;

	workers_resume(vswitches);
	total = worker_switch(vswitches->workers[0]);
	if (vswitches->nb_workers > 1)
		total += learn_drain(vswitches, worker_now_ns(vswitches->workers[0]));
	/* Emulated links release what their delay held back (a cheap test when off). */
	for (unsigned int v = 0; v < vswitches->nb_vswitches; v++) {
		struct vswitch *vswitch = vswitches->vswitches[v];
		for (unsigned int i = 0; i < vswitch->nb_ports; i++)
			total += port_impair_poll(vswitch->slots[vswitch->order[i]]->port);
	}
	return total;
}

/* The poller of workers 1..: the barrier, then the switch. */
static unsigned int vswitch_worker_poll(void *arg)
{
	struct vswitch_worker *worker = arg;
	struct vswitch_table *vswitches = worker->vswitches;

	if (unlikely(__atomic_load_n(&vswitches->park_request, __ATOMIC_ACQUIRE))) {
		/* Nothing is left in the tx buffers: every poll flushes what it queued. */
		__atomic_store_n(&worker->parked, true, __ATOMIC_RELEASE);
		while (__atomic_load_n(&vswitches->park_request, __ATOMIC_ACQUIRE) &&
		       !worker->loop->stop)
			rte_pause();
		__atomic_store_n(&worker->parked, false, __ATOMIC_RELEASE);
		return 0;
	}
	return worker_switch(worker);
}

int vswitch_worker_run(void *arg)
{
	struct vswitch_worker *worker = arg;

	__atomic_store_n(&worker->running, true, __ATOMIC_RELEASE);
	loop_run(worker->loop);
	__atomic_store_n(&worker->running, false, __ATOMIC_RELEASE);
	return 0;
}

int vswitch_workers_launch(struct vswitch_table *vswitches)
{
	unsigned int w = 1, lcore;

	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (w == vswitches->nb_workers)
			break;
		int ret = rte_eal_remote_launch(vswitch_worker_run, vswitches->workers[w], lcore);
		if (ret < 0) {
			VSWITCH_LOG(ERR, "cannot launch worker %u on lcore %u: %s", w, lcore,
			            rte_strerror(-ret));
			vswitch_workers_stop(vswitches);
			return ret;
		}
		vswitches->workers[w]->lcore = lcore;
		while (!__atomic_load_n(&vswitches->workers[w]->running, __ATOMIC_ACQUIRE))
			rte_pause();
		w++;
	}
	if (w != vswitches->nb_workers) {
		VSWITCH_LOG(ERR, "%u forwarding workers need %u worker lcores (-l)",
		            vswitches->nb_workers, vswitches->nb_workers - 1);
		vswitch_workers_stop(vswitches);
		return -EINVAL;
	}
	return 0;
}

void vswitch_workers_stop(struct vswitch_table *vswitches)
{
	for (unsigned int w = 1; w < vswitches->nb_workers; w++) {
		struct vswitch_worker *worker = vswitches->workers[w];
		if (worker == NULL || !__atomic_load_n(&worker->running, __ATOMIC_ACQUIRE))
			continue;
		loop_stop(worker->loop);
		loop_wake(worker->loop);
		rte_eal_wait_lcore(worker->lcore);
	}
}

uint64_t vswitch_vm_frames(const struct vswitch_table *vswitches)
{
	uint64_t frames = 0;

	for (unsigned int w = 0; w < vswitches->nb_workers; w++)
		frames += vswitches->workers[w]->vm_frames;
	return frames;
}

uint64_t vswitch_uplink_speed_bps(const struct vswitch *vswitch)
{
	uint64_t best = 0;

	for (unsigned int i = 0; i < vswitch->nb_ports; i++) {
		const struct vswitch_port *vport = vswitch->slots[vswitch->order[i]];
		struct port_info info;
		if (vport == NULL || vport->role != VSWITCH_ROLE_UPLINK)
			continue;
		port_get_info(vport->port, &info);
		if (info.link_speed_mbps != RTE_ETH_SPEED_NUM_UNKNOWN &&
		    (uint64_t)info.link_speed_mbps * 1000000 > best)
			best = (uint64_t)info.link_speed_mbps * 1000000;
	}
	return best;
}
