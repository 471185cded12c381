/* The self-announcement of a VM that moved: RARP requests from its MAC, sent into its vswitch
 * as if the VM sent them, on QEMU's schedule, so every switch on the path relearns where the
 * MAC lives. */
#ifndef FERRY_VM_ANNOUNCE_H
#define FERRY_VM_ANNOUNCE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>

#include "dataplane/loop.h"

struct iface;
struct rte_mbuf;

#define ANNOUNCE_DEFAULT_ROUNDS     5
#define ANNOUNCE_DEFAULT_INITIAL_MS 50
#define ANNOUNCE_DEFAULT_STEP_MS    100
#define RARP_FRAME_LEN              60 /* the Ethernet minimum, without the FCS */

/* The RARP body on the wire, network byte order, 28 bytes (RFC 903 over RFC 826's layout). */
struct announce_rarp {
	uint16_t htype; /* 1: Ethernet */
	uint16_t ptype; /* 0x0800: IPv4 */
	uint8_t hlen;   /* 6 */
	uint8_t plen;   /* 4 */
	uint16_t op;    /* 3: reverse request */
	uint8_t sha[6];
	uint8_t spa[4];
	uint8_t tha[6];
	uint8_t tpa[4];
} __attribute__((packed));

_Static_assert(sizeof(struct announce_rarp) == 28, "a RARP body is 28 bytes");

struct announce_config {
	uint32_t rounds;     /* frames in all, the first at once */
	uint64_t initial_ns; /* gap after the first */
	uint64_t step_ns;    /* each later gap this much longer */
	bool garp;           /* a gratuitous ARP each round, for the VM's address */
	bool no_rarp;        /* no RARP request (then garp is the announcement) */
};

struct announce {
	struct announce_config config;
	struct iface *vnic; /* the frames leave through it, as the VM's own */
	struct loop *loop;
	struct loop_timer timer;
	uint32_t sent;
	uint64_t next_gap_ns;
};

/* The defaults, as QEMU's announce: 5 frames, 50 ms apart then 100 ms more each time. */
void announce_config_default(struct announce_config *config);

/* Writes a RARP request from mac into a 60-byte frame (broadcast, zero-padded). */
void announce_build_rarp(uint8_t *frame, const struct rte_ether_addr *mac);

/* Starts announcing the vnic's MAC: one frame now, the rest on the schedule. Restarting an
 * announce that runs begins it again. -EINVAL for no rounds, or neither RARP nor GARP. */
int announce_start(struct announce *announce, struct iface *vnic, struct loop *loop,
                   const struct announce_config *config);

/* Stops an announce that still runs. */
void announce_stop(struct announce *announce);

/* True while frames remain to send. */
bool announce_running(const struct announce *announce);

#endif
