/* vmkping: ICMP echo sessions from a VMkernel interface, as ESXi's tool runs them. A session runs
 * on the worker's timers; the CLI starts it and then polls its progress, so no command blocks. */
#include "vmkping.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vswitch/iface.h"

void vmkping_table_init(struct vmkping_table *table, struct loop *loop)
{
	memset(table, 0, sizeof(*table));
	table->loop = loop;
	table->next_id = 1;
}

static void session_free(struct vmkping_table *table, unsigned int slot)
{
	struct vmkping_session *s = table->sessions[slot];

	loop_timer_cancel(table->loop, &s->timer);
	free(s);
	table->sessions[slot] = NULL;
}

void vmkping_table_fini(struct vmkping_table *table)
{
	for (unsigned int i = 0; i < VMKPING_MAX_SESSIONS; i++)
		if (table->sessions[i] != NULL)
			session_free(table, i);
}

static void session_finish(struct vmkping_session *s, uint64_t now)
{
	s->finished_ns = now;
	loop_timer_cancel(s->table->loop, &s->timer);
}

/* Sends the next request, or, after the last one, waits out the timeout and finishes. */
static void session_step(void *arg)
{
	struct vmkping_session *s = arg;
	struct loop *loop = s->table->loop;
	uint64_t now = loop_now_ns(loop);

	if (s->sent == s->count) {
		session_finish(s, now);
		return;
	}
	uint16_t seq = s->sent;
	s->sent_ns[seq] = now;
	s->rtt_ns[seq] = -1;
	s->sent++;
	int ret = netif_ping(&s->vmk->netif, s->dst, s->id, seq, s->size, s->dont_fragment, now);
	if (ret < 0 && ret != -ENOBUFS) {
		/* Too big, no route: the same for every later request. */
		s->error = ret;
		session_finish(s, now);
		return;
	}
	uint64_t next = s->sent == s->count ? s->timeout_ns : s->interval_ns;
	loop_timer_arm(loop, &s->timer, next, 0);
}

struct vmkping_session *vmkping_start(struct vmkping_table *table,
                                      const struct vmkping_request *request)
{
	unsigned int slot = VMKPING_MAX_SESSIONS;
	uint64_t now = loop_now_ns(table->loop);

	for (unsigned int i = 0; i < VMKPING_MAX_SESSIONS; i++) {
		struct vmkping_session *s = table->sessions[i];
		/* Sessions finished long ago are nobody's any more. */
		if (s != NULL && s->finished_ns != 0 && now - s->finished_ns > VMKPING_KEEP_NS)
			session_free(table, i);
		if (table->sessions[i] == NULL && slot == VMKPING_MAX_SESSIONS)
			slot = i;
	}
	if (slot == VMKPING_MAX_SESSIONS) {
		errno = ENOSPC;
		return NULL;
	}
	struct vmkping_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	s->id = table->next_id++;
	if (table->next_id == 0)
		table->next_id = 1;
	s->vmk = request->vmk;
	s->dst = request->dst;
	s->count = request->count;
	s->size = request->size;
	s->dont_fragment = request->dont_fragment;
	s->interval_ns = request->interval_ns;
	s->timeout_ns = request->timeout_ns;
	s->start_ns = now;
	s->table = table;
	loop_timer_init(&s->timer, session_step, s);
	table->sessions[slot] = s;
	session_step(s);
	return s;
}

struct vmkping_session *vmkping_find(struct vmkping_table *table, uint16_t id)
{
	for (unsigned int i = 0; i < VMKPING_MAX_SESSIONS; i++)
		if (table->sessions[i] != NULL && table->sessions[i]->id == id)
			return table->sessions[i];
	return NULL;
}

void vmkping_forget_vmk(struct vmkping_table *table, const struct iface *vmk)
{
	for (unsigned int i = 0; i < VMKPING_MAX_SESSIONS; i++)
		if (table->sessions[i] != NULL && table->sessions[i]->vmk == vmk)
			session_free(table, i);
}

void vmkping_on_echo(void *ctx, uint32_t src_ip, uint16_t id, uint16_t seq, uint16_t len,
                     uint8_t ttl)
{
	struct vmkping_table *table = ctx;
	struct vmkping_session *s = vmkping_find(table, id);

	(void)len;
	if (s == NULL || s->dst != src_ip || seq >= s->sent || s->rtt_ns[seq] >= 0)
		return; /* not ours, or a duplicate */
	uint64_t now = loop_now_ns(table->loop);
	s->rtt_ns[seq] = (int64_t)(now - s->sent_ns[seq]);
	s->ttl[seq] = ttl;
	s->received++;
	/* All answered: no need to wait out the timeout. */
	if (s->sent == s->count && s->received == s->count && s->finished_ns == 0)
		session_finish(s, now);
}
