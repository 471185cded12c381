/* The source of a live migration: handshake, pre-copy rounds, convergence, switchover. */
#include "source.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <rte_byteorder.h>

#include "dataplane/loop.h"
#include "migrate/preflight.h"
#include "migrate/forward.h"
#include "migrate/session.h"
#include "vswitch/iface.h"
#include "vswitch/vswitch.h"

static inline bool bit_test(const uint64_t *bitmap, uint64_t bit)
{
	return (bitmap[bit / 64] >> (bit % 64)) & 1;
}

/* The first set bit at or after from, or end. */
static uint64_t next_page(const uint64_t *bitmap, uint64_t from, uint64_t end)
{
	if (from >= end)
		return end; /* and nothing past the bitmap is read */
	uint64_t word = from / 64;
	uint64_t bits = bitmap[word] & (~0ull << (from % 64));

	while (bits == 0) {
		if (++word * 64 >= end)
			return end;
		bits = bitmap[word];
	}
	uint64_t page = word * 64 + (uint64_t)__builtin_ctzll(bits);
	return page < end ? page : end;
}

/* The largest page slice one message carries at the vmk's MTU. */
uint16_t source_page_bytes_per_message(uint16_t mtu)
{
	/* migration_start refuses vmks under MIGRATION_MIN_MTU, so this never underflows. */
	uint32_t room = (uint32_t)mtu - 20 - 8 - MESSAGE_OVERHEAD;

	/* Whole pages when more than one fits; otherwise whole 64-byte blocks (the destination
	 * keeps a page's coverage per block). */
	if (room >= 2 * PROTO_PAGE_SIZE) {
		uint32_t pages = room / PROTO_PAGE_SIZE;
		return (uint16_t)((pages < PROTO_PAGES_MAX_SPAN ? pages : PROTO_PAGES_MAX_SPAN) *
		                  PROTO_PAGE_SIZE);
	}
	if (room > PROTO_PAGE_SIZE)
		room = PROTO_PAGE_SIZE;
	return (uint16_t)(room & ~63u);
}

/* The state went out and no authenticated answer came: the destination may run the VM, so it
 * stays paused here, and the engine asks the destination until it answers or an operator
 * settles it. */
static void source_unknown(struct migration *m)
{
	session_set_reason(m,
	                   "%s; the vCPU state went out, so the destination may run the VM: it "
	                   "stays paused here while the destination is asked (or 'migrate "
	                   "resolve')",
	                   m->reason);
	m->status = MIGRATION_UNKNOWN_OUTCOME;
	m->source.query_ns = 0; /* ask at once */
	/* The keys and the port stay, to ask and to open the answer; a post-copy switchover keeps
	 * its channels and absent pages too, since a CONFIRM sends it on into post-copy. */
	if (!m->source.postcopy)
		session_release_transfer(m);
	MIG_LOG(WARNING, "%u: %s: outcome unknown: %s", m->id, m->vm_name, m->reason);
}

/* Ends a source session. Before the state went out the VM runs here again; after, it ends only
 * on the destination's authenticated word (a CONFIRM, or a REFUSE saying it never ran it) or
 * the operator's; anything else makes the outcome unknown. */
void source_end(struct migration *m, enum migration_status status)
{
	uint64_t now = session_now_ns(m->engine);
	bool gone = status == MIGRATION_COMPLETED || status == MIGRATION_ABANDONED ||
	            status == MIGRATION_LOST;

	if (!gone && m->source.state_sent && !m->source.refused && m->vm != NULL) {
		if (m->status != MIGRATION_UNKNOWN_OUTCOME)
			source_unknown(m);
		return;
	}
	/* Tell the destination to drop its copy, unless it refused and holds none. */
	if ((!gone || m->source.params.check_only) && !m->source.refused && m->local_port != 0 &&
	    m->sealer_ready)
		session_send_control(m, PROTO_CANCEL, NULL, 0);
	if (m->vm != NULL) {
		m->vm->machine.throttle_percent = 0;
		if (gone && m->source.params.check_only) {
			/* A pre-flight check leaves the VM where it is. */
		} else if (gone) {
			struct vm *vm = m->vm;
			forward_source_departing(m);
			m->vm = NULL;
			if (m->engine->hooks.vm_departed != NULL)
				m->engine->hooks.vm_departed(m->engine->hooks.ctx, vm);
		} else if (vm_disk_withdraw(m->vm) < 0) {
			/* The destination took the disk after all: it runs the VM, or will. */
			session_set_reason(
			        m,
			        "%s; the disk's lock is no longer this host's, so the VM "
			        "stays paused here",
			        m->reason);
		} else if (m->source.paused && m->source.was_running) {
			vm_resume(m->vm);
		}
		if (!gone)
			forward_source_return(m);
	}
	m->vm = NULL;
	m->status = status;
	m->stats.end_ns = now;
	/* A completed session stays while its frames still go to the VM (forward_source_poll
	 * releases it then). */
	if (status != MIGRATION_COMPLETED)
		forward_release(m);
	if (!forward_source_busy(m))
		session_release(m);
	if (status == MIGRATION_COMPLETED && m->source.params.check_only)
		MIG_LOG(INFO, "%u: %s: pre-flight check passed", m->id, m->vm_name);
	else if (status == MIGRATION_COMPLETED)
		MIG_LOG(INFO, "%u: %s completed in %.1f ms, downtime %.3f ms, %u rounds", m->id,
		        m->vm_name, (double)(now - m->stats.start_ns) / 1e6,
		        (double)m->stats.downtime_ns / 1e6, m->stats.rounds);
	else
		MIG_LOG(WARNING, "%u: %s %s: %s", m->id, m->vm_name, migration_status_name(status),
		        m->reason);
}

static void source_query(struct migration *m, uint64_t now);

void source_recover(struct migration *m)
{
	source_query(m, session_now_ns(m->engine));
}

void source_resolve(struct migration *m, enum migration_resolution resolution)
{
	if (resolution == MIGRATION_LOST_WITH_PEER) {
		session_set_reason(
		        m, "resolved by the operator: the VM was lost with the destination, "
		           "which ran it in post-copy");
		source_end(m, MIGRATION_LOST);
	} else if (resolution == MIGRATION_RESUME_SOURCE) {
		/* The operator says the destination does not run it: tell it to drop any copy. */
		session_send_control(m, PROTO_CANCEL, NULL, 0);
		m->source.refused = true;
		session_set_reason(m, "resolved by the operator: the VM runs on the source again");
		source_end(m, MIGRATION_FAILED);
	} else {
		session_set_reason(m,
		                   "resolved by the operator: the VM is left to the destination");
		source_end(m, MIGRATION_ABANDONED);
	}
}

void source_fail(struct migration *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vset_reason(m, fmt, ap);
	va_end(ap);
	source_end(m, MIGRATION_FAILED);
}

/* Starts a round over the pages in to_send. */
/* What the channels have put on the wire so far. */
static uint64_t source_wire_bytes(struct migration *m)
{
	struct channel_stats sum;

	session_channels_stats(m, &sum);
	return sum.wire_bytes_sent;
}

static void source_round_begin(struct migration *m)
{
	m->source.cursor = 0;
	m->source.fragment = 0;
	m->source.zero_count = 0;
	m->stats.rounds = m->source.round + 1;
	m->source.round_start_ns = session_now_ns(m->engine);
	m->source.round_start_pages = m->stats.pages_normal + m->stats.pages_zero;
	m->source.round_start_bytes = source_wire_bytes(m);
}

/* Writes the record of the round that just ended, with the dirty pages found at its end. */
static void source_round_record(struct migration *m, uint64_t now, uint64_t dirty)
{
	struct migration_stats *s = &m->stats;
	unsigned int slot =
	        s->nb_round_log < MIGRATION_ROUND_LOG ? s->nb_round_log++ : MIGRATION_ROUND_LOG - 1;

	s->round_log[slot] = (struct migration_round){
	        .round = m->source.round,
	        .throttle_percent = m->vm->machine.throttle_percent,
	        .start_ns = m->source.round_start_ns,
	        .end_ns = now,
	        .pages = s->pages_normal + s->pages_zero - m->source.round_start_pages,
	        .wire_bytes = source_wire_bytes(m) - m->source.round_start_bytes,
	        .dirty = dirty,
	};
}

static int source_send_zero_run(struct migration *m, uint64_t now)
{
	struct proto_zero_run run = {
	        .first_page = rte_cpu_to_be_64(m->source.zero_first),
	        .count = rte_cpu_to_be_32((uint32_t)m->source.zero_count),
	        .round = rte_cpu_to_be_32(m->source.round),
	};
	int64_t ret = session_channel_send(m, PROTO_ZERO_RUN, &run, sizeof(run), NULL, 0, now);

	if (ret < 0)
		return (int)ret;
	m->stats.pages_zero += m->source.zero_count;
	m->source.zero_count = 0;
	return 0;
}

/* How many pages from the cursor's on one message carries whole: the cursor's, and those after
 * it that are to send and hold data, as far as the message has room. */
static uint16_t source_pages_joined(const struct migration *m)
{
	const struct machine *vm = &m->vm->machine;
	uint64_t page = m->source.cursor + 1;
	uint16_t pages = 1;

	while (pages < m->source.max_data / PROTO_PAGE_SIZE && page < vm->nb_pages &&
	       bit_test(m->source.to_send, page) && !machine_page_is_zero(vm, page)) {
		pages++;
		page++;
	}
	return pages;
}

/* Sends the next slice of the cursor's page, or it and the pages joined to it. Returns the pages
 * wholly sent (the cursor moves past them), 0 if more of the cursor's page remains, or -EAGAIN. */
static int source_send_page_slice(struct migration *m, uint64_t now)
{
	uint16_t len = m->source.max_data;

	if (m->source.fragment == 0 && len >= 2 * PROTO_PAGE_SIZE)
		len = (uint16_t)(source_pages_joined(m) * PROTO_PAGE_SIZE);
	else if (len > PROTO_PAGE_SIZE - m->source.fragment)
		len = (uint16_t)(PROTO_PAGE_SIZE - m->source.fragment);
	struct proto_pages hdr = {
	        .page = rte_cpu_to_be_64(m->source.cursor),
	        .round = rte_cpu_to_be_32(m->source.round),
	        .offset = rte_cpu_to_be_16((uint16_t)m->source.fragment),
	        .data_len = rte_cpu_to_be_16(len),
	};
	int64_t ret = session_channel_send(
	        m, PROTO_PAGES, &hdr, sizeof(hdr),
	        machine_page(&m->vm->machine, m->source.cursor) + m->source.fragment, len, now);
	if (ret < 0)
		return (int)ret;
	m->source.fragment += len;
	if (m->source.fragment < PROTO_PAGE_SIZE)
		return 0;
	uint16_t pages = (uint16_t)(m->source.fragment / PROTO_PAGE_SIZE);
	m->source.fragment = 0;
	m->source.cursor += pages;
	m->stats.pages_normal += pages;
	return pages;
}

/* Round 0 begins with the map of the regions the VM wrote, so the destination can back them
 * with memory before their pages come. Returns 0 once all of it is sent, or -EAGAIN. */
static int source_send_regions(struct migration *m, uint64_t now)
{
	struct machine *vm = &m->vm->machine;
	uint64_t regions = machine_regions(vm);

	/* As many as a message carries at the smaller MTU (its bitmap goes where page data would). */
	uint32_t per_message = (uint32_t)m->source.max_data * 8;

	if (per_message > PROTO_REGIONS_PER_MESSAGE)
		per_message = PROTO_REGIONS_PER_MESSAGE;
	while (m->source.regions_sent < regions) {
		uint8_t bitmap[PROTO_REGIONS_PER_MESSAGE / 8] = {0};
		uint64_t first = m->source.regions_sent;
		uint32_t count =
		        regions - first < per_message ? (uint32_t)(regions - first) : per_message;
		for (uint32_t i = 0; i < count; i++)
			if (machine_region_touched(vm, first + i))
				bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
		struct proto_regions body = {.first_region = rte_cpu_to_be_64(first),
		                             .count = rte_cpu_to_be_32(count)};
		int64_t ret = session_channel_send(m, PROTO_REGIONS, &body, sizeof(body), bitmap,
		                                   (uint16_t)((count + 7) / 8), now);
		if (ret < 0)
			return (int)ret;
		m->source.regions_sent += count;
	}
	return 0;
}

static void source_postcopy_next(struct migration *m);

/* Pages set in a bitmap below a page. */
static uint64_t bits_below(const uint64_t *bitmap, uint64_t end)
{
	uint64_t count = 0;

	for (uint64_t w = 0; w < end / 64; w++)
		count += (uint64_t)__builtin_popcountll(bitmap[w]);
	if (end % 64 != 0)
		count += (uint64_t)__builtin_popcountll(bitmap[end / 64] &
		                                        ((1ull << (end % 64)) - 1));
	return count;
}

/* Hybrid's round 0, at checkpoints (every thirty-second of the VM's written pages, 256 pages at
 * least): a VM that has written again more than half of what the round sent so far will not let a
 * round halve; sending it all first only to send it again after the resume is the slowest way
 * to move it. So the round stops there and post-copy takes every page not sent, or sent and
 * written since. */
static void source_round0_check(struct migration *m)
{
	struct machine *vm = &m->vm->machine;
	struct migration_source *src = &m->source;
	uint64_t written = vm->stats.pages_touched;
	uint64_t step = written / 32 > 256 ? written / 32 : 256;

	src->next_check = m->stats.pages_normal + step;
	if (m->stats.pages_normal < step)
		return;
	if (src->redirty == NULL)
		src->redirty = calloc(machine_bitmap_words(vm), sizeof(uint64_t));
	if (src->redirty == NULL)
		return; /* the round's end decides, as without the checkpoints */
	machine_dirty_log_merge_and_clear(vm, src->redirty);
	/* Behind the cursor, less a run of zero pages not yet sent. */
	uint64_t sent_end = src->cursor - src->zero_count;
	uint64_t again = bits_below(src->redirty, sent_end);
	uint64_t sent = m->stats.pages_normal;
	/* Or, with a quarter of it written again already, the round would end with more than half
	 * of the VM's pages dirty: its dirty set, growing as fast as pages go (linearly, from what
	 * has gone so far), would reach half the written pages by the round's end, and the round's
	 * end would go post-copy with all of them to send again. */
	uint64_t dirty = bits_below(src->redirty, vm->nb_pages);
	if (again * 2 <= sent && !(again * 4 > sent && dirty * 2 > sent))
		return;
	MIG_LOG(INFO,
	        "%u: %s: round 0 sent %lu pages and the VM wrote %lu of them again: post-copy",
	        m->id, m->vm_name, (unsigned long)m->stats.pages_normal, (unsigned long)again);
	/* to_send keeps what the round has not sent; the pages written again join it. */
	for (uint64_t w = 0; w < sent_end / 64; w++)
		src->to_send[w] = 0;
	if (sent_end % 64 != 0)
		src->to_send[sent_end / 64] &= ~((1ull << (sent_end % 64)) - 1);
	for (uint64_t w = 0; w < machine_bitmap_words(vm); w++)
		src->to_send[w] |= src->redirty[w];
	memset(src->redirty, 0, machine_bitmap_words(vm) * sizeof(uint64_t));
	source_postcopy_next(m);
}

/* Sends what the pacer and the window allow of this round. Returns true when the round is
 * wholly handed to the channel. */
static bool source_send_round(struct migration *m, uint64_t now)
{
	struct machine *vm = &m->vm->machine;
	struct migration_source *src = &m->source;
	unsigned int budget = SEND_BUDGET;

	if (src->regions_sent < machine_regions(vm) && source_send_regions(m, now) < 0)
		return false;

	while (budget > 0) {
		/* At a page boundary: skip what is not to send, gather zero pages into runs. */
		if (src->fragment == 0) {
			if (src->cursor >= vm->nb_pages)
				return src->zero_count == 0 || source_send_zero_run(m, now) == 0;
			bool to_send = bit_test(src->to_send, src->cursor);
			if (to_send && machine_page_is_zero(vm, src->cursor)) {
				if (src->zero_count == 0)
					src->zero_first = src->cursor;
				src->zero_count++;
				src->cursor++;
				if (src->zero_count == UINT32_MAX &&
				    source_send_zero_run(m, now) < 0)
					return false;
				continue;
			}
			/* A run of zeros ends at a page of data or at one not to send. */
			if (src->zero_count != 0) {
				if (source_send_zero_run(m, now) < 0)
					return false;
				budget--;
			}
			if (!to_send) {
				src->cursor = next_page(src->to_send, src->cursor, vm->nb_pages);
				continue;
			}
		}
		if (source_send_page_slice(m, now) < 0)
			return false;
		budget--;
		if (m->source.params.mode == MIGRATION_MODE_HYBRID && src->round == 0 &&
		    m->status == MIGRATION_ACTIVE && !src->postcopy_asked &&
		    m->stats.pages_normal >= src->next_check) {
			source_round0_check(m);
			if (src->postcopy_asked)
				return false;
		}
	}
	return false;
}

static uint64_t source_bandwidth_bps(const struct migration *m, uint64_t now)
{
	uint64_t elapsed = now - m->source.active_start_ns;

	if (elapsed == 0)
		return 0;
	struct channel_stats sum;

	session_channels_stats(m, &sum);
	return (uint64_t)((double)(sum.wire_bytes_sent - m->source.active_start_bytes) * 8.0 *
	                  (double)NS_PER_SECOND / (double)elapsed);
}

/* Pauses the VM and adds what it wrote since the log was last read to a page bitmap (the last
 * round's, or post-copy's absent pages). Returns the pages the bitmap then holds, or UINT64_MAX
 * with the session failed (and the VM running again). */
static uint64_t source_pause_into(struct migration *m, uint64_t *pages, uint64_t now)
{
	uint64_t words = machine_bitmap_words(&m->vm->machine);
	uint64_t *late = malloc(words * sizeof(uint64_t));
	uint64_t count = 0;

	vm_pause(m->vm);
	m->source.paused = true;
	m->source.pause_ns = now;
	m->stats.paused_at_ns = now;
	forward_source_pause(m, now);
	/* The VM waits on every message from here: no loss waits for a loaded link's timeout. */
	session_channels_urgent(m, 0, PROTO_STREAMS_MAX);
	if (late == NULL) {
		source_fail(m, "out of memory at switchover");
		return UINT64_MAX;
	}
	machine_dirty_log_read_and_clear(&m->vm->machine, late);
	for (uint64_t w = 0; w < words; w++) {
		pages[w] |= late[w];
		count += (uint64_t)__builtin_popcountll(pages[w]);
	}
	free(late);
	return count;
}

static void source_switchover(struct migration *m, uint64_t now)
{
	uint64_t dirty = source_pause_into(m, m->source.to_send, now);

	if (dirty == UINT64_MAX)
		return;
	m->stats.dirty_pages_last = dirty;
	m->stats.bytes_remaining = dirty * PROTO_PAGE_SIZE;
	m->status = MIGRATION_SWITCHOVER;
	m->source.round++;
	source_round_begin(m);
}

/* Into post-copy: the copies in flight are acknowledged (drained), the VM pauses, and every page
 * the destination lacks in its newest version — the round's dirty set, what the VM wrote since,
 * and in pure post-copy every page it ever wrote — is named in ABSENT maps, then the vCPU state
 * resumes the VM there. Those pages follow, demanded ones first. */
static void source_postcopy_switchover(struct migration *m, uint64_t now)
{
	uint64_t words = machine_bitmap_words(&m->vm->machine);

	if (m->source.absent == NULL)
		m->source.absent = calloc(words, sizeof(uint64_t));
	if (m->source.absent == NULL) {
		source_fail(m, "out of memory at the post-copy switchover");
		return;
	}
	for (uint64_t w = 0; w < words; w++)
		m->source.absent[w] |= m->source.to_send[w];
	m->source.absent_left = source_pause_into(m, m->source.absent, now);
	if (m->source.absent_left == UINT64_MAX)
		return;
	m->source.postcopy = true;
	m->source.maps_sent = 0;
	m->source.absent_cursor = 0;
	m->source.page_sending = UINT64_MAX;
	m->stats.postcopy.start_ns = now;
	m->stats.postcopy.pages_absent = m->source.absent_left;
	m->stats.dirty_pages_last = m->source.absent_left;
	m->stats.bytes_remaining = m->source.absent_left * PROTO_PAGE_SIZE;
	/* The pages sent from here on are newer than any copy the destination holds. */
	m->source.round++;
	m->stats.rounds = m->source.round + 1;
	m->status = MIGRATION_SWITCHOVER;
	MIG_LOG(INFO, "%u: %s: post-copy, %lu pages follow the resume", m->id, m->vm_name,
	        (unsigned long)m->source.absent_left);
}

/* The ABSENT maps, as many pages a message as its bitmap holds at the smaller MTU (only the
 * stretches that name a page). Returns true once all are handed to the channel. */
static bool source_send_absent_maps(struct migration *m, uint64_t now)
{
	uint64_t nb_pages = m->vm->machine.nb_pages;
	uint32_t per_message = (uint32_t)m->source.max_data * 8;

	if (per_message > PROTO_ABSENT_PER_MESSAGE)
		per_message = PROTO_ABSENT_PER_MESSAGE;
	for (unsigned int budget = SEND_BUDGET; budget > 0 && m->source.maps_sent < nb_pages;) {
		uint8_t bitmap[PROTO_ABSENT_PER_MESSAGE / 8] = {0};
		uint64_t first = m->source.maps_sent;
		uint32_t count =
		        nb_pages - first < per_message ? (uint32_t)(nb_pages - first) : per_message;
		bool any = false;
		/* The bitmap's words are little-endian, as the wire's bytes are: a map (which
		 * starts on a whole byte, per_message being one) is a copy of its bytes. */
#if RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN
		memcpy(bitmap, (const uint8_t *)m->source.absent + first / 8, (count + 7) / 8);
		if (count % 8 != 0)
			bitmap[count / 8] &= (uint8_t)((1u << (count % 8)) - 1);
		for (uint32_t i = 0; i < (count + 7) / 8 && !any; i++)
			any = bitmap[i] != 0;
#else
		for (uint32_t i = 0; i < count; i++) {
			if (bit_test(m->source.absent, first + i)) {
				bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
				any = true;
			}
		}
#endif
		if (any) {
			struct proto_absent body = {.first_page = rte_cpu_to_be_64(first),
			                            .count = rte_cpu_to_be_32(count)};
			if (session_channel_send(m, PROTO_ABSENT, &body, sizeof(body), bitmap,
			                         (uint16_t)((count + 7) / 8), now) < 0)
				return false;
			budget--;
		}
		m->source.maps_sent += count;
	}
	return m->source.maps_sent >= nb_pages;
}

/* A post-copy message: a demanded page's on stream 0 when there are several (it never waits
 * behind the background's window), the background's on the others. */
static int64_t source_postcopy_send(struct migration *m, enum proto_type type, const void *body,
                                    uint16_t body_len, const void *data, uint16_t data_len,
                                    uint64_t now)
{
	if (m->hello.streams < 2)
		return session_channel_send(m, type, body, body_len, data, data_len, now);
	if (m->source.page_demanded)
		return session_channel_send_on(m, 0, type, body, body_len, data, data_len, now);
	return session_channel_send_from(m, 1, type, body, body_len, data, data_len, now);
}

/* Sends what is left of one absent page (all of it, or its next fragments at a small MTU), as
 * data or as a one-page zero run. Returns 0 once the page is wholly handed, or -EAGAIN. */
static int source_send_absent_page(struct migration *m, uint64_t now)
{
	struct machine *vm = &m->vm->machine;
	uint64_t page = m->source.page_sending;

	uint32_t pages = m->source.pages_sending;

	if (m->source.page_fragment == 0 && machine_page_is_zero(vm, page)) {
		struct proto_zero_run run = {.first_page = rte_cpu_to_be_64(page),
		                             .count = rte_cpu_to_be_32(pages),
		                             .round = rte_cpu_to_be_32(m->source.round)};
		int64_t ret =
		        source_postcopy_send(m, PROTO_ZERO_RUN, &run, sizeof(run), NULL, 0, now);
		if (ret < 0)
			return (int)ret;
		m->stats.pages_zero += pages;
	} else {
		uint32_t bytes = pages * PROTO_PAGE_SIZE;
		while (m->source.page_fragment < bytes) {
			uint16_t len = m->source.max_data;
			if (len > bytes - m->source.page_fragment)
				len = (uint16_t)(bytes - m->source.page_fragment);
			struct proto_pages hdr = {
			        .page = rte_cpu_to_be_64(page),
			        .round = rte_cpu_to_be_32(m->source.round),
			        .offset = rte_cpu_to_be_16((uint16_t)m->source.page_fragment),
			        .data_len = rte_cpu_to_be_16(len),
			};
			int64_t ret = source_postcopy_send(
			        m, PROTO_PAGES, &hdr, sizeof(hdr),
			        machine_page(vm, page) + m->source.page_fragment, len, now);
			if (ret < 0)
				return (int)ret;
			m->source.page_fragment += len;
		}
		m->stats.pages_normal += pages;
	}
	if (m->source.page_demanded)
		m->stats.postcopy.pages_demanded += pages;
	else
		m->stats.postcopy.pages_background += pages;
	m->source.page_sending = UINT64_MAX;
	return 0;
}

/* Post-copy's zero pages go in runs this long at most (one message each). */
#define POSTCOPY_ZERO_RUN_MAX 65536u

/* Takes an absent page out of the bitmap, to be sent. */
static void source_take_absent(struct migration_source *src, uint64_t page)
{
	src->absent[page / 64] &= ~(1ull << (page % 64));
	src->absent_left--;
}

/* Joins to the chosen page the absent pages after it that one message carries with it: the
 * zero ones in a run, or as many whole pages of data as fit (a page message's span). */
static void source_join_absent(struct migration *m)
{
	struct migration_source *src = &m->source;
	const struct machine *vm = &m->vm->machine;
	uint64_t page = src->page_sending;
	bool zero = machine_page_is_zero(vm, page);
	uint32_t max = zero ? POSTCOPY_ZERO_RUN_MAX
	               : src->max_data >= 2 * PROTO_PAGE_SIZE
	                       ? (uint32_t)(src->max_data / PROTO_PAGE_SIZE)
	                       : 1;

	src->pages_sending = 1;
	while (src->pages_sending < max && page + src->pages_sending < vm->nb_pages &&
	       bit_test(src->absent, page + src->pages_sending) &&
	       machine_page_is_zero(vm, page + src->pages_sending) == zero) {
		source_take_absent(src, page + src->pages_sending);
		src->pages_sending++;
	}
}

/* The next absent page to send: the oldest demanded one still absent, else the background
 * stream's, which goes on from the latest demand (the VM's accesses cluster). */
static bool source_next_absent(struct migration *m)
{
	struct migration_source *src = &m->source;
	uint64_t nb_pages = m->vm->machine.nb_pages;

	while (src->demand_count > 0) {
		uint64_t page = src->demand[src->demand_head];
		src->demand_head = (src->demand_head + 1) % SOURCE_DEMAND_QUEUE;
		src->demand_count--;
		if (bit_test(src->absent, page)) {
			src->page_demanded = true;
			src->page_sending = page;
			break;
		}
	}
	if (src->page_sending == UINT64_MAX) {
		if (src->absent_left == 0)
			return false;
		uint64_t page = next_page(src->absent, src->absent_cursor, nb_pages);
		if (page >= nb_pages)
			page = next_page(src->absent, 0, nb_pages);
		src->page_demanded = false;
		src->page_sending = page;
	}
	source_take_absent(src, src->page_sending);
	source_join_absent(m);
	src->absent_cursor = src->page_sending + src->pages_sending;
	src->page_fragment = 0;
	return true;
}

/* Post-copy under way: the VM runs on the destination. Pages go, demanded first; the session
 * ends when the destination says it holds them all (COMPLETE). A silence holds it: the VM can run
 * nowhere else now, so the source keeps its memory and the channel keeps trying. */
static void source_postcopy_poll(struct migration *m, uint64_t now)
{
	if (now - m->last_rx_ns > MIGRATION_PEER_TIMEOUT) {
		if (!m->source.postcopy_silent)
			session_set_reason(m,
			                   "post-copy holds: the destination has been silent for "
			                   "%.1f s; the VM runs only there, %lu pages still here",
			                   (double)(now - m->last_rx_ns) / 1e9,
			                   (unsigned long)m->source.absent_left);
		m->source.postcopy_silent = true;
		/* A destination that restarted says so (NO_SESSION): then the VM is lost. */
		if (now - m->source.query_ns >= MIGRATION_QUERY_NS)
			source_query(m, now);
	} else if (m->source.postcopy_silent) {
		m->source.postcopy_silent = false;
		m->reason[0] = '\0';
	}
	for (unsigned int budget = SEND_BUDGET; budget > 0; budget--) {
		if (m->source.page_sending == UINT64_MAX && !source_next_absent(m))
			break;
		if (source_send_absent_page(m, now) < 0)
			break;
	}
	m->stats.bytes_remaining = m->source.absent_left * PROTO_PAGE_SIZE;
	/* Every page went and was acknowledged, but no COMPLETE came (it travels outside the
	 * channel): ask. */
	if (m->source.absent_left == 0 && m->source.page_sending == UINT64_MAX &&
	    session_channels_idle(m) && now - m->last_handshake_ns >= MIGRATION_RESEND_NS) {
		m->last_handshake_ns = now;
		source_query(m, now);
	}
}

/* The round's end hands over to post-copy: the copies in flight drain, then the switchover. */
static void source_postcopy_next(struct migration *m)
{
	m->source.postcopy_asked = true;
	m->source.draining = true;
}

/* A round was handed to the channel: read the dirty log, then decide between another round,
 * throttling the VM, switching over, or giving up. */
static void source_round_end(struct migration *m, uint64_t now)
{
	struct machine *vm = &m->vm->machine;
	uint64_t dirty = machine_dirty_log_read_and_clear(vm, m->source.to_send);
	uint64_t previous = m->stats.dirty_pages_last;

	/* What round 0's checkpoints read of the log belongs to the next round too. */
	if (m->source.redirty != NULL) {
		dirty = 0;
		for (uint64_t w = 0; w < machine_bitmap_words(vm); w++) {
			m->source.to_send[w] |= m->source.redirty[w];
			m->source.redirty[w] = 0;
			dirty += (uint64_t)__builtin_popcountll(m->source.to_send[w]);
		}
	}
	uint64_t bandwidth = source_bandwidth_bps(m, now);
	uint64_t per_page = PROTO_PAGE_SIZE + (PROTO_PAGE_SIZE / m->source.max_data + 1) *
	                                              (MESSAGE_OVERHEAD + LINK_OVERHEAD);

	source_round_record(m, now, dirty);
	m->stats.dirty_pages_last = dirty;
	m->stats.bytes_remaining = dirty * PROTO_PAGE_SIZE;
	m->stats.dirty_pages_rate = vm->stats.dirty_rate;
	m->stats.bandwidth_bps = bandwidth;
	/* Pure post-copy sent only the zero runs in round 0; asked for by hand, at a round's end. */
	if (m->source.params.mode == MIGRATION_MODE_POSTCOPY || m->source.postcopy_asked) {
		source_postcopy_next(m);
		return;
	}
	m->stats.expected_downtime_ns =
	        bandwidth == 0 ? UINT64_MAX
	                       : (uint64_t)((double)(dirty * per_page) * 8.0 *
	                                    (double)NS_PER_SECOND / (double)bandwidth);
	/* Under the limit, one more round is still worth it while rounds at least halve the dirty
	 * set and the downtime it would save is over a millisecond: the geometric tail costs a
	 * few short rounds and takes the downtime far below the limit. */
	uint64_t floor = m->source.params.downtime_limit_ns < MIGRATION_DOWNTIME_FLOOR
	                         ? m->source.params.downtime_limit_ns
	                         : MIGRATION_DOWNTIME_FLOOR;
	/* Round 0 sent every page; hybrid measures it against the pages that held data (the ones
	 * a round can dirty again), so a hot VM goes post-copy after one pass. */
	uint64_t first_pass = m->source.params.mode == MIGRATION_MODE_HYBRID ? m->stats.pages_normal
	                                                                     : vm->nb_pages;
	bool halving = m->source.round == 0 ? dirty * 2 <= first_pass : dirty * 2 <= previous;
	/* Hybrid keeps the pause at post-copy's: rounds that stop halving above the floor hand over
	 * to post-copy rather than pause for the rest, however well it fits the limit. */
	if (m->source.params.mode == MIGRATION_MODE_HYBRID && !halving &&
	    m->stats.expected_downtime_ns > floor) {
		MIG_LOG(INFO, "%u: %s: %lu pages dirty (%.1f ms to send), post-copy", m->id,
		        m->vm_name, (unsigned long)dirty,
		        (double)m->stats.expected_downtime_ns / 1e6);
		source_postcopy_next(m);
		return;
	}
	if (m->stats.expected_downtime_ns <= floor ||
	    (m->stats.expected_downtime_ns <= m->source.params.downtime_limit_ns && !halving)) {
		/* The VM runs on while the copies in flight are acknowledged: the pause then
		 * covers only the last pages, not the window's round trip. */
		m->source.draining = true;
		return;
	}
	if (m->stats.expected_downtime_ns <= m->source.params.downtime_limit_ns) {
		m->source.not_shrinking = 0;
		m->source.round++;
		source_round_begin(m);
		return;
	}
	/* No migration runs forever: without max-rounds (and auto-converge off), the engine's
	 * limit ends it, and the round numbers on the wire stay under what the destination takes. */
	uint32_t max_rounds = m->source.params.max_rounds != 0 &&
	                                      m->source.params.max_rounds < MIGRATION_MAX_ROUNDS - 1
	                              ? m->source.params.max_rounds
	                              : MIGRATION_MAX_ROUNDS - 1;
	if (m->source.round + 1 >= max_rounds && m->source.params.mode == MIGRATION_MODE_HYBRID) {
		source_postcopy_next(m);
		return;
	}
	if (m->source.round + 1 >= max_rounds) {
		source_fail(m,
		            "did not converge in %u rounds: %lu pages dirty, %.1f ms expected "
		            "downtime over the %.1f ms limit",
		            max_rounds, (unsigned long)dirty,
		            (double)m->stats.expected_downtime_ns / 1e6,
		            (double)m->source.params.downtime_limit_ns / 1e6);
		return;
	}
	/* Auto-converge, as QEMU's: two rounds in a row that do not shrink the dirty set by a
	 * tenth raise the throttle. */
	if (m->source.round > 0 && dirty * 10 >= previous * 9) {
		/* Hybrid: rounds that stopped shrinking hand over to post-copy, never a throttle. */
		if (m->source.params.mode == MIGRATION_MODE_HYBRID) {
			if (++m->source.not_shrinking >= 2) {
				MIG_LOG(INFO,
				        "%u: %s: rounds do not shrink (%lu pages dirty), post-copy",
				        m->id, m->vm_name, (unsigned long)dirty);
				source_postcopy_next(m);
				return;
			}
		} else if (++m->source.not_shrinking >= 2 && m->source.params.auto_converge) {
			m->source.not_shrinking = 0;
			if (vm->throttle_percent >= MIGRATION_THROTTLE_MAX) {
				source_fail(m,
				            "does not converge even at %u%% throttle: %lu pages "
				            "dirty, %.1f ms expected downtime over the %.1f ms "
				            "limit",
				            vm->throttle_percent, (unsigned long)dirty,
				            (double)m->stats.expected_downtime_ns / 1e6,
				            (double)m->source.params.downtime_limit_ns / 1e6);
				return;
			}
			uint32_t throttle =
			        vm->throttle_percent == 0
			                ? MIGRATION_THROTTLE_FIRST
			                : vm->throttle_percent + MIGRATION_THROTTLE_STEP;
			if (throttle > MIGRATION_THROTTLE_MAX)
				throttle = MIGRATION_THROTTLE_MAX;
			vm->throttle_percent = throttle;
			m->stats.throttle_percent = throttle;
			MIG_LOG(INFO, "%u: %s: rounds do not shrink, throttle %u%%", m->id,
			        m->vm_name, throttle);
		}
	} else {
		m->source.not_shrinking = 0;
	}
	m->source.round++;
	source_round_begin(m);
}

static void source_send_state(struct migration *m, uint64_t now)
{
	uint8_t blob[VM_STATE_MAX];
	size_t len = machine_save_state(&m->vm->machine, blob);

	/* The disk goes with the state: flushed, and its lock offered to this session alone. */
	if (m->vm->disk.fd >= 0 && m->source.disk_handoff == 0) {
		int ret = vm_disk_offer(m->vm, &m->source.disk_handoff);
		if (ret < 0) {
			source_fail(m, "the disk's lock cannot be offered: %s", strerror(-ret));
			return;
		}
	}
	/* The paused round (the last pages, or post-copy's maps) is over: the state goes now. */
	if (!m->source.state_sent)
		source_round_record(m, now, 0);
	/* What the destination's CONFIRM must show it holds (its COMPLETE, in post-copy: the
	 * memory as it is now, paused, is what the VM resumes with there). */
	m->confirm_hash = m->source.params.verify ? machine_memory_hash(&m->vm->machine) : 0;
	proto_sha256(blob, len, m->state_hash);
	struct proto_state state = {
	        .memory_hash = rte_cpu_to_be_64(m->confirm_hash),
	        .final_round = rte_cpu_to_be_32(m->source.round),
	        .verify = m->source.params.verify,
	        .running = m->source.was_running,
	        .postcopy = m->source.postcopy,
	        .frames = rte_cpu_to_be_32(forward_source_numbered(m)),
	        .disk_handoff = rte_cpu_to_be_64(m->source.disk_handoff),
	};

	if (session_channel_send(m, PROTO_STATE, &state, sizeof(state), blob, (uint16_t)len, now) >=
	    0) {
		if (!m->source.state_sent)
			m->source.state_sent_ns = now;
		m->source.state_sent = true;
		m->last_handshake_ns = now;
	}
}

/* The question after a silence: did the VM resume there? Sealed, and only the destination's
 * sealed answer settles it. */
static void source_query(struct migration *m, uint64_t now)
{
	m->source.query_ns = now;
	if (session_send_control(m, PROTO_QUERY, NULL, 0) >= 0 && m->source.first_query_seq == 0)
		m->source.first_query_seq = m->tx_control_seq;
}

/* Whether pre-copy may send in this poll: always on a worker the VMs leave idle; within its
 * share while they send. */
static bool source_may_send(struct migration *m, uint64_t now)
{
	struct migration_source *src = &m->source;
	uint64_t frames = vswitch_vm_frames(m->engine->vswitches);
	bool contended = frames != src->vm_frames_seen;

	src->vm_frames_seen = frames;
	if (now - src->share_start_ns >= SHARE_WINDOW_NS) {
		src->share_start_ns = now;
		src->share_busy_ns = 0;
	}
	if (!contended || m->status != MIGRATION_ACTIVE)
		return true;
	if (src->share_busy_ns * 100 < (now - src->share_start_ns) * SHARE_PERCENT)
		return true;
	m->stats.yielded_polls++;
	return false;
}

void source_poll(struct migration *m, uint64_t now)
{
	if (m->status == MIGRATION_UNKNOWN_OUTCOME) {
		if (now - m->source.query_ns >= MIGRATION_QUERY_NS)
			source_query(m, now);
		return;
	}
	if (m->status == MIGRATION_SETUP) {
		if (now - m->stats.start_ns > MIGRATION_SETUP_TIMEOUT) {
			if (!m->preflight.checks[MIGRATION_CHECK_REACHABLE].done)
				preflight_record(m, MIGRATION_CHECK_REACHABLE, false, "an answer",
				                 "no answer in %.0f s",
				                 (double)MIGRATION_SETUP_TIMEOUT / 1e9);
			source_fail(m, "the destination did not answer the handshake in %.0f s",
			            (double)MIGRATION_SETUP_TIMEOUT / 1e9);
			return;
		}
		if (now - m->last_handshake_ns >= MIGRATION_RESEND_NS) {
			m->last_handshake_ns = now;
			if (m->sealer_ready) {
				struct proto_auth auth = {.hello = m->hello, .terms = m->terms};
				memcpy(auth.proof, m->source_proof, PROTO_MAC_LEN);
				session_send(m, PROTO_AUTH, &auth, sizeof(auth));
				m->preflight.auth_sent_ns = now;
			} else {
				session_send(m, PROTO_HELLO, &m->hello, sizeof(m->hello));
				m->preflight.hello_sent_ns = now;
			}
		}
		return;
	}
	session_channels_poll(m, now);
	if (m->status == MIGRATION_POSTCOPY) {
		source_postcopy_poll(m, now);
		return;
	}
	if (!session_channels_idle(m) && now - m->last_rx_ns > MIGRATION_PEER_TIMEOUT) {
		source_fail(m, "the destination stopped answering (%.1f s without an ack)",
		            (double)(now - m->last_rx_ns) / 1e9);
		return;
	}
	if (m->status == MIGRATION_PREFLIGHT) {
		preflight_poll(m, now);
		return;
	}
	if (m->source.draining) {
		if (session_channels_idle(m)) {
			m->source.draining = false;
			if (m->source.postcopy_asked)
				source_postcopy_switchover(m, now);
			else
				source_switchover(m, now);
		}
		return;
	}
	if (m->source.state_sent) {
		if (!session_channels_idle(m))
			return;
		if (now - m->last_rx_ns > MIGRATION_PEER_TIMEOUT) {
			source_fail(m, "no confirmation from the destination in %.1f s",
			            (double)(now - m->last_rx_ns) / 1e9);
			return;
		}
		/* The destination holds the state but its CONFIRM is late: ask again. */
		if (now - m->last_handshake_ns >= MIGRATION_RESEND_NS) {
			m->last_handshake_ns = now;
			source_query(m, now);
		}
		return;
	}
	if (!source_may_send(m, now))
		return;
	bool handed =
	        m->source.postcopy ? source_send_absent_maps(m, now) : source_send_round(m, now);
	m->source.share_busy_ns += session_now_ns(m->engine) - now;
	if (!handed)
		return;
	if (m->status == MIGRATION_ACTIVE) {
		source_round_end(m, now);
		return;
	}
	/* The last round is out: the vCPU state goes once every page copy is acknowledged. */
	if (session_channels_idle(m))
		source_send_state(m, now);
}

/* Whether the destination's terms keep the VM's policy and use a cipher the HELLO offered. */
static bool source_terms_acceptable(const struct migration *m, const struct proto_terms *terms)
{
	enum proto_encryption policy = (enum proto_encryption)m->hello.encryption;

	if (terms->cipher >= PROTO_CIPHER_MAX || !(m->hello.ciphers & (1u << terms->cipher)))
		return false;
	if (policy == PROTO_ENCRYPTION_REQUIRED && !terms->encrypt)
		return false;
	return !(policy == PROTO_ENCRYPTION_DISABLED && terms->encrypt);
}

static void source_on_challenge(struct migration *m, const struct proto_message *msg)
{
	struct proto_challenge challenge;
	struct proto_transcript t;
	struct proto_keys keys;

	if (m->status != MIGRATION_SETUP) {
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	memcpy(&challenge, msg->body, sizeof(challenge));
	if (m->sealer_ready) /* the answer to a resent HELLO: AUTH goes again on its timer */
		return;
	/* Bound to both addresses and ports as this side sees them, the VM's name and MAC and the
	 * terms: a relay to another host cannot produce the proof. */
	session_transcript(&t, &m->hello, &challenge.terms, m->vmk->netif.ip, m->local_port,
	                   m->peer_ip, m->peer_port, m->session);
	if (proto_keys_derive(m->source.params.key, m->source.params.key_len, &t, &keys) < 0) {
		source_fail(m, "cannot derive the session's keys");
		return;
	}
	if (!proto_proof_equal(keys.destination_proof, challenge.proof)) {
		proto_keys_forget(&keys);
		session_count_drop(m->engine, MIGRATION_DROP_AUTH);
		source_fail(m, "the destination could not prove the key (a different key file?)");
		return;
	}
	if (!source_terms_acceptable(m, &challenge.terms)) {
		proto_keys_forget(&keys);
		source_fail(m,
		            "the destination's terms (%s, %s) break the VM's encryption policy %s",
		            proto_cipher_name((enum proto_cipher)challenge.terms.cipher),
		            challenge.terms.encrypt ? "encrypted" : "not encrypted",
		            proto_encryption_name((enum proto_encryption)m->hello.encryption));
		return;
	}
	m->terms = challenge.terms;
	memcpy(m->source_proof, keys.source_proof, PROTO_MAC_LEN);
	int ret = session_seal_begin(m, &keys);
	proto_keys_forget(&keys);
	if (ret < 0) {
		source_fail(m, "cannot key the session: %s", strerror(-ret));
		return;
	}
	uint64_t now_rx = session_now_ns(m->engine);
	m->preflight.rtt_ns = now_rx - m->preflight.hello_sent_ns;
	preflight_record(m, MIGRATION_CHECK_REACHABLE, true, "an answer", "answered in %.3f ms",
	                 (double)m->preflight.rtt_ns / 1e6);
	struct channel_config config = {
	        .rate_bps = m->source.params.max_bandwidth_bps,
	        .session = m->session,
	        .overhead_bytes = LINK_OVERHEAD,
	        .seal = session_seal,
	        .seal_ctx = m,
	};
	uint64_t now = session_now_ns(m->engine);
	if (session_channels_init(m, &config, true, now) < 0) {
		source_fail(m, "out of memory for the channel");
		return;
	}
	m->last_handshake_ns = 0; /* AUTH at once */
	source_poll(m, now);
}

/* Round 0 copies everything: the log so far is moot, and starts afresh now. */
void source_precopy_begin(struct migration *m, uint64_t now)
{
	struct machine *vm = &m->vm->machine;

	m->source.to_send = malloc(machine_bitmap_words(vm) * sizeof(uint64_t));
	if (m->source.to_send == NULL) {
		source_fail(m, "out of memory for the dirty bitmap");
		return;
	}
	machine_dirty_log_read_and_clear(vm, m->source.to_send);
	memset(m->source.to_send, 0xff, machine_bitmap_words(vm) * sizeof(uint64_t));
	if (vm->nb_pages % 64 != 0)
		m->source.to_send[vm->nb_pages / 64] = (1ull << (vm->nb_pages % 64)) - 1;
	/* Pure post-copy: round 0 sends only the zero runs; every page with data is absent. */
	if (m->source.params.mode == MIGRATION_MODE_POSTCOPY) {
		m->source.absent = calloc(machine_bitmap_words(vm), sizeof(uint64_t));
		if (m->source.absent == NULL) {
			source_fail(m, "out of memory for the absent pages");
			return;
		}
		for (uint64_t page = 0; page < vm->nb_pages; page++) {
			if (machine_page_touched(vm, page)) {
				m->source.absent[page / 64] |= 1ull << (page % 64);
				m->source.to_send[page / 64] &= ~(1ull << (page % 64));
			}
		}
	}
	m->status = MIGRATION_ACTIVE;
	m->source.active_start_ns = now;
	struct channel_stats sum;
	session_channels_stats(m, &sum);
	m->source.active_start_bytes = sum.wire_bytes_sent;
	m->source.round = 0;
	source_round_begin(m);
}

/* Acknowledgements of the channel's messages, once there is a channel past the handshake. */
static void source_on_ack(struct migration *m, const struct proto_message *msg, uint64_t now)
{
	struct proto_ack ack;

	memcpy(&ack, msg->body, sizeof(ack));
	struct channel *ch = session_channel_of(m, rte_be_to_cpu_64(ack.cumulative));
	if (ch != NULL && m->status != MIGRATION_SETUP)
		channel_on_ack(ch, &ack, now);
	else
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
}

static void source_on_confirm(struct migration *m, const struct proto_message *msg, uint64_t now)
{
	struct proto_confirm confirm;

	if ((m->status != MIGRATION_SWITCHOVER && m->status != MIGRATION_UNKNOWN_OUTCOME) ||
	    !m->source.state_sent) {
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	memcpy(&confirm, msg->body, sizeof(confirm));
	/* The destination runs what it confirms: if that is not what went out, the VM may not
	 * resume here either, and only an operator can say what to do. In post-copy it holds all
	 * but the absent pages, and its memory's hash comes with the last of them (COMPLETE). */
	uint64_t expected =
	        m->vm->machine.nb_pages - (m->source.postcopy ? m->stats.postcopy.pages_absent : 0);
	uint64_t expected_hash = m->source.postcopy ? 0 : m->confirm_hash;
	if (rte_be_to_cpu_64(confirm.pages) != expected ||
	    CRYPTO_memcmp(confirm.state_hash, m->state_hash, PROTO_HASH_LEN) != 0 ||
	    rte_be_to_cpu_64(confirm.memory_hash) != expected_hash) {
		session_count_drop(m->engine, MIGRATION_DROP_MISMATCH);
		if (m->status != MIGRATION_UNKNOWN_OUTCOME) {
			session_set_reason(m,
			                   "the destination confirmed a state other than the one "
			                   "sent");
			source_unknown(m);
		}
		return;
	}
	m->stats.downtime_ns = now - m->source.pause_ns;
	m->stats.confirmed_at_ns = now;
	m->stats.bandwidth_bps = source_bandwidth_bps(m, now);
	forward_source_commit(m, now);
	if (m->source.postcopy) {
		/* The VM runs there now; what it lacks follows. A stalled vCPU waits on the
		 * demanded pages' stream alone (when they have one of their own). */
		m->status = MIGRATION_POSTCOPY;
		m->reason[0] = '\0';
		session_channels_urgent(m, 0, m->hello.streams > 1 ? 1 : 0);
		MIG_LOG(INFO, "%u: %s resumed on the destination after %.3f ms; post-copy", m->id,
		        m->vm_name, (double)m->stats.downtime_ns / 1e6);
		return;
	}
	m->stats.bytes_remaining = 0;
	source_end(m, MIGRATION_COMPLETED);
}

/* Post-copy: the VM waits on pages; they go ahead of the background stream. */
static void source_on_demand(struct migration *m, const struct proto_message *msg)
{
	struct proto_demand demand;

	memcpy(&demand, msg->body, sizeof(demand));
	uint64_t page = rte_be_to_cpu_64(demand.page), count = rte_be_to_cpu_32(demand.count);
	uint64_t nb_pages = m->vm != NULL ? m->vm->machine.nb_pages : 0;
	/* Only while post-copy runs: before, nothing is absent; after (or with the outcome
	 * unknown) the bitmap is gone. */
	if (m->status != MIGRATION_POSTCOPY) {
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	if (page >= nb_pages || count > nb_pages - page) {
		session_count_drop(m->engine, MIGRATION_DROP_BAD_PAGE);
		return;
	}
	struct migration_source *src = &m->source;
	for (uint64_t p = page; p < page + count; p++) {
		if (!bit_test(src->absent, p))
			continue; /* sent already: it is on its way */
		if (src->demand_count == SOURCE_DEMAND_QUEUE) {
			/* The oldest demand gives way: the VM waits on the newest. */
			src->demand_head = (src->demand_head + 1) % SOURCE_DEMAND_QUEUE;
			src->demand_count--;
		}
		src->demand[(src->demand_head + src->demand_count) % SOURCE_DEMAND_QUEUE] = p;
		src->demand_count++;
	}
}

/* Post-copy is over: the destination holds every page. */
static void source_on_complete(struct migration *m, const struct proto_message *msg, uint64_t now)
{
	struct proto_complete complete;

	memcpy(&complete, msg->body, sizeof(complete));
	if (m->status != MIGRATION_POSTCOPY || m->source.absent_left != 0 ||
	    rte_be_to_cpu_64(complete.pages) != m->vm->machine.nb_pages) {
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	m->stats.bytes_remaining = 0;
	m->stats.bandwidth_bps = source_bandwidth_bps(m, now);
	if (m->source.params.verify && rte_be_to_cpu_64(complete.memory_hash) != m->confirm_hash) {
		/* Too late to keep the VM here (it runs there): say so, loudly. */
		m->source.verify_failed = true;
		session_set_reason(m,
		                   "post-copy completed, but the memory the destination holds "
		                   "hashes %016lx, not the %016lx it paused with here",
		                   (unsigned long)rte_be_to_cpu_64(complete.memory_hash),
		                   (unsigned long)m->confirm_hash);
		MIG_LOG(ERR, "%u: %s: %s", m->id, m->vm_name, m->reason);
	}
	source_end(m, MIGRATION_COMPLETED);
}

/* A host that holds no such session answered a QUERY. Its uptime says whether it restarted
 * after this session began: then it holds nothing of the VM, whatever it did with it before. */
static void source_on_no_session(struct migration *m, const struct proto_message *msg,
                                 const uint8_t *payload, uint64_t now)
{
	struct proto_no_session answer;
	uint8_t mac[PROTO_MAC_LEN];

	memcpy(&answer, msg->body, sizeof(answer));
	uint64_t query_seq = rte_be_to_cpu_64(answer.query_seq);
	if (proto_no_session_mac(m->source.params.key, m->source.params.key_len, payload, mac) <
	            0 ||
	    !proto_proof_equal(mac, answer.mac)) {
		session_count_drop(m->engine, MIGRATION_DROP_AUTH);
		return;
	}
	/* Only an answer to a question this session asked. */
	if (m->source.first_query_seq == 0 || query_seq < m->source.first_query_seq ||
	    query_seq > m->tx_control_seq ||
	    (m->status != MIGRATION_POSTCOPY && m->status != MIGRATION_UNKNOWN_OUTCOME)) {
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	m->last_rx_ns = now;
	uint64_t uptime_ns = rte_be_to_cpu_64(answer.uptime_ms) * 1000000;
	bool restarted = uptime_ns < now - m->stats.start_ns;
	if (restarted && m->status == MIGRATION_POSTCOPY) {
		session_set_reason(m,
		                   "the VM is lost: the destination, which ran it in post-copy, "
		                   "restarted %.1f s ago with %lu of its pages still here",
		                   (double)uptime_ns / 1e9, (unsigned long)m->source.absent_left);
		source_end(m, MIGRATION_LOST);
	} else if (restarted) {
		/* Pre-copy's unknown outcome: whatever the destination did with the state, it holds
		 * nothing now, so the VM runs here again, as it was when it paused. */
		m->source.refused = true;
		session_set_reason(
		        m,
		        "the destination restarted %.1f s ago, after the state went out: "
		        "it holds nothing of the VM, which runs here again",
		        (double)uptime_ns / 1e9);
		source_end(m, MIGRATION_FAILED);
	} else if (m->status == MIGRATION_POSTCOPY && m->source.absent_left == 0 &&
	           m->source.page_sending == UINT64_MAX && session_channels_idle(m)) {
		/* It took every page and forgot the session long after: its COMPLETE was lost. */
		session_set_reason(m, "every page was acknowledged; the destination has since "
		                      "forgotten the session (its COMPLETE was lost)");
		source_end(m, MIGRATION_COMPLETED);
	} else if (!m->source.forgotten) {
		m->source.forgotten = true;
		session_set_reason(m,
		                   "%s; the destination has run for %.0f s but forgot the session: "
		                   "only an operator can say where the VM runs ('migrate resolve')",
		                   m->reason, (double)uptime_ns / 1e9);
	}
}

static void source_on_refuse(struct migration *m, const struct proto_message *msg)
{
	struct proto_refuse refuse;

	memcpy(&refuse, msg->body, sizeof(refuse));
	refuse.text[sizeof(refuse.text) - 1] = '\0';
	m->source.refused = true;
	preflight_record(m, MIGRATION_CHECK_ADMISSION, false, "admitted", "%s", refuse.text);
	source_fail(m, "refused by the destination: %s (%s)",
	            proto_refusal_name((enum proto_refusal)rte_be_to_cpu_32(refuse.reason)),
	            refuse.text);
}

/* Datagrams to a source session's port. */
static void source_rx(void *ctx, uint32_t src_ip, uint16_t src_port, const uint8_t *payload,
                      uint16_t len, uint16_t dst_port)
{
	struct migration *m = ctx;
	struct migration_engine *engine = m->engine;
	struct proto_message msg;
	uint64_t now = session_now_ns(engine);

	(void)dst_port;
	if (session_receive(engine, payload, len, &msg) != PROTO_OK)
		return;
	if (msg.session != m->session || (!session_running(m) && !forward_source_busy(m))) {
		session_count_drop(engine, MIGRATION_DROP_UNKNOWN_SESSION);
		return;
	}
	if (src_ip != m->peer_ip || src_port != m->peer_port) {
		session_count_drop(engine, MIGRATION_DROP_WRONG_PEER);
		return;
	}
	/* After the CHALLENGE, everything from the destination is sealed with its key: nothing
	 * forged is acted on, nor keeps the session alive. A plain REFUSE can only come before the
	 * keys exist, and only stops a migration whose VM still runs here. */
	bool control = msg.type == PROTO_ACCEPT || msg.type == PROTO_ACK ||
	               msg.type == PROTO_CONFIRM || msg.type == PROTO_REFUSE ||
	               msg.type == PROTO_DEMAND || msg.type == PROTO_COMPLETE;
	bool plain_refusal =
	        msg.type == PROTO_REFUSE && msg.seq == 0 && m->status == MIGRATION_SETUP;
	if (msg.type == PROTO_NO_SESSION) {
		source_on_no_session(m, &msg, payload, now);
		return;
	}
	if (control && !plain_refusal && !session_open_control(m, &msg, payload, len))
		return;
	if (msg.type != PROTO_CHALLENGE)
		m->last_rx_ns = now;
	switch (msg.type) {
	case PROTO_CHALLENGE:
		source_on_challenge(m, &msg);
		break;
	case PROTO_ACCEPT:
		preflight_on_accept(m, &msg, now);
		break;
	case PROTO_ACK:
		source_on_ack(m, &msg, now);
		break;
	case PROTO_CONFIRM:
		source_on_confirm(m, &msg, now);
		break;
	case PROTO_DEMAND:
		source_on_demand(m, &msg);
		break;
	case PROTO_COMPLETE:
		source_on_complete(m, &msg, now);
		break;
	case PROTO_REFUSE:
		source_on_refuse(m, &msg);
		break;
	default:
		session_count_drop(engine, MIGRATION_DROP_UNEXPECTED);
		break;
	}
}

int source_begin(struct migration *m, struct vm *vm, struct iface *vmk,
                 const struct migration_params *params)
{
	m->source.params = *params;
	if (m->source.params.downtime_limit_ns == 0)
		m->source.params.downtime_limit_ns = MIGRATION_DEFAULT_LIMIT;
	if (m->source.params.rtt_limit_ns == 0)
		m->source.params.rtt_limit_ns = MIGRATION_DEFAULT_RTT;
	if (m->source.params.min_bandwidth_bps == 0)
		m->source.params.min_bandwidth_bps = MIGRATION_DEFAULT_MIN_BW;
	const struct netif *local = &vmk->netif;
	char subnet[16];
	preflight_record(m, MIGRATION_CHECK_SUBNET,
	                 (local->ip & local->netmask) == (params->dst_ip & local->netmask), "same",
	                 "%s/%u",
	                 netif_format_ipv4(local->ip & local->netmask, subnet, sizeof(subnet)),
	                 local->prefix_len);
	m->vmk = vmk;
	m->vm = vm;
	m->peer_ip = params->dst_ip;
	m->peer_port = params->dst_port;
	m->source.max_data = source_page_bytes_per_message(vmk->netif.mtu);
	m->source.was_running = vm->machine.state == MACHINE_RUNNING;
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", vm->machine.name);
	int ret = -EADDRINUSE;
	for (uint32_t port = EPHEMERAL_FIRST; port <= 65535 && ret == -EADDRINUSE; port++) {
		ret = netif_udp_bind(&vmk->netif, (uint16_t)port, source_rx, m);
		if (ret == 0)
			m->local_port = (uint16_t)port;
	}
	uint8_t random[PROTO_NONCE_LEN] = {0};
	if (ret == 0 && (proto_nonce(m->hello.nonce) < 0 || proto_nonce(random) < 0))
		ret = -EIO;
	memcpy(&m->session, random, sizeof(m->session));
	if (ret < 0) {
		session_set_reason(m, "no UDP port or no randomness on %s", vmk->name);
		m->vm = NULL;
		source_end(m, MIGRATION_FAILED);
		return ret;
	}
	const struct netif *vnic = &vm->vnic.netif;
	struct proto_hello *hello = &m->hello;
	snprintf(hello->vm_name, sizeof(hello->vm_name), "%s", vm->machine.name);
	snprintf(hello->portgroup, sizeof(hello->portgroup), "%s", vm->vnic.vport->portgroup->name);
	memcpy(hello->mac, vnic->mac.addr_bytes, 6);
	hello->prefix_len = vnic->prefix_len;
	hello->ip = vnic->ip;
	hello->memory_pages = rte_cpu_to_be_64(vm->machine.nb_pages);
	hello->announce_rounds = rte_cpu_to_be_16((uint16_t)params->announce.rounds);
	hello->announce_initial_ms =
	        rte_cpu_to_be_16((uint16_t)(params->announce.initial_ns / 1000000));
	hello->announce_step_ms = rte_cpu_to_be_16((uint16_t)(params->announce.step_ns / 1000000));
	hello->announce_garp = params->announce.garp;
	hello->encryption = (uint8_t)params->encryption;
	/* The cipher this host seals fastest with, unless the operator named one. */
	hello->cipher = (uint8_t)(params->cipher != 0 ? params->cipher : m->engine->cipher);
	hello->ciphers = params->cipher != 0 ? (uint8_t)(1u << params->cipher) : PROTO_CIPHERS_ALL;
	/* Post-copy's demanded pages get a stream of their own unless told otherwise, so they never
	 * wait behind the background stream's window (QEMU's postcopy-preempt channel). */
	unsigned int streams = params->streams != 0                     ? params->streams
	                       : params->mode != MIGRATION_MODE_PRECOPY ? 2
	                                                                : 1;
	hello->streams = (uint8_t)streams;
	if (vm->disk.fd >= 0) {
		memcpy(hello->datastore, vm->disk.datastore,
		       strnlen(vm->disk.datastore, sizeof(hello->datastore)));
		hello->disk_mib = rte_cpu_to_be_32((uint32_t)vm->disk.mb);
	}
	hello->flags =
	        (params->check_only ? PROTO_HELLO_CHECK_ONLY : 0) |
	        (vm->machine.backing == MACHINE_BACKING_HUGETLB ? PROTO_HELLO_HUGEPAGES : 0) |
	        (vm->postcopy_off ? PROTO_HELLO_NO_POSTCOPY : 0) |
	        (vm->backend == VM_BACKEND_KVM ? PROTO_HELLO_KVM : 0);
	m->last_handshake_ns = 0; /* HELLO on the first poll */
	forward_source_begin(m);
	MIG_LOG(INFO, "%u: %s to %u.%u.%u.%u:%u from %s", m->id, m->vm_name,
	        ((uint8_t *)&m->peer_ip)[0], ((uint8_t *)&m->peer_ip)[1],
	        ((uint8_t *)&m->peer_ip)[2], ((uint8_t *)&m->peer_ip)[3], m->peer_port, vmk->name);
	return 0;
}
