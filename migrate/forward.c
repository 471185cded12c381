/* Frames for a VM around its switchover: held at the source from the pause, forwarded over the
 * session's channel, given to the VM at the destination in the source's order and ahead of what
 * reaches it directly. */
#include "forward.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_mbuf.h>

#include "migrate/session.h"
#include "vswitch/iface.h"
#include "vswitch/vswitch.h"

#define FORWARD_SKIP       UINT16_MAX /* a slot given up (too big, no buffer): delivery passes it */
#define FORWARD_SIGNATURES 256        /* frames remembered against duplicates */

const char *const migration_forward_drop_names[MIGRATION_FORWARD_DROP_MAX] = {
#define MIGRATION_FORWARD_NAME(e, name, text) [MIGRATION_FORWARD_DROP_##e] = name,
        MIGRATION_FORWARD_DROPS(MIGRATION_FORWARD_NAME)
#undef MIGRATION_FORWARD_NAME
};

const char *const migration_forward_drop_descriptions[MIGRATION_FORWARD_DROP_MAX] = {
#define MIGRATION_FORWARD_TEXT(e, name, text) [MIGRATION_FORWARD_DROP_##e] = text,
        MIGRATION_FORWARD_DROPS(MIGRATION_FORWARD_TEXT)
#undef MIGRATION_FORWARD_TEXT
};

static void count_drop(struct migration *m, enum migration_forward_drop reason, uint64_t n)
{
	m->stats.forward.dropped[reason] += n;
}

static struct rte_mbuf **ring_new(void)
{
	return calloc(MIGRATION_FORWARD_RING, sizeof(struct rte_mbuf *));
}

/* ---- source ---- */

/* The hold's (and, from the pause, the VM's own port's) frames: kept in arrival order, up to
 * the bound. */
static void source_take(void *ctx, struct rte_mbuf **pkts, uint16_t n)
{
	struct migration *m = ctx;
	struct migration_forward *f = &m->forward;
	uint64_t now = session_now_ns(m->engine);

	for (uint16_t i = 0; i < n; i++) {
		const struct rte_ether_hdr *eth =
		        rte_pktmbuf_mtod(pkts[i], const struct rte_ether_hdr *);
		/* Before the pause the hold sees floods only, which the running VM's port had too;
		 * and the VM's own frames flooded back (its announce from the destination) are not
		 * for it. */
		if (f->pause_ns == 0 || rte_pktmbuf_data_len(pkts[i]) < sizeof(*eth) ||
		    rte_is_same_ether_addr(&eth->src_addr, &f->hold->netif.mac)) {
			rte_pktmbuf_free(pkts[i]);
			continue;
		}
		if (f->count >= f->limit) {
			count_drop(m, MIGRATION_FORWARD_DROP_HOLD_FULL, 1);
			rte_pktmbuf_free(pkts[i]);
			continue;
		}
		f->queue[(f->head + f->count) % MIGRATION_FORWARD_RING] = pkts[i];
		f->count++;
		m->stats.forward.held++;
		f->last_frame_ns = now;
		m->stats.forward.last_held_ns = now - f->pause_ns;
	}
}

void forward_source_begin(struct migration *m)
{
	struct migration_forward *f = &m->forward;
	const struct netif *vnic = &m->vm->vnic.netif;
	struct vswitch_portgroup *pg = m->vm->vnic.vport->portgroup;

	if (m->source.params.no_forward || m->source.params.check_only)
		return;
	f->limit = m->source.params.forward_limit != 0 ? m->source.params.forward_limit
	                                               : MIGRATION_FORWARD_LIMIT;
	if (f->limit > MIGRATION_FORWARD_RING)
		f->limit = MIGRATION_FORWARD_RING;
	f->settle_ns = m->source.params.forward_settle_ns != 0 ? m->source.params.forward_settle_ns
	                                                       : MIGRATION_FORWARD_SETTLE_NS;
	f->queue = ring_new();
	f->hold = calloc(1, sizeof(*f->hold));
	char name[IFACE_NAME_MAX];
	snprintf(name, sizeof(name), "hold%u", m->id);
	struct netif_config config = {
	        .name = name,
	        .mac = vnic->mac,
	        .ip = vnic->ip,
	        .prefix_len = vnic->prefix_len,
	        .mtu = vnic->mtu,
	        .start_down = true, /* it never speaks: it only takes frames */
	};
	if (f->queue == NULL || f->hold == NULL ||
	    iface_create(f->hold, m->engine->vswitches, pg, VSWITCH_ROLE_VNIC, &config,
	                 m->engine->pools) < 0) {
		MIG_LOG(WARNING,
		        "%u: %s: no port to hold its frames on: they are dropped at the pause",
		        m->id, m->vm_name);
		free(f->hold);
		f->hold = NULL;
		free(f->queue);
		f->queue = NULL;
		return;
	}
	iface_divert(f->hold, source_take, m);
}

/* The MAC-table entry of the VM's MAC, on the hold's vswitch and VLAN. */
static struct fdb *hold_fdb(const struct migration_forward *f)
{
	return &f->hold->vport->vswitch->fdb;
}

static uint16_t hold_vlan(const struct migration_forward *f)
{
	return f->hold->vport->portgroup->vlan;
}

void forward_source_pause(struct migration *m, uint64_t now)
{
	struct migration_forward *f = &m->forward;

	if (f->hold == NULL)
		return;
	f->pause_ns = now;
	/* Pinned, so a frame from the MAC elsewhere (the destination's announce coming back
	 * through the physical switch) cannot move it before the network has settled. */
	if (fdb_add_static(hold_fdb(f), hold_vlan(f), &f->hold->netif.mac, f->hold->vport->index) ==
	    0)
		f->pinned = true;
	/* What the switch gave the VM's port and the VM has not read yet waits in its ring. */
	iface_divert(&m->vm->vnic, source_take, m);
	iface_poll(&m->vm->vnic);
}

uint32_t forward_source_numbered(const struct migration *m)
{
	return m->forward.first_number + m->forward.count;
}

/* Frees the frames at the head that went out. */
static void source_free_sent(struct migration_forward *f)
{
	for (; f->sent > 0; f->sent--, f->count--, f->first_number++) {
		rte_pktmbuf_free(f->queue[f->head]);
		f->head = (f->head + 1) % MIGRATION_FORWARD_RING;
	}
}

void forward_source_commit(struct migration *m, uint64_t now)
{
	struct migration_forward *f = &m->forward;

	if (f->hold == NULL)
		return;
	f->committed = true;
	f->commit_ns = now;
	source_free_sent(f);
}

/* Ends the hold: the MAC's entry goes (the switch learns it again where it shows up), and the
 * hold's port with it, after its ring is read. */
static void source_unpin(struct migration *m)
{
	struct migration_forward *f = &m->forward;

	if (f->hold == NULL)
		return;
	iface_poll(f->hold);
	if (m->vm != NULL && m->vm->vnic.divert == source_take) {
		iface_poll(&m->vm->vnic);
		vm_input_attach(m->vm);
	}
	if (f->pinned)
		fdb_del(hold_fdb(f), hold_vlan(f), &f->hold->netif.mac);
	f->pinned = false;
	iface_destroy(f->hold);
	free(f->hold);
	f->hold = NULL;
	if (f->pause_ns != 0)
		m->stats.forward.hold_ns = session_now_ns(m->engine) - f->pause_ns;
}

void forward_unpin_mac(struct migration_engine *engine, const struct rte_ether_addr *mac)
{
	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		struct migration *m = engine->sessions[i];
		if (m != NULL && m->role == MIGRATION_SOURCE && m->forward.hold != NULL &&
		    rte_is_same_ether_addr(&m->forward.hold->netif.mac, mac))
			source_unpin(m);
	}
}

void forward_source_return(struct migration *m)
{
	struct migration_forward *f = &m->forward;
	struct vm *vm = m->vm;

	if (f->queue == NULL)
		return;
	source_unpin(m);
	if (vm == NULL) {
		forward_release(m);
		return;
	}
	vm_input_attach(vm);
	for (; f->count > 0; f->count--) {
		struct rte_mbuf *mb = f->queue[f->head];
		f->head = (f->head + 1) % MIGRATION_FORWARD_RING;
		vm_input(vm, &mb, 1);
		m->stats.forward.delivered++;
	}
	f->sent = 0;
	forward_release(m);
}

void forward_source_departing(struct migration *m)
{
	if (m->forward.queue != NULL && m->vm != NULL && m->vm->vnic.divert != NULL)
		iface_poll(&m->vm->vnic);
}

/* Hands the held frames to stream 0, in parts at the vmk's MTU; true once none waits. */
static bool source_send(struct migration *m, uint64_t now)
{
	struct migration_forward *f = &m->forward;
	uint8_t copy[PROTO_FRAME_MAX];

	while (f->sent < f->count) {
		struct rte_mbuf *mb = f->queue[(f->head + f->sent) % MIGRATION_FORWARD_RING];
		uint32_t len = rte_pktmbuf_pkt_len(mb);
		if (len > PROTO_FRAME_MAX || len == 0) {
			/* Never from a port of ours: counted, and passed over. */
			count_drop(m, MIGRATION_FORWARD_DROP_TOO_BIG, 1);
			f->sent++;
			f->offset = 0;
			continue;
		}
		uint16_t part = (uint16_t)RTE_MIN(len - f->offset, m->source.max_data);
		const void *data = rte_pktmbuf_read(mb, f->offset, part, copy);
		struct proto_frame body = {
		        .number = rte_cpu_to_be_32(f->first_number + f->sent),
		        .offset = rte_cpu_to_be_16(f->offset),
		        .frame_len = rte_cpu_to_be_16((uint16_t)len),
		};
		if (session_channel_send_on(m, 0, PROTO_FRAME, &body, sizeof(body), data, part,
		                            now) < 0)
			return false;
		f->offset = (uint16_t)(f->offset + part);
		if (f->offset < len)
			continue;
		f->offset = 0;
		f->sent++;
		m->stats.forward.forwarded++;
	}
	if (f->committed)
		source_free_sent(f);
	return true;
}

bool forward_source_busy(const struct migration *m)
{
	return m->forward.queue != NULL;
}

bool forward_source_poll(struct migration *m, uint64_t now)
{
	struct migration_forward *f = &m->forward;

	if (f->queue == NULL || f->pause_ns == 0)
		return f->queue != NULL;
	/* Not before the vCPU state is out: the STATE goes once the channel is idle, and frames
	 * in flight would hold it back (and the VM paused) while more frames come. */
	if (m->channel_ready && (m->source.state_sent || f->committed)) {
		if (!session_running(m))
			session_channels_poll(m, now);
		source_send(m, now);
	}
	if (!f->committed)
		return true;
	/* The network has relearned the MAC once nothing came for it for a while (or the bound,
	 * which a network that relearns slowly, and so has a longer settle, pushes out). */
	uint64_t quiet_since = RTE_MAX(f->commit_ns, f->last_frame_ns);
	uint64_t bound_ns =
	        RTE_MAX(MIGRATION_FORWARD_BOUND_NS, MIGRATION_FORWARD_SETTLES * f->settle_ns);
	if (f->hold != NULL &&
	    (now - quiet_since >= f->settle_ns || now - f->commit_ns >= bound_ns)) {
		source_unpin(m);
		source_send(m, now);
	}
	if (f->hold != NULL)
		return true;
	/* The last frames out and acknowledged, then the session may go. */
	if (m->channel_ready && (f->count > 0 || !session_channels_idle(m))) {
		if (now - m->last_rx_ns <= MIGRATION_PEER_TIMEOUT)
			return true;
		count_drop(m, MIGRATION_FORWARD_DROP_PEER_SILENT, f->count);
	}
	forward_release(m);
	if (!session_running(m))
		session_release(m);
	return false;
}

/* ---- destination ---- */

/* A frame's length and a 32-bit FNV-1a of its bytes (read one at a time: a frame's data need
 * not be aligned), to know a copy again. */
static uint64_t signature(const struct rte_mbuf *mb)
{
	const uint8_t *p = rte_pktmbuf_mtod(mb, const uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(mb), hash = 2166136261u;

	for (uint32_t i = 0; i < len; i++)
		hash = (hash ^ p[i]) * 16777619u;
	return (uint64_t)len << 32 | hash;
}

/* Gives one frame to the VM, unless a copy of it was given lately. */
static void destination_give(struct migration *m, struct rte_mbuf *mb)
{
	struct migration_forward *f = &m->forward;
	uint64_t sig = signature(mb);

	if (f->vm == NULL) {
		count_drop(m, MIGRATION_FORWARD_DROP_NO_VM, 1);
		rte_pktmbuf_free(mb);
		return;
	}
	for (uint32_t i = 0; i < f->signature_count; i++) {
		if (f->signatures[i] == sig) {
			count_drop(m, MIGRATION_FORWARD_DROP_DUPLICATE, 1);
			rte_pktmbuf_free(mb);
			return;
		}
	}
	f->signatures[f->signature_next] = sig;
	f->signature_next = (f->signature_next + 1) % FORWARD_SIGNATURES;
	if (f->signature_count < FORWARD_SIGNATURES)
		f->signature_count++;
	vm_input(f->vm, &mb, 1);
	m->stats.forward.delivered++;
}

/* Frames that reached the VM's port directly while the source's were due: they wait. */
static void destination_take_direct(void *ctx, struct rte_mbuf **pkts, uint16_t n)
{
	struct migration *m = ctx;
	struct migration_forward *f = &m->forward;

	for (uint16_t i = 0; i < n; i++) {
		if (f->direct_count == MIGRATION_FORWARD_RING) {
			count_drop(m, MIGRATION_FORWARD_DROP_HOLD_FULL, 1);
			rte_pktmbuf_free(pkts[i]);
			continue;
		}
		f->direct[f->direct_count++] = pkts[i];
		m->stats.forward.held++;
	}
}

/* The destination's rings, at the first sign of the switchover; false without memory. */
static bool destination_prepare(struct migration *m, struct vm *vm)
{
	struct migration_forward *f = &m->forward;

	if (f->reorder == NULL) {
		f->reorder = ring_new();
		f->direct = ring_new();
		f->filled = calloc(MIGRATION_FORWARD_RING, sizeof(*f->filled));
		f->signatures = calloc(FORWARD_SIGNATURES, sizeof(*f->signatures));
		if (f->reorder == NULL || f->direct == NULL || f->filled == NULL ||
		    f->signatures == NULL) {
			forward_release(m);
			return false;
		}
	}
	f->vm = vm;
	/* From the source's pause on, what reaches the VM here directly waits behind its frames. */
	if (!f->diverting && !f->batch_done && f->vm != NULL) {
		iface_divert(&f->vm->vnic, destination_take_direct, m);
		f->diverting = true;
		/* The switch here learnt the MAC behind the uplink while the VM ran there: it is
		 * this port's now, so what reaches this host for it is held here, not dropped. */
		struct vswitch_port *vport = f->vm->vnic.vport;
		fdb_learn(&vport->vswitch->fdb, vport->portgroup->vlan, &f->vm->vnic.netif.mac,
		          vport->index, vswitch_now_ns(m->engine->vswitches));
	}
	return true;
}

bool forward_frame_sane(struct migration *m, const struct proto_message *msg)
{
	struct migration_forward *f = &m->forward;
	struct proto_frame body;

	memcpy(&body, msg->body, sizeof(body));
	uint32_t number = rte_be_to_cpu_32(body.number);
	uint16_t len = rte_be_to_cpu_16(body.frame_len);
	/* proto_parse checked the part lies inside the frame; here the number must be inside the
	 * window and a part agree with the frame's earlier parts. */
	if (number - f->deliver_next >= MIGRATION_FORWARD_RING) {
		session_count_drop(m->engine, MIGRATION_DROP_BAD_FRAME);
		return false;
	}
	uint32_t slot = number % MIGRATION_FORWARD_RING;
	if (f->filled != NULL && f->filled[slot] != 0 && f->filled[slot] != FORWARD_SKIP &&
	    (f->reorder[slot] == NULL || rte_pktmbuf_data_len(f->reorder[slot]) != len ||
	     f->filled[slot] + msg->data_len > len)) {
		session_count_drop(m->engine, MIGRATION_DROP_BAD_FRAME);
		return false;
	}
	return true;
}

/* Gives the VM the source's frames in order, as far as they are whole; then, once those held
 * before the resume are in (or waited for long enough), the ones that came directly. */
static void destination_deliver(struct migration *m, uint64_t now)
{
	struct migration_forward *f = &m->forward;

	if (!f->resumed || f->reorder == NULL)
		return;
	for (;;) {
		uint32_t slot = f->deliver_next % MIGRATION_FORWARD_RING;
		struct rte_mbuf *mb = f->reorder[slot];
		if (f->filled[slot] == FORWARD_SKIP) {
			f->filled[slot] = 0;
		} else if (mb != NULL && f->filled[slot] == rte_pktmbuf_data_len(mb)) {
			f->reorder[slot] = NULL;
			f->filled[slot] = 0;
			destination_give(m, mb);
		} else {
			break;
		}
		f->deliver_next++;
	}
	bool before_resume_missing = (int32_t)(f->deliver_next - f->numbered) < 0;
	if (f->batch_done ||
	    (before_resume_missing && now - f->resumed_ns < MIGRATION_FORWARD_WAIT_NS))
		return;
	f->batch_done = true;
	if (f->diverting && f->vm != NULL)
		vm_input_attach(f->vm);
	f->diverting = false;
	for (uint32_t i = 0; i < f->direct_count; i++)
		destination_give(m, f->direct[i]);
	f->direct_count = 0;
}

void forward_on_frame(struct migration *m, const struct proto_message *msg, uint64_t now)
{
	struct migration_forward *f = &m->forward;
	struct proto_frame body;

	if (!destination_prepare(m, f->resumed ? f->vm : m->vm)) {
		count_drop(m, MIGRATION_FORWARD_DROP_NO_MBUF, 1);
		return;
	}
	memcpy(&body, msg->body, sizeof(body));
	uint32_t number = rte_be_to_cpu_32(body.number), slot = number % MIGRATION_FORWARD_RING;
	uint16_t offset = rte_be_to_cpu_16(body.offset), len = rte_be_to_cpu_16(body.frame_len);

	if (f->filled[slot] == FORWARD_SKIP)
		return;
	if (f->reorder[slot] == NULL) {
		struct rte_mempool *pool = f->vm != NULL ? f->vm->vnic.netif.pool : NULL;
		struct rte_mbuf *mb = pool != NULL ? rte_pktmbuf_alloc(pool) : NULL;
		enum migration_forward_drop why = MIGRATION_FORWARD_DROP_NO_MBUF;
		if (pool == NULL)
			why = MIGRATION_FORWARD_DROP_NO_VM;
		else if (mb != NULL && rte_pktmbuf_append(mb, len) == NULL)
			why = MIGRATION_FORWARD_DROP_TOO_BIG;
		else if (mb != NULL)
			why = MIGRATION_FORWARD_DROP_MAX;
		if (why != MIGRATION_FORWARD_DROP_MAX) {
			rte_pktmbuf_free(mb);
			count_drop(m, why, 1);
			f->filled[slot] = FORWARD_SKIP;
			destination_deliver(m, now);
			return;
		}
		f->reorder[slot] = mb;
	}
	memcpy(rte_pktmbuf_mtod_offset(f->reorder[slot], uint8_t *, offset), msg->data,
	       msg->data_len);
	f->filled[slot] = (uint16_t)(f->filled[slot] + msg->data_len);
	if (f->filled[slot] == len)
		m->stats.forward.forwarded++;
	destination_deliver(m, now);
}

void forward_destination_resumed(struct migration *m, struct vm *vm, uint32_t numbered,
                                 uint64_t now)
{
	struct migration_forward *f = &m->forward;

	f->vm = vm;
	f->resumed = true;
	f->resumed_ns = now;
	f->numbered = numbered;
	if (numbered == 0 && f->reorder == NULL) {
		f->batch_done = true; /* nothing was held at the source: nothing waits here */
		return;
	}
	if (destination_prepare(m, vm))
		destination_deliver(m, now);
}

void forward_destination_poll(struct migration *m, uint64_t now)
{
	if (m->forward.resumed && !m->forward.batch_done)
		destination_deliver(m, now);
}

void forward_forget_vm(struct migration *m, const struct vm *vm)
{
	struct migration_forward *f = &m->forward;

	if (f->vm == vm) {
		f->vm = NULL;
		f->diverting = false;
	}
}

void forward_release(struct migration *m)
{
	struct migration_forward *f = &m->forward;

	source_unpin(m);
	if (f->queue != NULL) {
		/* Those that went out reached the destination, whatever it did with the VM. */
		count_drop(m, MIGRATION_FORWARD_DROP_NO_VM, f->count - f->sent);
		for (; f->count > 0; f->count--) {
			rte_pktmbuf_free(f->queue[f->head]);
			f->head = (f->head + 1) % MIGRATION_FORWARD_RING;
		}
		free(f->queue);
		f->queue = NULL;
	}
	if (f->vm != NULL && f->diverting)
		vm_input_attach(f->vm);
	f->diverting = false;
	if (f->reorder != NULL) {
		for (uint32_t i = 0; i < MIGRATION_FORWARD_RING; i++)
			if (f->reorder[i] != NULL) {
				count_drop(m, MIGRATION_FORWARD_DROP_NO_VM, 1);
				rte_pktmbuf_free(f->reorder[i]);
			}
		for (uint32_t i = 0; i < f->direct_count; i++)
			rte_pktmbuf_free(f->direct[i]);
		count_drop(m, MIGRATION_FORWARD_DROP_NO_VM, f->direct_count);
	}
	free(f->reorder);
	free(f->direct);
	free(f->filled);
	free(f->signatures);
	f->reorder = f->direct = NULL;
	f->filled = NULL;
	f->signatures = NULL;
	f->direct_count = 0;
	f->vm = NULL;
}
