/* The source's pre-flight check, as vCenter's vMotion compatibility check runs it: each item
 * with what was measured and what it had to be. */
#include "preflight.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>

#include "migrate/session.h"
#include "migrate/source.h"
#include "vswitch/iface.h"

const char *const migration_check_names[MIGRATION_CHECK_MAX] = {
        [MIGRATION_CHECK_REACHABLE] = "destination answers",
        [MIGRATION_CHECK_SUBNET] = "same IP subnet",
        [MIGRATION_CHECK_RTT] = "round-trip time",
        [MIGRATION_CHECK_BANDWIDTH] = "bandwidth",
        [MIGRATION_CHECK_ADMISSION] = "port group, memory, name, MAC",
        [MIGRATION_CHECK_MTU] = "MTU",
};

void preflight_record(struct migration *m, enum migration_check_item item, bool ok,
                      const char *limit, const char *fmt, ...)
{
	struct migration_check *c = &m->preflight.checks[item];
	va_list ap;

	c->done = true;
	c->ok = ok;
	snprintf(c->limit, sizeof(c->limit), "%s", limit);
	va_start(ap, fmt);
	vsnprintf(c->value, sizeof(c->value), fmt, ap);
	va_end(ap);
}

bool preflight_passed(const struct migration *m)
{
	for (unsigned int i = 0; i < MIGRATION_CHECK_MAX; i++)
		if (m->preflight.checks[i].done && !m->preflight.checks[i].ok)
			return false;
	return true;
}

/* Fails the session on the first pre-flight item that failed; true if one did. */
bool preflight_failed(struct migration *m)
{
	for (unsigned int i = 0; i < MIGRATION_CHECK_MAX; i++) {
		const struct migration_check *c = &m->preflight.checks[i];
		if (c->done && !c->ok) {
			source_fail(m, "pre-flight: %s is %s, not %s", migration_check_names[i],
			            c->value, c->limit);
			return true;
		}
	}
	return false;
}

void preflight_on_accept(struct migration *m, const struct proto_message *msg, uint64_t now)
{
	struct proto_accept accept;

	if (m->status != MIGRATION_SETUP || !m->channel_ready) {
		session_count_drop(m->engine, MIGRATION_DROP_UNEXPECTED);
		return;
	}
	memcpy(&accept, msg->body, sizeof(accept));
	m->source.peer_mtu = rte_be_to_cpu_16(accept.mtu);
	/* A value from the wire sizes every page message: checked before anything uses it. */
	if (m->source.peer_mtu < MIGRATION_MIN_MTU) {
		preflight_record(m, MIGRATION_CHECK_MTU, false, ">= 576", "%u", m->source.peer_mtu);
		source_fail(m,
		            "the destination's vMotion MTU is %u, under the %u a migration needs",
		            m->source.peer_mtu, MIGRATION_MIN_MTU);
		return;
	}
	m->source.peer_free_mb = rte_be_to_cpu_32(accept.free_memory_mb);
	m->stats.setup_ns = now - m->stats.start_ns;
	if (now - m->preflight.auth_sent_ns < m->preflight.rtt_ns)
		m->preflight.rtt_ns = now - m->preflight.auth_sent_ns;
	char limit[32];
	preflight_record(m, MIGRATION_CHECK_ADMISSION, true, "admitted",
	                 "admitted; %u MiB available there for %lu MiB", m->source.peer_free_mb,
	                 (unsigned long)(m->vm->machine.nb_pages * VM_PAGE_SIZE >> 20));
	snprintf(limit, sizeof(limit), "= %u", m->vmk->netif.mtu);
	preflight_record(m, MIGRATION_CHECK_MTU, m->source.peer_mtu == m->vmk->netif.mtu, limit,
	                 "%u", m->source.peer_mtu);
	/* Messages fit the smaller MTU of the two, so a forced migration still gets through. */
	if (m->source.peer_mtu < m->vmk->netif.mtu)
		m->source.max_data = source_page_bytes_per_message(m->source.peer_mtu);
	if (m->source.params.force && !m->source.params.check_only) {
		source_precopy_begin(m, now);
		return;
	}
	/* What fails already needs no measuring. */
	if (!m->source.params.force && preflight_failed(m))
		return;
	m->status = MIGRATION_PREFLIGHT;
	m->preflight.probe_start_ns = now;
	struct channel_stats sum;
	session_channels_stats(m, &sum);
	m->preflight.probe_start_bytes = sum.wire_bytes_sent;
	m->preflight.probe_sent = false;
}

/* The link is measured with filler through the channel, as the pages will go: at its pacer,
 * with its window. Then every item is judged. */
void preflight_poll(struct migration *m, uint64_t now)
{
	/* As large as the largest page message (two whole pages at MTU 9000). */
	static const uint8_t filler[PROTO_PAGES_MAX_SPAN * PROTO_PAGE_SIZE];
	_Static_assert(sizeof(filler) <= UINT16_MAX, "a probe's data fits its length field");
	unsigned int budget = SEND_BUDGET;
	struct channel_stats sum;

	session_channels_stats(m, &sum);
	while (!m->preflight.probe_sent && budget-- > 0) {
		if (sum.wire_bytes_sent - m->preflight.probe_start_bytes >= MIGRATION_PROBE_BYTES ||
		    now - m->preflight.probe_start_ns >= MIGRATION_PROBE_NS) {
			m->preflight.probe_sent = true;
			break;
		}
		if (session_channel_send(m, PROTO_PROBE, NULL, 0, filler, m->source.max_data, now) <
		    0)
			return;
		session_channels_stats(m, &sum);
	}
	if (!m->preflight.probe_sent || !session_channels_idle(m))
		return;
	session_channels_stats(m, &sum);
	uint64_t bytes = sum.wire_bytes_sent - m->preflight.probe_start_bytes;
	uint64_t bps = (uint64_t)((double)bytes * 8.0 * (double)NS_PER_SECOND /
	                          (double)(now - m->preflight.probe_start_ns));
	char limit[32];
	snprintf(limit, sizeof(limit), ">= %.0f Mbit/s",
	         (double)m->source.params.min_bandwidth_bps / 1e6);
	preflight_record(m, MIGRATION_CHECK_BANDWIDTH, bps >= m->source.params.min_bandwidth_bps,
	                 limit, "%.0f Mbit/s (%.1f MB in %.1f ms)", (double)bps / 1e6,
	                 (double)bytes / 1e6, (double)(now - m->preflight.probe_start_ns) / 1e6);
	/* The round trip: the shortest of the handshake's and the filler's acknowledgements, so
	 * one late wake-up of either worker does not fail it. */
	uint64_t rtt = m->preflight.rtt_ns;
	if (sum.min_rtt_ns != 0 && sum.min_rtt_ns < rtt)
		rtt = sum.min_rtt_ns;
	snprintf(limit, sizeof(limit), "< %g ms", (double)m->source.params.rtt_limit_ns / 1e6);
	preflight_record(m, MIGRATION_CHECK_RTT, rtt < m->source.params.rtt_limit_ns, limit,
	                 "%.3f ms", (double)rtt / 1e6);
	if (!m->source.params.force && preflight_failed(m))
		return;
	if (m->source.params.check_only) {
		session_set_reason(m, "pre-flight check %s",
		                   preflight_passed(m) ? "passed" : "failed");
		source_end(m, preflight_passed(m) ? MIGRATION_COMPLETED : MIGRATION_FAILED);
		return;
	}
	source_precopy_begin(m, now);
}
