/* The virtual switches of a host, shaped like vSphere standard vSwitches: uplinks (802.1Q
 * trunks), port groups with a VLAN each, VM and VMkernel ports, and a MAC table per vswitch. */
#include "vswitch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_log.h>
#include <rte_mbuf.h>

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
	for (unsigned int r = 0; r < VSWITCH_DROP_MAX; r++)
		out[r] = (struct vswitch_drop_counter){
		        drop_reasons[r].name, drop_reasons[r].description, drop_reasons[r].side,
		        port->counters.upper_drops[r]};
	for (unsigned int r = 0; r < PORT_DROP_MAX; r++)
		out[VSWITCH_DROP_MAX + r] =
		        (struct vswitch_drop_counter){port_drop_names[r], port_drop_descriptions[r],
		                                      port_drop_sides[r], port->counters.drops[r]};
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

int vswitch_table_init(struct vswitch_table *vswitches, struct loop *loop)
{
	struct vswitch *vswitch;

	memset(vswitches, 0, sizeof(*vswitches));
	vswitches->loop = loop;
	vswitches->fdb_limit = FDB_DEFAULT_LIMIT;
	vswitches->fdb_aging_s = FDB_DEFAULT_AGING_S;
	int ret = vswitch_add(vswitches, VSWITCH_DEFAULT_NAME, &vswitch);
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
}

struct vswitch *vswitch_find(const struct vswitch_table *vswitches, const char *name)
{
	for (unsigned int i = 0; i < vswitches->nb_vswitches; i++)
		if (strcmp(vswitches->vswitches[i]->name, name) == 0)
			return vswitches->vswitches[i];
	return NULL;
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
	vswitch->slots[index] = vport;
	vswitch->order[vswitch->nb_ports++] = (uint16_t)index;
	if (out != NULL)
		*out = vport;
	return 0;
}

void vswitch_port_detach(struct vswitch_port *vport)
{
	struct vswitch *vswitch = vport->vswitch;

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
	free(vport);
}

int vswitch_port_set_portgroup(struct vswitch_port *vport, struct vswitch_portgroup *pg)
{
	if (vport->role == VSWITCH_ROLE_UPLINK)
		return -EINVAL;
	if (pg->vswitch != vport->vswitch)
		return -EXDEV;
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

static inline bool egress_fits(struct vswitch_port *out, const struct rte_mbuf *m)
{
	if (likely(rte_pktmbuf_pkt_len(m) - sizeof(struct rte_ether_hdr) <= out->port->mtu))
		return true;
	vswitch_count_drop(out->port, VSWITCH_DROP_TX_OVERSIZE);
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

static void send_one(struct vswitch_port *in, struct vswitch_port *out, struct rte_mbuf *m,
                     uint16_t vlan)
{
	if (!egress_fits(out, m)) {
		rte_pktmbuf_free(m);
		return;
	}
	if (out->role == VSWITCH_ROLE_UPLINK && vlan != 0 && (m = with_tag(m, vlan)) == NULL) {
		vswitch_count_drop(in->port, VSWITCH_DROP_NO_MBUF);
		return;
	}
	in->port->counters.rx_forwarded++;
	port_tx_enqueue(out->port, m);
}

/* Sends a frame to every port of its VLAN but the ingress port, never uplink to uplink. The
 * outputs share the buffer; uplinks that need a tag share one tagged copy. */
static void flood(struct vswitch *vswitch, struct vswitch_port *in, struct rte_mbuf *m,
                  uint16_t vlan)
{
	struct port *plain[VSWITCH_MAX_PORTS], *tagged[VSWITCH_MAX_PORTS];
	unsigned int nb_plain = 0, nb_tagged = 0;
	bool from_uplink = in->role == VSWITCH_ROLE_UPLINK;

	for (unsigned int i = 0; i < vswitch->nb_ports; i++) {
		struct vswitch_port *out = vswitch->slots[vswitch->order[i]];
		if (out == in || !port_carries(vswitch, out, vlan))
			continue;
		bool to_uplink = out->role == VSWITCH_ROLE_UPLINK;
		if ((from_uplink && to_uplink) || !egress_fits(out, m))
			continue;
		if (to_uplink && vlan != 0)
			tagged[nb_tagged++] = out->port;
		else
			plain[nb_plain++] = out->port;
	}
	if (nb_plain + nb_tagged == 0) {
		vswitch_count_drop(in->port, VSWITCH_DROP_NO_DESTINATION);
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
			vswitch_count_drop(in->port, VSWITCH_DROP_NO_MBUF);
			if (nb_plain == 0)
				return;
			nb_tagged = 0;
		}
	}
	in->port->counters.rx_forwarded++;
	if (nb_plain > 0) {
		rte_pktmbuf_refcnt_update(m, (int16_t)(nb_plain - 1));
		for (unsigned int i = 0; i < nb_plain; i++)
			port_tx_enqueue(plain[i], m);
	}
	if (nb_tagged > 0) {
		rte_pktmbuf_refcnt_update(tagged_copy, (int16_t)(nb_tagged - 1));
		for (unsigned int i = 0; i < nb_tagged; i++)
			port_tx_enqueue(tagged[i], tagged_copy);
	}
}

static inline bool learnable(const struct rte_ether_addr *mac)
{
	return rte_is_unicast_ether_addr(mac) && !rte_is_zero_ether_addr(mac);
}

/* The port a looked-up destination lives on. Learning earlier in the burst may have evicted or
 * added entries: a position counts only if it still holds this key, and a miss is looked up
 * again if the burst learned new MACs (frame 2 may answer frame 1). */
static inline uint16_t resolve(const struct fdb *fdb, int32_t pos, const struct fdb_key *key,
                               bool burst_learned)
{
	if (pos >= 0 && fdb->entries[pos].valid && fdb_key_equal(&fdb->entries[pos].key, key))
		return fdb->entries[pos].port;
	if (pos >= 0 || burst_learned)
		return fdb_lookup(fdb, key->vlan, &key->mac);
	return FDB_PORT_NONE;
}

/* Known unicast goes to its port; anything else floods. */
static inline void forward(struct vswitch *vswitch, struct vswitch_port *in,
                           struct vswitch_port *out, struct rte_mbuf *m, uint16_t vlan)
{
	if (out == NULL || !port_carries(vswitch, out, vlan)) {
		flood(vswitch, in, m, vlan);
	} else if (unlikely(out == in)) {
		vswitch_count_drop(in->port, VSWITCH_DROP_SAME_PORT);
		rte_pktmbuf_free(m);
	} else if (unlikely(in->role == VSWITCH_ROLE_UPLINK && out->role == VSWITCH_ROLE_UPLINK)) {
		vswitch_count_drop(in->port, VSWITCH_DROP_UPLINK_TO_UPLINK);
		rte_pktmbuf_free(m);
	} else {
		send_one(in, out, m, vlan);
	}
}

void vswitch_input(struct vswitch_port *in, struct rte_mbuf **pkts, uint16_t n, uint64_t now_ns)
{
	struct vswitch *vswitch = in->vswitch;
	struct fdb *fdb = &vswitch->fdb;
	struct rte_mbuf *kept[PORT_BURST];
	uint16_t vlans[PORT_BURST];
	struct fdb_key keys[2 * PORT_BURST];
	const struct fdb_key *key_ptrs[2 * PORT_BURST];
	int32_t positions[2 * PORT_BURST];
	unsigned int nb = 0;

	for (uint16_t i = 0; i < n; i++) {
		uint16_t vlan;
		enum vswitch_drop_reason drop = classify(vswitch, in, &pkts[i], &vlan);
		if (unlikely(drop != VSWITCH_DROP_MAX)) {
			vswitch_count_drop(in->port, drop);
			rte_pktmbuf_free(pkts[i]);
			continue;
		}
		const struct rte_ether_hdr *eth =
		        rte_pktmbuf_mtod(pkts[i], const struct rte_ether_hdr *);
		kept[nb] = pkts[i];
		vlans[nb] = vlan;
		keys[2 * nb] = (struct fdb_key){.vlan = vlan, .mac = eth->src_addr};
		keys[2 * nb + 1] = (struct fdb_key){.vlan = vlan, .mac = eth->dst_addr};
		key_ptrs[2 * nb] = &keys[2 * nb];
		key_ptrs[2 * nb + 1] = &keys[2 * nb + 1];
		nb++;
	}
	if (nb == 0)
		return;
	/* Sources and destinations in one bulk lookup: at most 64 keys, the hash's limit. */
	fdb_lookup_bulk(fdb, key_ptrs, 2 * nb, positions);

	bool burst_learned = false;
	for (unsigned int i = 0; i < nb; i++)
		if (learnable(&keys[2 * i].mac) &&
		    fdb_learn_at(fdb, positions[2 * i], &keys[2 * i], in->index, now_ns) !=
		            FDB_LEARN_REFRESHED)
			burst_learned = true;

	for (unsigned int i = 0; i < nb; i++) {
		const struct fdb_key *dst = &keys[2 * i + 1];
		struct vswitch_port *out = NULL;
		if (rte_is_unicast_ether_addr(&dst->mac)) {
			uint16_t port = resolve(fdb, positions[2 * i + 1], dst, burst_learned);
			if (port != FDB_PORT_NONE)
				out = vswitch->slots[port];
		}
		forward(vswitch, in, out, kept[i], vlans[i]);
	}
}

void vswitch_table_flush(struct vswitch_table *vswitches)
{
	for (unsigned int v = 0; v < vswitches->nb_vswitches; v++) {
		struct vswitch *vswitch = vswitches->vswitches[v];
		for (unsigned int i = 0; i < vswitch->nb_ports; i++)
			port_tx_flush(vswitch->slots[vswitch->order[i]]->port);
	}
}

unsigned int vswitch_table_poll(void *arg)
{
	struct vswitch_table *vswitches = arg;
	struct rte_mbuf *pkts[PORT_BURST];
	unsigned int total = 0;
	uint64_t now = 0;

	for (unsigned int v = 0; v < vswitches->nb_vswitches; v++) {
		struct vswitch *vswitch = vswitches->vswitches[v];
		for (unsigned int i = 0; i < vswitch->nb_ports; i++) {
			struct vswitch_port *in = vswitch->slots[vswitch->order[i]];
			uint16_t n = port_rx_burst(in->port, pkts, PORT_BURST);
			if (n == 0)
				continue;
			if (in->role == VSWITCH_ROLE_VNIC)
				vswitches->vm_frames += n;
			if (now == 0)
				now = vswitch_now_ns(vswitches);
			vswitch_input(in, pkts, n, now);
			total += n;
		}
	}
	if (total > 0)
		vswitch_table_flush(vswitches);
	/* Emulated links release what their delay held back (a cheap test when off). */
	for (unsigned int v = 0; v < vswitches->nb_vswitches; v++) {
		struct vswitch *vswitch = vswitches->vswitches[v];
		for (unsigned int i = 0; i < vswitch->nb_ports; i++)
			total += port_impair_poll(vswitch->slots[vswitch->order[i]]->port);
	}
	return total;
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
