/* The self-announcement of a VM that moved: RARP requests from its MAC, sent into its vswitch
 * as if the VM sent them, on QEMU's schedule, so every switch on the path relearns where the
 * MAC lives. */
#include "announce.h"

#include <errno.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_mbuf.h>

#include "vswitch/iface.h"

#define NS_PER_MS 1000000ull

void announce_config_default(struct announce_config *config)
{
	*config = (struct announce_config){
	        .rounds = ANNOUNCE_DEFAULT_ROUNDS,
	        .initial_ns = ANNOUNCE_DEFAULT_INITIAL_MS * NS_PER_MS,
	        .step_ns = ANNOUNCE_DEFAULT_STEP_MS * NS_PER_MS,
	};
}

void announce_build_rarp(uint8_t *frame, const struct rte_ether_addr *mac)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct announce_rarp *rarp = (struct announce_rarp *)(eth + 1);

	memset(frame, 0, RARP_FRAME_LEN);
	memset(&eth->dst_addr, 0xff, sizeof(eth->dst_addr));
	eth->src_addr = *mac;
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_RARP);
	rarp->htype = RTE_BE16(1);
	rarp->ptype = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	rarp->hlen = RTE_ETHER_ADDR_LEN;
	rarp->plen = 4;
	rarp->op = RTE_BE16(3);
	memcpy(rarp->sha, mac->addr_bytes, sizeof(rarp->sha));
	memcpy(rarp->tha, mac->addr_bytes, sizeof(rarp->tha));
}

/* One round: the RARP (and a gratuitous ARP if asked) leave through the vnic. */
static void announce_round(struct announce *a)
{
	struct netif *netif = &a->vnic->netif;
	struct rte_mbuf *m = a->config.no_rarp ? NULL : rte_pktmbuf_alloc(a->vnic->host_side.pool);

	uint8_t *frame = m != NULL ? (uint8_t *)rte_pktmbuf_append(m, RARP_FRAME_LEN) : NULL;
	if (frame != NULL) {
		announce_build_rarp(frame, &netif->mac);
		port_tx_burst(&a->vnic->host_side, &m, 1);
	} else {
		rte_pktmbuf_free(m); /* a buffer with no room for 60 bytes: this round sends none */
	}
	if (a->config.garp)
		netif_announce(netif);
	a->sent++;
}

static void announce_timer(void *arg)
{
	struct announce *a = arg;

	announce_round(a);
	if (a->sent < a->config.rounds) {
		a->next_gap_ns += a->config.step_ns;
		loop_timer_arm(a->loop, &a->timer, a->next_gap_ns, 0);
	}
}

int announce_start(struct announce *a, struct iface *vnic, struct loop *loop,
                   const struct announce_config *config)
{
	if (config->rounds == 0 || (config->no_rarp && !config->garp))
		return -EINVAL;
	if (a->loop != NULL)
		loop_timer_cancel(a->loop, &a->timer);
	a->config = *config;
	a->vnic = vnic;
	a->loop = loop;
	a->sent = 0;
	a->next_gap_ns = config->initial_ns;
	loop_timer_init(&a->timer, announce_timer, a);
	announce_round(a);
	if (a->sent < config->rounds)
		return loop_timer_arm(loop, &a->timer, a->next_gap_ns, 0);
	return 0;
}

void announce_stop(struct announce *a)
{
	if (a->loop != NULL)
		loop_timer_cancel(a->loop, &a->timer);
}

bool announce_running(const struct announce *a)
{
	return a->loop != NULL && loop_timer_armed(&a->timer);
}
