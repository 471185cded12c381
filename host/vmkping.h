/* vmkping: ICMP echo sessions from a VMkernel interface, as ESXi's tool runs them. A session runs
 * on the worker's timers; the CLI starts it and then polls its progress, so no command blocks. */
#ifndef FERRY_HOST_VMKPING_H
#define FERRY_HOST_VMKPING_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/loop.h"

struct iface;

#define VMKPING_MAX_SESSIONS 16
#define VMKPING_MAX_COUNT    1000
#define VMKPING_KEEP_NS      (60ull * 1000000000ull) /* a finished session stays this long */

struct vmkping_session {
	uint16_t id; /* session id and ICMP identifier */
	struct iface *vmk;
	uint32_t dst; /* network byte order */
	uint16_t count, sent, received, size;
	bool dont_fragment;
	uint64_t interval_ns, timeout_ns;
	uint64_t start_ns, finished_ns; /* finished_ns 0 while running */
	uint64_t sent_ns[VMKPING_MAX_COUNT];
	int64_t rtt_ns[VMKPING_MAX_COUNT]; /* -1 until the reply */
	uint8_t ttl[VMKPING_MAX_COUNT];
	int error; /* the send error that ended the session early, or 0 */
	struct loop_timer timer;
	struct vmkping_table *table;
};

struct vmkping_table {
	struct loop *loop;
	struct vmkping_session *sessions[VMKPING_MAX_SESSIONS];
	uint16_t next_id;
};

struct vmkping_request {
	struct iface *vmk;
	uint32_t dst;
	uint16_t count, size;
	bool dont_fragment;
	uint64_t interval_ns, timeout_ns;
};

/* Prepares an empty table. */
void vmkping_table_init(struct vmkping_table *table, struct loop *loop);

/* Cancels and frees every session. */
void vmkping_table_fini(struct vmkping_table *table);

/* Starts a session: the first request leaves now. Returns it, or NULL with errno set (ENOSPC
 * when too many run, ENOMEM). */
struct vmkping_session *vmkping_start(struct vmkping_table *table,
                                      const struct vmkping_request *request);

/* Finds a session by id, NULL if absent (or expired). */
struct vmkping_session *vmkping_find(struct vmkping_table *table, uint16_t id);

/* Ends every session of a vmk (before the vmk goes away). */
void vmkping_forget_vmk(struct vmkping_table *table, const struct iface *vmk);

/* The netif echo handler: records a reply for its session. ctx is the table. */
void vmkping_on_echo(void *ctx, uint32_t src_ip, uint16_t id, uint16_t seq, uint16_t len,
                     uint8_t ttl);

#endif
