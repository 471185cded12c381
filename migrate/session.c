/* The sessions of the migration engine: their table, sending, sealing, reasons and drops. */
#include "session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_mbuf.h>

#include "dataplane/loop.h"
#include "dataplane/pktpool.h"
#include "migrate/forward.h"
#include "vswitch/iface.h"

uint64_t session_now_ns(const struct migration_engine *engine)
{
	return loop_now_ns(engine->loop);
}

void session_count_drop(struct migration_engine *engine, enum migration_drop_reason reason)
{
	engine->drops[reason]++;
}

bool session_running(const struct migration *m)
{
	return m->status == MIGRATION_SETUP || m->status == MIGRATION_PREFLIGHT ||
	       m->status == MIGRATION_ACTIVE || m->status == MIGRATION_SWITCHOVER ||
	       m->status == MIGRATION_UNKNOWN_OUTCOME || m->status == MIGRATION_POSTCOPY;
}

void session_set_reason(struct migration *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vset_reason(m, fmt, ap);
	va_end(ap);
}

void session_vset_reason(struct migration *m, const char *fmt, va_list ap)
{
	/* Formatted apart: the old reason may be one of the arguments. */
	char reason[MIGRATION_REASON_MAX];

	vsnprintf(reason, sizeof(reason), fmt, ap);
	memcpy(m->reason, reason, sizeof(reason));
}

/* Every datagram to the engine goes through here first: counted, parsed, and counted again
 * by reason if it does not parse. */
enum proto_error session_receive(struct migration_engine *engine, const uint8_t *payload,
                                 uint16_t len, struct proto_message *msg)
{
	enum proto_error error = proto_parse(payload, len, msg);

	engine->rx_messages++;
	if (error == PROTO_OK)
		engine->rx_by_type[msg->type]++;
	else
		session_count_drop(engine, error == PROTO_ERR_VERSION ? MIGRATION_DROP_VERSION
		                                                      : MIGRATION_DROP_MALFORMED);
	return error;
}

void session_transcript(struct proto_transcript *t, const struct proto_hello *hello,
                        const struct proto_terms *terms, uint32_t source_ip, uint16_t source_port,
                        uint32_t destination_ip, uint16_t destination_port, uint64_t session)
{
	memset(t, 0, sizeof(*t));
	t->hello = *hello;
	t->source_ip = source_ip;
	t->destination_ip = destination_ip;
	t->source_port = rte_cpu_to_be_16(source_port);
	t->destination_port = rte_cpu_to_be_16(destination_port);
	t->session = rte_cpu_to_be_64(session);
	t->terms = *terms;
}

/* The largest message outside the channel: an AUTH, sealed or not. */
#define RAW_MAX (sizeof(struct proto_header) + sizeof(struct proto_auth) + PROTO_TAG_LEN)

/* A message outside the channel (handshake, acks, refusals): header and body in one datagram. */
int session_send_raw(struct iface *vmk, uint32_t ip, uint16_t port, uint16_t local_port,
                     enum proto_type type, uint64_t session, const void *body, uint16_t body_len,
                     uint64_t now)
{
	uint8_t buf[RAW_MAX];

	if (body_len > sizeof(buf) - sizeof(struct proto_header))
		return -EMSGSIZE;
	size_t len = proto_write_header(buf, type, session, 0, body_len);
	if (body_len != 0)
		memcpy(buf + len, body, body_len);
	return netif_udp_send(&vmk->netif, ip, port, local_port, buf, (uint16_t)(len + body_len),
	                      now);
}

int session_send(struct migration *m, enum proto_type type, const void *body, uint16_t body_len)
{
	return session_send_raw(m->vmk, m->peer_ip, m->peer_port, m->local_port, type, m->session,
	                        body, body_len, session_now_ns(m->engine));
}

int session_send_refusal(struct iface *vmk, uint32_t ip, uint16_t port, uint16_t local_port,
                         uint64_t session, enum proto_refusal reason, const char *text,
                         uint64_t now)
{
	struct proto_refuse refuse = {.reason = rte_cpu_to_be_32(reason)};

	snprintf(refuse.text, sizeof(refuse.text), "%.*s", (int)sizeof(refuse.text) - 1, text);
	return session_send_raw(vmk, ip, port, local_port, PROTO_REFUSE, session, &refuse,
	                        sizeof(refuse), now);
}

/* The channel's link: one datagram to the peer. */
int session_link_send(void *ctx, const void *buf, uint16_t len)
{
	struct migration *m = ctx;

	/* Every channel message carries its tag: the AEAD checks the bytes, not a UDP checksum. */
	return netif_udp_send_sealed(&m->vmk->netif, m->peer_ip, m->peer_port, m->local_port, buf,
	                             len, session_now_ns(m->engine));
}

static void *link_frame_get(void *ctx, uint16_t len, uint8_t **msg)
{
	struct migration *m = ctx;

	if (m->frame_pool == NULL)
		return NULL; /* a receiving side's channels lend nothing and send nothing */
	return netif_udp_frame_new(&m->vmk->netif, m->frame_pool, m->peer_ip, m->peer_port,
	                           m->local_port, len, msg);
}

static int link_frame_send(void *ctx, void *frame)
{
	struct migration *m = ctx;

	/* The transmit path frees its reference when the frame has left; the channel's stays. */
	rte_mbuf_refcnt_update(frame, 1);
	return netif_udp_frame_send(&m->vmk->netif, frame, session_now_ns(m->engine));
}

static void link_frame_put(void *ctx, void *frame)
{
	(void)ctx;
	rte_pktmbuf_free(frame);
}

/* Gives back the session's reservation of frames (its channels have put every one). */
static void session_frames_release(struct migration *m)
{
	if (m->frame_pool != NULL)
		pktpool_release(m->engine->pools, m->frame_pool, m->frames_reserved);
	m->frame_pool = NULL;
	m->frames_reserved = 0;
}

int session_channels_init(struct migration *m, const struct channel_config *config, bool sends,
                          uint64_t now)
{
	unsigned int streams = m->hello.streams;
	struct channel_config c = *config;

	if (streams == 0 || streams > PROTO_STREAMS_MAX)
		return -EINVAL;
	/* A sender's channels keep each message in the mbuf that carries it until it is acknowledged,
	 * so they reserve a window's worth per stream from the host's pools, as a port reserves its
	 * rings' worth: what the switch counts on for the VMs' traffic stays theirs. Without the
	 * reservation, the channels keep copies in buffers of their own. */
	m->frames = (struct channel_frames){
	        .get = link_frame_get, .send = link_frame_send, .put = link_frame_put, .ctx = m};
	c.frames = &m->frames;
	if (sends) {
		uint32_t frames = streams * CHANNEL_WINDOW;
		m->frame_pool =
		        pktpool_reserve(m->engine->pools, SOCKET_ID_ANY, frames, m->vmk->netif.mtu);
		if (m->frame_pool != NULL)
			m->frames_reserved = frames;
		else
			c.frames = NULL;
	}
	/* The streams share the link's rate: post-copy's demand stream idles most of the time. */
	channel_pacer_init(&m->pacer, c.rate_bps, c.burst_bytes, now);
	for (unsigned int s = 0; s < streams; s++) {
		struct channel_config stream = c;
		stream.stream = s;
		stream.pacer = &m->pacer;
		if (channel_init(&m->channels[s], &stream, session_link_send, m, now) < 0) {
			while (s-- > 0)
				channel_fini(&m->channels[s]);
			session_frames_release(m);
			return -ENOMEM;
		}
	}
	m->next_stream = 0;
	m->channel_ready = true;
	return 0;
}

int64_t session_channel_send_from(struct migration *m, unsigned int first, enum proto_type type,
                                  const void *body, uint16_t body_len, const void *data,
                                  uint16_t data_len, uint64_t now)
{
	unsigned int streams = m->hello.streams;
	int64_t ret = -EAGAIN;

	if (first >= streams)
		first = 0;
	for (unsigned int tried = first; tried < streams && ret == -EAGAIN; tried++) {
		if (m->next_stream < first)
			m->next_stream = first;
		struct channel *ch = &m->channels[m->next_stream];
		m->next_stream = m->next_stream + 1 == streams ? first : m->next_stream + 1;
		ret = channel_send(ch, type, body, body_len, data, data_len, now);
	}
	return ret;
}

int64_t session_channel_send(struct migration *m, enum proto_type type, const void *body,
                             uint16_t body_len, const void *data, uint16_t data_len, uint64_t now)
{
	return session_channel_send_from(m, 0, type, body, body_len, data, data_len, now);
}

int64_t session_channel_send_on(struct migration *m, unsigned int stream, enum proto_type type,
                                const void *body, uint16_t body_len, const void *data,
                                uint16_t data_len, uint64_t now)
{
	if (stream >= m->hello.streams)
		stream = 0;
	return channel_send(&m->channels[stream], type, body, body_len, data, data_len, now);
}

struct channel *session_channel_of(struct migration *m, uint64_t seq)
{
	unsigned int stream = proto_stream_of(seq);

	return m->channel_ready && stream < m->hello.streams ? &m->channels[stream] : NULL;
}

void session_channels_poll(struct migration *m, uint64_t now)
{
	for (unsigned int s = 0; s < m->hello.streams; s++)
		channel_poll(&m->channels[s], now);
}

void session_channels_urgent(struct migration *m, unsigned int first, unsigned int last)
{
	for (unsigned int s = 0; m->channel_ready && s < m->hello.streams; s++)
		channel_set_urgent(&m->channels[s], s >= first && s < last);
}

bool session_channels_idle(const struct migration *m)
{
	for (unsigned int s = 0; s < m->hello.streams; s++)
		if (!channel_idle(&m->channels[s]))
			return false;
	return true;
}

void session_channels_stats(const struct migration *m, struct channel_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned int s = 0; s < m->hello.streams; s++) {
		const struct channel_stats *c = &m->channels[s].stats;
		sum->sent += c->sent;
		sum->retransmitted += c->retransmitted;
		sum->fast_retransmitted += c->fast_retransmitted;
		sum->acked += c->acked;
		sum->received += c->received;
		sum->duplicates += c->duplicates;
		sum->out_of_window += c->out_of_window;
		sum->bytes_sent += c->bytes_sent;
		sum->wire_bytes_sent += c->wire_bytes_sent;
		sum->send_errors += c->send_errors;
		sum->no_frame += c->no_frame;
		sum->window_cuts += c->window_cuts;
		if (c->min_rtt_ns != 0 && (sum->min_rtt_ns == 0 || c->min_rtt_ns < sum->min_rtt_ns))
			sum->min_rtt_ns = c->min_rtt_ns;
	}
}

void session_channels_report(const struct migration *m, struct migration_stats *stats)
{
	struct channel_stats sum;

	session_channels_stats(m, &sum);
	stats->pages_retransmitted = sum.retransmitted + sum.fast_retransmitted;
	stats->bytes_transferred = sum.wire_bytes_sent;
	stats->window_cuts = sum.window_cuts;
	for (unsigned int s = 0; s < m->hello.streams; s++)
		stats->stream_messages[s] = m->channels[s].stats.sent;
}

int session_seal_begin(struct migration *m, const struct proto_keys *keys)
{
	bool source = m->role == MIGRATION_SOURCE;
	enum proto_cipher cipher = (enum proto_cipher)m->terms.cipher;
	bool encrypt = m->terms.encrypt != 0;
	int ret = proto_sealer_init(&m->tx_sealer, cipher, encrypt, false,
	                            source ? keys->data_key : keys->reply_key);

	if (ret == 0) {
		ret = proto_sealer_init(&m->rx_sealer, cipher, encrypt, true,
		                        source ? keys->reply_key : keys->data_key);
		if (ret < 0)
			proto_sealer_fini(&m->tx_sealer);
	}
	/* What arrives encrypted is opened into here before it is applied. */
	if (ret == 0 && !source && encrypt) {
		m->destination.plain = malloc(CHANNEL_MSG_MAX);
		if (m->destination.plain == NULL) {
			proto_sealer_fini(&m->tx_sealer);
			proto_sealer_fini(&m->rx_sealer);
			ret = -ENOMEM;
		}
	}
	m->sealer_ready = ret == 0;
	m->tx_control_seq = m->rx_control_seq = PROTO_CONTROL_SEQ_BASE;
	return ret;
}

int session_seal(void *ctx, uint8_t *buf, uint16_t head_len, const void *data, uint16_t data_len)
{
	struct migration *m = ctx;
	uint16_t len = (uint16_t)(head_len + data_len);

	return proto_seal_from(&m->tx_sealer, buf, head_len, data, data_len, buf + len) < 0
	               ? -EIO
	               : data_len + PROTO_TAG_LEN;
}

int session_send_control(struct migration *m, enum proto_type type, const void *body,
                         uint16_t body_len)
{
	uint8_t buf[RAW_MAX];

	if (!m->sealer_ready)
		return session_send(m, type, body, body_len);
	if (body_len > sizeof(buf) - sizeof(struct proto_header) - PROTO_TAG_LEN)
		return -EMSGSIZE;
	/* Numbers never wrap (2^63 of them): no nonce twice. */
	if (m->tx_control_seq == UINT64_MAX)
		return -ERANGE;
	size_t len = proto_write_header(buf, type, m->session, ++m->tx_control_seq, body_len);
	if (body_len != 0)
		memcpy(buf + len, body, body_len);
	len += body_len;
	if (proto_seal(&m->tx_sealer, buf, len, buf + len) < 0)
		return -EIO;
	return netif_udp_send_sealed(&m->vmk->netif, m->peer_ip, m->peer_port, m->local_port, buf,
	                             (uint16_t)(len + PROTO_TAG_LEN), session_now_ns(m->engine));
}

bool session_open_control(struct migration *m, const struct proto_message *msg, const uint8_t *raw,
                          uint16_t raw_len)
{
	/* Control messages carry no data, so nothing is decrypted: the tag is all. */
	struct proto_message opened = *msg;

	if (!m->sealer_ready || msg->seq <= PROTO_CONTROL_SEQ_BASE || msg->data_len != 0 ||
	    !proto_open(&m->rx_sealer, raw, raw_len, &opened, NULL)) {
		session_count_drop(m->engine, MIGRATION_DROP_AUTH);
		return false;
	}
	/* Control messages are few and each supersedes the one before: a number not above the
	 * highest opened is a replay (or a late copy, which changes nothing either). */
	if (msg->seq <= m->rx_control_seq) {
		session_count_drop(m->engine, MIGRATION_DROP_DUPLICATE);
		return false;
	}
	m->rx_control_seq = msg->seq;
	return true;
}

struct migration *session_new(struct migration_engine *engine, enum migration_role role)
{
	unsigned int slot = MIGRATION_MAX, running = 0;

	/* Incoming sessions never take the last slots from outgoing ones, nor the reverse. */
	for (unsigned int i = 0; i < MIGRATION_MAX; i++)
		running += engine->sessions[i] != NULL && engine->sessions[i]->role == role &&
		           session_running(engine->sessions[i]);
	if (running >= MIGRATION_ROLE_MAX)
		return NULL;

	for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
		if (engine->sessions[i] == NULL) {
			slot = i;
			break;
		}
	}
	/* Full: forget the oldest finished session to make room, one that no longer answers
	 * questions about its outcome first. */
	for (int keyed = 0; keyed < 2 && slot == MIGRATION_MAX; keyed++) {
		for (unsigned int i = 0; i < MIGRATION_MAX; i++) {
			struct migration *old = engine->sessions[i];
			if (!session_running(old) && old->sealer_ready == (keyed != 0) &&
			    (slot == MIGRATION_MAX || old->id < engine->sessions[slot]->id))
				slot = i;
		}
	}
	if (slot == MIGRATION_MAX)
		return NULL;
	if (engine->sessions[slot] != NULL) {
		session_release(engine->sessions[slot]);
		free(engine->sessions[slot]);
		engine->sessions[slot] = NULL;
	}
	struct migration *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->engine = engine;
	m->id = ++engine->next_id;
	m->role = role;
	m->status = MIGRATION_SETUP;
	m->stats.start_ns = session_now_ns(engine);
	m->last_rx_ns = m->stats.start_ns;
	engine->sessions[slot] = m;
	return m;
}

void session_release_transfer(struct migration *m)
{
	/* A source's hold outlives its transfer (an unknown outcome keeps the MAC held). */
	if (m->role == MIGRATION_DESTINATION)
		forward_release(m);
	if (m->channel_ready) {
		session_channels_report(m, &m->stats);
		for (unsigned int s = 0; s < m->hello.streams; s++)
			channel_fini(&m->channels[s]);
		session_frames_release(m);
		m->channel_ready = false;
	}
	free(m->source.to_send);
	m->source.to_send = NULL;
	free(m->source.redirty);
	m->source.redirty = NULL;
	free(m->source.absent);
	m->source.absent = NULL;
	free(m->destination.page_round);
	m->destination.page_round = NULL;
	free(m->destination.page_filled);
	m->destination.page_filled = NULL;
	free(m->destination.absent);
	m->destination.absent = NULL;
	free(m->destination.plain);
	m->destination.plain = NULL;
	populate_fini(&m->destination.populate);
}

void session_release(struct migration *m)
{
	forward_release(m);
	session_release_transfer(m);
	if (m->sealer_ready) {
		proto_sealer_fini(&m->tx_sealer);
		proto_sealer_fini(&m->rx_sealer);
		m->sealer_ready = false;
	}
	if (m->role == MIGRATION_SOURCE && m->local_port != 0) {
		netif_udp_unbind(&m->vmk->netif, m->local_port);
		m->local_port = 0;
	}
}
