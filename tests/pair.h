/* Two hosts in one process, their uplinks on crossed rings (the ring PMD), driven by the same
 * commands users type: what the migration tests share. */
#ifndef FERRY_TESTS_PAIR_H
#define FERRY_TESTS_PAIR_H

#include <stdint.h>
#include <sys/types.h>

#include <rte_mbuf.h>

#include "cli/cli.h"
#include "host/host.h"

#define SECOND   1000000000ull
#define VM_MAC   "02:00:00:00:00:0a"
#define A_VMK_IP "50.50.50.1"
#define B_VMK_IP "50.50.50.2"

/* One host of the pair and the commands that drive it. */
struct node {
	struct host host;
	struct cli_table cli;
	bool alive;
	struct migration_info info; /* the last session() read */
};

/* Host a (the source) and b (the destination), made by a suite's setup. */
extern struct node *a, *b;

/* The wire between them: a filter sees every frame pump() carries and drops it by returning
 * false (NULL: everything passes). */
enum wire_direction { WIRE_A_TO_B, WIRE_B_TO_A };
typedef bool wire_filter_fn(enum wire_direction direction, struct rte_mbuf *frame, void *ctx);
extern wire_filter_fn *wire_filter;
extern void *wire_filter_ctx;

/* Puts a UDP datagram on the wire towards a host's vmk as if from src_ip (any address: a
 * spoofer's), tagged for the vMotion VLAN; the next pump() delivers it. */
void wire_inject_udp(enum wire_direction direction, uint32_t src_ip, uint16_t src_port,
                     uint16_t dst_port, const void *payload, uint16_t len);

/* Puts a UDP datagram on the wire towards a host for the VM (VM_MAC, 10.10.0.10 on the VM
 * Network's VLAN 10) from a client at 10.10.0.99, as the physical switch would send it there. */
void wire_inject_vm_udp(enum wire_direction direction, uint16_t dst_port, const void *payload,
                        uint16_t len);

/* The migration message a frame carries (UDP to or from the migration port), NULL if none. */
const uint8_t *wire_migration_message(struct rte_mbuf *frame, uint16_t *len);
/* Key files both hosts share, and one neither holds. */
extern char key_path[64], other_key_path[64];

/* Writes a file of a mode (a key file must be closed to group and others). */
void write_file(const char *path, const char *text, mode_t mode);

/* Runs a command on a host; returns its errno and leaves the rendered reply in out. */
int ctl_try(struct node *h, char *out, size_t size, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#define ctl(h, ...)                                                                                \
	do {                                                                                       \
		char err_[512];                                                                    \
		int ret_ = ctl_try(h, err_, sizeof(err_), __VA_ARGS__);                            \
		cr_assert_eq(ret_, 0, "%s", err_);                                                 \
	} while (0)

/* A suite's setup: EAL once, the wire, and the two hosts with their vmks at an MTU; and its
 * teardown. */
void setup_1500(void);
void setup_9000(void);
void teardown(void);

/* A host dies at once (its worker stops, its state is freed, nothing more leaves it); the
 * destination comes back, empty, on a clean wire. */
void destination_kill(void);
void source_kill(void);
void destination_restart(unsigned int mtu);

/* One turn of each live host's worker. */
void pump(void);

/* Pumps both hosts until cond holds; one that never comes fails the test with the message. */
#define pump_until(cond, timeout_ns, ...)                                                          \
	do {                                                                                       \
		uint64_t deadline_ = loop_tsc_now_ns() + (timeout_ns);                             \
		while (!(cond)) {                                                                  \
			cr_assert_lt(loop_tsc_now_ns(), deadline_, __VA_ARGS__);                   \
			pump();                                                                    \
		}                                                                                  \
	} while (0)

/* A session's figures now, as `migrate status` reads them. */
const struct migration_info *session(struct node *h, int id);

/* Pumps until the session is over; a migration that never ends fails the test. */
const struct migration_info *wait_done(struct node *h, int id, uint64_t timeout_ns);

/* The link's speed and round trip are the pre-flight tests' business: a loaded CI machine may be
 * slow, so the tests of anything else give limits no machine misses. */
#define LOOSE_PREFLIGHT "min-bandwidth 1M rtt-limit 1000"

/* Starts a migration of vm from a to b (in pre-copy unless options name a mode); returns its id
 * on a. */
int start(const char *vm, const char *options);

/* Creates a running VM on a host, with VM_MAC on the "VM Network" port group. */
void create_vm(struct node *h, const char *name, unsigned int mib, const char *workload);

/* The same with more of `vm create`'s options (as "hugepages on"). */
void create_vm_with(struct node *h, const char *name, unsigned int mib, const char *workload,
                    const char *options);

/* The VM is still on the source, running. */
void assert_vm_unmoved(void);

/* A host's engine's drop counter for a reason, and all of them added up. */
uint64_t drops(struct node *h, enum migration_drop_reason reason);
uint64_t all_drops(struct node *h);

/* Writes a plain protocol message (header and body) into buf; returns its length. */
uint16_t message(uint8_t *buf, enum proto_type type, uint64_t session, uint64_t seq,
                 const void *body, uint16_t body_len);

#endif
