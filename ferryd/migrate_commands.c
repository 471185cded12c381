/* ferryd's migration commands: migrate listen/unlisten/start/status/cancel/counters. */
#include "migrate_commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "host/host.h"
#include "lookup.h"
#include "vm/vm_kvm.h"

static int load_key(const char *path, uint8_t *key, uint16_t *len, struct reply *reply)
{
	char why[128];
	int ret = host_key_load(path, key, MIGRATION_KEY_MAX, why, sizeof(why));

	if (ret < 0)
		return reply_error(reply, ret, "key file %.200s: %s", path, why);
	*len = (uint16_t)ret;
	return 0;
}

static int cmd_migrate_listen(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct iface *vmk = lookup_vmk(host, cli_arg(args, "vmk"), reply);
	uint64_t port = PROTO_DEFAULT_PORT;
	uint8_t key[MIGRATION_KEY_MAX];
	uint16_t key_len = 0;

	if (vmk == NULL)
		return -ENOENT;
	int encryption = PROTO_ENCRYPTION_OPPORTUNISTIC;
	if (cli_arg_u64(args, "port", 1, 65535, &port, reply) < 0 ||
	    lookup_encryption(cli_arg(args, "encryption"), &encryption, reply) < 0 ||
	    load_key(cli_arg(args, "file"), key, &key_len, reply) < 0)
		return -EINVAL;
	int ret = migration_listen(&host->migrations, vmk, (uint16_t)port, key, key_len,
	                           (enum proto_encryption)encryption);
	memset(key, 0, sizeof(key));
	if (ret == -EADDRINUSE)
		return reply_error(reply, ret, "UDP port %lu of %s is taken", (unsigned long)port,
		                   vmk->name);
	if (ret < 0)
		return reply_error(reply, ret, "cannot listen on %s: %s", vmk->name,
		                   strerror(-ret));
	reply_str(reply, "vmk", "%s", vmk->name);
	reply_u64(reply, "port", port);
	reply_str(reply, "encryption", "%s",
	          proto_encryption_name((enum proto_encryption)encryption));
	return 0;
}

static int cmd_migrate_unlisten(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	struct iface *vmk = lookup_vmk(host, cli_arg(args, "vmk"), reply);

	if (vmk == NULL)
		return -ENOENT;
	if (migration_unlisten(&host->migrations, vmk) < 0)
		return reply_error(reply, -ENOENT, "%s does not listen for migrations", vmk->name);
	return 0;
}

/* "rounds,initial-ms,step-ms", e.g. QEMU's "5,50,100"; rounds 0 sends none. */
static bool parse_schedule(const char *text, struct announce_config *config)
{
	unsigned int rounds, initial, step;
	char extra;

	if (sscanf(text, "%u,%u,%u%c", &rounds, &initial, &step, &extra) != 3 || rounds > 100 ||
	    initial > 60000 || step > 60000)
		return false;
	config->rounds = rounds;
	config->initial_ns = (uint64_t)initial * 1000000;
	config->step_ns = (uint64_t)step * 1000000;
	return true;
}

static int parse_start(struct host *host, const struct cli_args *args,
                       struct migration_params *params, struct iface **vmk, struct reply *reply)
{
	uint64_t port = PROTO_DEFAULT_PORT, rounds = 0, streams = 0,
	         forward_limit = MIGRATION_FORWARD_LIMIT;
	bool forward = true;
	const char *v;

	memset(params, 0, sizeof(*params));
	params->auto_converge = true;
	/* As vMotion: pre-copy while it converges, and a quick resume rather than a throttle. */
	params->mode = MIGRATION_MODE_HYBRID;
	announce_config_default(&params->announce);
	if (cli_arg_ipv4(args, "ip", &params->dst_ip, reply) < 0 ||
	    cli_arg_u64(args, "port", 1, 65535, &port, reply) < 0 ||
	    cli_arg_u64(args, "max-rounds", 1, 1000000, &rounds, reply) < 0 ||
	    cli_arg_u64(args, "streams", 1, PROTO_STREAMS_MAX, &streams, reply) < 0 ||
	    cli_arg_ms(args, "downtime-limit", 1000000, &params->downtime_limit_ns, reply) < 0 ||
	    cli_arg_bool(args, "verify", &params->verify, reply) < 0 ||
	    cli_arg_bool(args, "auto-converge", &params->auto_converge, reply) < 0 ||
	    cli_arg_bool(args, "forward", &forward, reply) < 0 ||
	    cli_arg_u64(args, "forward-limit", 1, MIGRATION_FORWARD_RING, &forward_limit, reply) <
	            0 ||
	    cli_arg_ms(args, "forward-settle", 1000000, &params->forward_settle_ns, reply) < 0 ||
	    cli_arg_ms(args, "rtt-limit", 1, &params->rtt_limit_ns, reply) < 0 ||
	    cli_arg_rate(args, "min-bandwidth", 1, &params->min_bandwidth_bps, reply) < 0)
		return -EINVAL;
	params->dst_port = (uint16_t)port;
	params->no_forward = !forward;
	params->forward_limit = (uint32_t)forward_limit;
	params->max_rounds = (uint32_t)rounds;
	if ((v = cli_arg(args, "mode")) != NULL) {
		int mode = migration_mode_parse(v);
		if (mode < 0)
			return reply_error(reply, -EINVAL,
			                   "mode: '%.32s' (precopy, postcopy or hybrid)", v);
		params->mode = (enum migration_mode)mode;
	}
	params->streams = (unsigned int)streams;
	if ((v = cli_arg(args, "announce")) != NULL && !parse_schedule(v, &params->announce))
		return reply_error(reply, -EINVAL,
		                   "announce: '%.32s' (rounds,initial-ms,step-ms, e.g. 5,50,100)",
		                   v);
	params->announce.garp = cli_arg(args, "garp") != NULL;
	params->force = cli_arg(args, "force") != NULL;
	int cipher = 0;
	if (lookup_cipher(cli_arg(args, "cipher"), &cipher, reply) < 0)
		return -EINVAL;
	params->cipher = (enum proto_cipher)cipher;
	*vmk = cli_arg(args, "vmk") != NULL ? lookup_vmk(host, cli_arg(args, "vmk"), reply)
	                                    : host_vmk_on_subnet(host, params->dst_ip);
	if (*vmk == NULL)
		return reply_failed(reply) ? -ENOENT
		                           : reply_error(reply, -ENETUNREACH,
		                                         "no vmk on the subnet of %.32s (give vmk)",
		                                         cli_arg(args, "ip"));
	v = cli_arg(args, "max-bandwidth");
	if (v == NULL)
		params->max_bandwidth_bps = vswitch_uplink_speed_bps((*vmk)->vport->vswitch);
	else if (strcmp(v, "unlimited") != 0 && cli_arg_rate(args, "max-bandwidth", 1000000,
	                                                     &params->max_bandwidth_bps, reply) < 0)
		return -EINVAL;
	/* The key last: nothing else can fail after it is read. */
	if (load_key(cli_arg(args, "file"), params->key, &params->key_len, reply) < 0)
		return -EINVAL;
	return 0;
}

/* The VM's frames around the switchover: held, forwarded, given to it, and each reason one was
 * lost; and when the destination's first announce frame went, from the resume. */
static void describe_forward(struct reply *reply, const struct migration_stats *s, bool source)
{
	const struct migration_forward_stats *f = &s->forward;

	reply_u64(reply, "frames_held", f->held);
	reply_u64(reply, "frames_forwarded", f->forwarded);
	reply_u64(reply, "frames_delivered", f->delivered);
	uint64_t dropped = 0;
	for (unsigned int i = 0; i < MIGRATION_FORWARD_DROP_MAX; i++)
		dropped += f->dropped[i];
	reply_u64(reply, "frames_dropped", dropped);
	for (unsigned int i = 0; i < MIGRATION_FORWARD_DROP_MAX; i++)
		if (f->dropped[i] != 0)
			reply_u64(reply, migration_forward_drop_names[i], f->dropped[i]);
	if (source && f->hold_ns != 0)
		reply_double(reply, "hold_ms", (double)f->hold_ns / 1e6, 3);
	if (source && f->last_held_ns != 0)
		reply_double(reply, "last_frame_held_ms", (double)f->last_held_ns / 1e6, 3);
	if (!source && f->announced)
		reply_double(reply, "announce_after_resume_us", (double)f->announce_ns / 1e3, 1);
}

static void describe(struct reply *reply, const struct migration_info *m)
{
	const struct migration_stats *s = &m->stats;
	bool source = m->role == MIGRATION_SOURCE;
	char ip[16];

	reply_u64(reply, "id", m->id);
	reply_str(reply, "role", "%s", migration_role_name(m->role));
	reply_str(reply, "vm", "%s", m->vm_name);
	reply_str(reply, "status", "%s", migration_status_name(m->status));
	if (m->reason[0] != '\0')
		reply_str(reply, "reason", "%s", m->reason);
	reply_str(reply, "peer", "%s:%u", netif_format_ipv4(m->peer_ip, ip, sizeof(ip)),
	          m->peer_port);
	reply_str(reply, "session", "%016lx", (unsigned long)m->session);
	reply_str(reply, "encryption", "%s", proto_encryption_name(m->encryption));
	if (m->cipher != 0)
		reply_str(reply, "cipher", "%s (%s)", proto_cipher_name(m->cipher),
		          m->encrypted ? "encrypted" : "authenticated only");
	if (source && !m->check_only)
		reply_bool(reply, "verified", m->verified);
	if (source && !m->check_only)
		reply_str(reply, "mode", "%s", migration_mode_name(m->mode));
	if (m->streams != 0)
		reply_u64(reply, "streams", m->streams);
	if (source && m->streams > 1) {
		/* How the streams shared the pages, as messages each carried. */
		char shares[PROTO_STREAMS_MAX * 21 + 1];
		size_t at = 0;
		for (unsigned int i = 0; i < m->streams && i < PROTO_STREAMS_MAX; i++)
			at += (size_t)snprintf(shares + at, sizeof(shares) - at, "%s%lu",
			                       i ? " " : "",
			                       (unsigned long)m->stats.stream_messages[i]);
		reply_str(reply, "stream_messages", "%s", shares);
	}
	reply_double(reply, "total_time_ms", (double)m->total_ns / 1e6, 3);
	if (!m->running) {
		/* When it ended on the wall clock, to set beside other tools' timestamps (the
		 * destination's is the moment it resumed the VM). */
		struct timespec wall;
		clock_gettime(CLOCK_REALTIME, &wall);
		reply_double(reply, "ended_at",
		             (double)wall.tv_sec + (double)wall.tv_nsec / 1e9 -
		                     (double)m->ended_ago_ns / 1e9,
		             6);
	}
	reply_double(reply, "setup_time_ms", (double)s->setup_ns / 1e6, 3);
	if (source && m->transfer_ns != 0)
		reply_double(reply, "transfer_time_ms", (double)m->transfer_ns / 1e6, 3);
	if (source) {
		if (m->status == MIGRATION_COMPLETED && !m->check_only)
			reply_double(reply, "downtime_ms", (double)s->downtime_ns / 1e6, 3);
		if (s->expected_downtime_ns != 0 && s->expected_downtime_ns != UINT64_MAX)
			reply_double(reply, "expected_downtime_ms",
			             (double)s->expected_downtime_ns / 1e6, 3);
		reply_u64(reply, "rounds", s->rounds);
		reply_u64(reply, "round", m->round);
		if (m->round_percent >= 0)
			reply_double(reply, "round_percent", m->round_percent, 1);
		reply_u64(reply, "throttle_percent", s->throttle_percent);
		reply_u64(reply, "dirty_pages_rate", s->dirty_pages_rate);
		reply_u64(reply, "bytes_remaining", s->bytes_remaining);
		reply_u64(reply, "pages_retransmitted", s->pages_retransmitted);
		reply_u64(reply, "window_cuts", s->window_cuts);
		reply_u64(reply, "yielded_polls", s->yielded_polls);
		reply_u64(reply, "bytes_transferred", s->bytes_transferred);
		reply_double(reply, "mbps", (double)m->throughput_bps / 1e6, 1);
		reply_double(reply, "pages_per_second", (double)m->pages_per_second, 0);
		reply_u64(reply, "max_bandwidth_bps", m->max_bandwidth_bps);
		reply_double(reply, "downtime_limit_ms", (double)m->downtime_limit_ns / 1e6, 3);
	}
	reply_u64(reply, "pages_normal", s->pages_normal);
	reply_u64(reply, "pages_zero", s->pages_zero);
	describe_forward(reply, s, source);
	if (s->postcopy.start_ns != 0) {
		const struct migration_postcopy_stats *pc = &s->postcopy;
		reply_double(reply, "postcopy_start_ms", (double)(pc->start_ns - s->start_ns) / 1e6,
		             3);
		reply_u64(reply, "postcopy_pages_absent", pc->pages_absent);
		reply_u64(reply, "postcopy_pages_demanded", pc->pages_demanded);
		if (source) {
			reply_u64(reply, "postcopy_pages_background", pc->pages_background);
		} else {
			reply_u64(reply, "postcopy_remote_faults", pc->remote_faults);
			reply_double(reply, "postcopy_stall_ms", (double)pc->stall_ns / 1e6, 3);
			reply_double(reply, "postcopy_fault_p50_ms", (double)pc->fault_p50_ns / 1e6,
			             3);
			reply_double(reply, "postcopy_fault_p99_ms", (double)pc->fault_p99_ns / 1e6,
			             3);
			reply_double(reply, "postcopy_fault_max_ms", (double)pc->fault_max_ns / 1e6,
			             3);
			if (pc->last_page_ns != 0)
				reply_double(reply, "postcopy_last_page_ms",
				             (double)(pc->last_page_ns - pc->start_ns) / 1e6, 3);
		}
	}
	if (source) {
		reply_list_begin(reply, "checks");
		for (unsigned int i = 0; i < MIGRATION_CHECK_MAX; i++) {
			const struct migration_check *c = &m->checks[i];
			if (!c->done)
				continue;
			reply_object_begin(reply, NULL);
			reply_str(reply, "item", "%s", migration_check_names[i]);
			reply_str(reply, "result", "%s", c->ok ? "ok" : "FAILED");
			reply_str(reply, "measured", "%s", c->value);
			reply_str(reply, "required", "%s", c->limit);
			reply_object_end(reply);
		}
		reply_list_end(reply);
	}
	if (m->receiving)
		reply_u64(reply, "pages_held", m->pages_held);
	if (!source)
		reply_u64(reply, "regions_populated", m->regions_populated);
}

/* Describes a session by id; -ENOENT (said in the reply) if there is none. */
static int describe_id(struct reply *reply, struct host *host, uint32_t id)
{
	struct migration_info info;

	if (migration_info(&host->migrations, id, loop_now_ns(&host->loop), &info) < 0)
		return reply_error(reply, -ENOENT, "no migration %u (see 'migrate status')", id);
	describe(reply, &info);
	return 0;
}

/* migrate start and migrate check: one session, with or without the migration. */
static int start_session(struct host *host, const struct cli_args *args, bool check_only,
                         struct reply *reply)
{
	struct migration_params params;
	struct iface *vmk = NULL;
	struct vm *vm = lookup_vm(host, cli_arg(args, "vm"), reply);

	if (vm == NULL)
		return -ENOENT;
	if (parse_start(host, args, &params, &vmk, reply) < 0)
		return -EINVAL;
	if (check_only) {
		params.check_only = true;
		params.force = false;
	}
	params.encryption = (enum proto_encryption)vm->encryption;
	/* A VM marked postcopy off is refused post-copy when asked for it, and by default simply
	 * migrates pre-copy. */
	if (vm->postcopy_off && cli_arg(args, "mode") == NULL)
		params.mode = MIGRATION_MODE_PRECOPY;
	int ret = migration_start(&host->migrations, vm, vmk, &params);
	memset(&params, 0, sizeof(params)); /* the key */
	if (ret == -EPERM && vm->backend == VM_BACKEND_KVM &&
	    !vm_kvm_postcopy_capable(&vm->machine))
		return reply_error(reply, ret, "VM '%s' " VM_KVM_PRECOPY_ONLY, vm->machine.name);
	if (ret == -EPERM)
		return reply_error(reply, ret,
		                   "VM '%s' is marked postcopy off: migrate it in mode precopy "
		                   "(or 'vm set %s postcopy on')",
		                   vm->machine.name, vm->machine.name);
	if (ret == -EBUSY)
		return reply_error(reply, ret, "VM '%s' migrates already", vm->machine.name);
	if (ret == -EMSGSIZE)
		return reply_error(reply, ret, "%s's MTU is under %d: too small for migration",
		                   vmk->name, MIGRATION_MIN_MTU);
	if (ret < 0)
		return reply_error(reply, ret, "cannot start: %s", strerror(-ret));
	return describe_id(reply, host, (uint32_t)ret);
}

static int cmd_migrate_start(void *ctx, const struct cli_args *args, struct reply *reply)
{
	return start_session(ctx, args, false, reply);
}

/* What post-copy would risk for a VM, said by `migrate check`. */
static void describe_postcopy_risk(struct reply *reply, const struct vm *vm)
{
	reply_str(reply, "postcopy",
	          vm->postcopy_off ? "off for this VM: its migrations stay pre-copy"
	                           : "allowed (hybrid, the default, may use it): in post-copy the "
	                             "VM runs only at the destination while the source still "
	                             "holds some of its pages; if either host dies then, the VM "
	                             "is lost");
}

static int cmd_migrate_check(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	int ret = start_session(host, args, true, reply);
	struct vm *vm = host_vm_find(host, cli_arg(args, "vm"));

	if (ret == 0 && vm != NULL)
		describe_postcopy_risk(reply, vm);
	return ret;
}

/* A source's rounds and its switchover's moments, in milliseconds from the migration's start:
 * what `ferryctl migrate report <id> --svg` draws. */
static void describe_rounds(struct reply *reply, const struct migration_info *m)
{
	const struct migration_stats *s = &m->stats;
	const double start = (double)s->start_ns;

	if (m->role != MIGRATION_SOURCE)
		return;
	reply_list_begin(reply, "round_log");
	for (unsigned int i = 0; i < s->nb_round_log; i++) {
		const struct migration_round *r = &s->round_log[i];
		double seconds = (double)(r->end_ns - r->start_ns) / 1e9;
		reply_object_begin(reply, NULL);
		reply_u64(reply, "round", r->round);
		reply_double(reply, "start_ms", ((double)r->start_ns - start) / 1e6, 3);
		reply_double(reply, "end_ms", ((double)r->end_ns - start) / 1e6, 3);
		reply_u64(reply, "pages", r->pages);
		reply_u64(reply, "dirty", r->dirty);
		reply_double(reply, "mbps",
		             seconds > 0 ? (double)r->wire_bytes * 8 / seconds / 1e6 : 0, 1);
		reply_u64(reply, "throttle_percent", r->throttle_percent);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	if (s->paused_at_ns != 0)
		reply_double(reply, "paused_at_ms", ((double)s->paused_at_ns - start) / 1e6, 3);
	if (s->confirmed_at_ns != 0)
		reply_double(reply, "confirmed_at_ms", ((double)s->confirmed_at_ns - start) / 1e6,
		             3);
	if (!m->running)
		reply_double(reply, "finished_ms", ((double)s->end_ns - start) / 1e6, 3);
	reply_u64(reply, "announce_rounds", m->announce_rounds);
	reply_u64(reply, "announce_initial_ms", m->announce_initial_ms);
	reply_u64(reply, "announce_step_ms", m->announce_step_ms);
}

static int cmd_migrate_status(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	uint64_t now = loop_now_ns(&host->loop);
	struct migration_info info;

	if (args->nb_rest > 1)
		return reply_error(reply, -EINVAL, "usage: migrate status [<id>]");
	if (args->nb_rest == 1) {
		char *end;
		unsigned long id = strtoul(args->rest[0], &end, 10);
		if (*end != '\0' || id > UINT32_MAX ||
		    migration_info(&host->migrations, (uint32_t)id, now, &info) < 0)
			return reply_error(reply, -ENOENT,
			                   "no migration %.32s (see 'migrate status')",
			                   args->rest[0]);
		describe(reply, &info);
		describe_rounds(reply, &info);
		return 0;
	}
	reply_list_begin(reply, "migrations");
	for (uint32_t id = 1; id <= host->migrations.next_id; id++) {
		if (migration_info(&host->migrations, id, now, &info) < 0)
			continue;
		reply_object_begin(reply, NULL);
		describe(reply, &info);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static int cmd_migrate_cancel(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	uint64_t id;

	if (cli_arg_u64(args, "id", 1, UINT32_MAX, &id, reply) < 0)
		return -EINVAL;
	int ret = migration_cancel(&host->migrations, (uint32_t)id);
	if (ret == -ENOENT)
		return reply_error(reply, ret, "no migration %lu", (unsigned long)id);
	if (ret == -EALREADY)
		return reply_error(reply, ret, "migration %lu is over", (unsigned long)id);
	if (ret == -EINPROGRESS)
		return reply_error(
		        reply, ret,
		        "migration %lu's outcome is unknown: the destination may run the "
		        "VM (see 'migrate resolve')",
		        (unsigned long)id);
	if (ret == -EBUSY)
		return reply_error(reply, ret,
		                   "migration %lu is in post-copy: the VM runs on the destination "
		                   "and needs the pages still here",
		                   (unsigned long)id);
	return describe_id(reply, host, (uint32_t)id);
}

static int cmd_migrate_postcopy(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	uint64_t id;

	if (cli_arg_u64(args, "id", 1, UINT32_MAX, &id, reply) < 0)
		return -EINVAL;
	int ret = migration_postcopy(&host->migrations, (uint32_t)id);
	if (ret == -ENOENT)
		return reply_error(reply, ret, "no migration %lu", (unsigned long)id);
	if (ret == -EPERM)
		return reply_error(reply, ret, "migration %lu's VM is marked postcopy off",
		                   (unsigned long)id);
	if (ret < 0)
		return reply_error(reply, ret,
		                   "migration %lu is not an outgoing one still copying its memory",
		                   (unsigned long)id);
	return describe_id(reply, host, (uint32_t)id);
}

static int cmd_migrate_recover(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	uint32_t peer_ip = 0;
	uint64_t id;

	if (cli_arg_u64(args, "id", 1, UINT32_MAX, &id, reply) < 0 ||
	    cli_arg_ipv4(args, "peer", &peer_ip, reply) < 0)
		return -EINVAL;
	int ret = migration_recover(&host->migrations, (uint32_t)id, peer_ip);
	if (ret == -ENOENT)
		return reply_error(reply, ret, "no migration %lu", (unsigned long)id);
	if (ret < 0)
		return reply_error(
		        reply, ret,
		        "migration %lu is not in post-copy: only post-copy recovers (a "
		        "pre-copy that lost its link fails, and the VM runs on the source)",
		        (unsigned long)id);
	return describe_id(reply, host, (uint32_t)id);
}

static int cmd_migrate_resolve(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const char *how = cli_arg(args, "how");
	uint64_t id;

	if (cli_arg_u64(args, "id", 1, UINT32_MAX, &id, reply) < 0)
		return -EINVAL;
	enum migration_resolution resolution;
	if (strcmp(how, "resume-source") == 0)
		resolution = MIGRATION_RESUME_SOURCE;
	else if (strcmp(how, "abandon") == 0)
		resolution = MIGRATION_ABANDON;
	else if (strcmp(how, "lost") == 0)
		resolution = MIGRATION_LOST_WITH_PEER;
	else
		return reply_error(reply, -EINVAL, "'%.32s': resume-source, abandon or lost", how);
	int ret = migration_resolve(&host->migrations, (uint32_t)id, resolution);
	if (ret == -ENOENT)
		return reply_error(reply, ret, "no migration %lu", (unsigned long)id);
	if (ret == -EBUSY)
		return reply_error(reply, ret,
		                   "migration %lu's peer still answers: post-copy goes on, the VM "
		                   "is not lost",
		                   (unsigned long)id);
	if (ret == -EINVAL && resolution == MIGRATION_LOST_WITH_PEER)
		return reply_error(reply, ret,
		                   "migration %lu is not in post-copy: only there can a VM be lost "
		                   "with its peer",
		                   (unsigned long)id);
	if (ret == -EINVAL)
		return reply_error(
		        reply, ret,
		        "migration %lu's outcome is known: only an unknown-outcome source "
		        "is resolved",
		        (unsigned long)id);
	return describe_id(reply, host, (uint32_t)id);
}

static int cmd_migrate_counters(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct host *host = ctx;
	const struct migration_engine *engine = &host->migrations;

	(void)args;
	reply_u64(reply, "rx_messages", engine->rx_messages);
	reply_u64(reply, "hellos", engine->hellos);
	/* What a dissector of a capture on the vMotion port counts, message type by type. */
	reply_object_begin(reply, "received");
	for (unsigned int t = PROTO_HELLO; t < PROTO_TYPE_MAX; t++)
		reply_u64(reply, proto_type_name((enum proto_type)t), engine->rx_by_type[t]);
	reply_object_end(reply);
	reply_str(reply, "cipher", "%s", proto_cipher_name(engine->cipher));
	reply_object_begin(reply, "drops");
	for (unsigned int r = 0; r < MIGRATION_DROP_MAX; r++)
		reply_u64(reply, migration_drop_names[r], engine->drops[r]);
	reply_object_end(reply);
	reply_list_begin(reply, "listeners");
	for (unsigned int i = 0; i < MIGRATION_LISTENERS; i++) {
		if (engine->listeners[i].vmk == NULL)
			continue;
		reply_object_begin(reply, NULL);
		reply_str(reply, "vmk", "%s", engine->listeners[i].vmk->name);
		reply_u64(reply, "port", engine->listeners[i].port);
		reply_str(reply, "encryption", "%s",
		          proto_encryption_name(engine->listeners[i].encryption));
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static const struct cli_command migrate_commands[] = {
        {"migrate listen <vmk> key <file> [port <port>] [encryption <policy>]",
         "accept migrations on a vmk's UDP port (default 8000) from hosts with the same key (a "
         "file, or inline:<key> as ferry-center provisions it); "
         "encryption: what this host asks of incoming VMs (default opportunistic: as the VM's "
         "policy says; required or disabled refuse VMs whose policy is the opposite)",
         cmd_migrate_listen},
        {"migrate unlisten <vmk>", "stop accepting migrations on a vmk", cmd_migrate_unlisten},
        {"migrate start <vm> to <ip> key <file> [port <port>] [vmk <vmk>] "
         "[max-bandwidth <rate>] [downtime-limit <ms>] [max-rounds <n>] "
         "[announce <schedule>] [garp] [verify <on|off>] [auto-converge <on|off>] "
         "[rtt-limit <ms>] [min-bandwidth <rate>] [cipher <cipher>] [streams <n>] "
         "[mode <mode>] [forward <on|off>] [forward-limit <n>] [forward-settle <ms>] [force]",
         "live-migrate a VM to the host listening at ip, after a pre-flight check unless force "
         "(announce: rounds,initial-ms,step-ms; cipher: auto (the faster here, measured), "
         "chacha20-poly1305 or aes-256-gcm; streams: channels the pages travel in, 1 to 4, "
         "each with its own window; mode: hybrid (the default: pre-copy while rounds shrink, "
         "then post-copy), precopy (rounds, auto-converge) or postcopy (resume there at once, "
         "pull the rest); a VM marked postcopy off migrates precopy; forward: frames for the "
         "VM that reach this host from the pause until the network relearns its MAC go to the "
         "destination (default on, at most forward-limit of them held, default 1024; off drops "
         "them, as QEMU does); forward-settle: the network has relearned the MAC once nothing "
         "came for the VM this long (default 100 ms; the hold lasts at most 2 s or 20 times "
         "this after the resume))",
         cmd_migrate_start},
        {"migrate check <vm> to <ip> key <file> [port <port>] [vmk <vmk>] "
         "[max-bandwidth <rate>] [rtt-limit <ms>] [min-bandwidth <rate>]",
         "vMotion's pre-flight check alone: reachability, subnet, round trip, bandwidth, port "
         "group and memory, MTU",
         cmd_migrate_check},
        {"migrate status [<id>...]", "migrations, as QEMU's query-migrate, or one in full",
         cmd_migrate_status},
        {"migrate postcopy <id>",
         "switch a running pre-copy into post-copy at its next round's end (QEMU's "
         "migrate-start-postcopy)",
         cmd_migrate_postcopy},
        {"migrate cancel <id>", "stop a migration: the VM stays on (or returns to) the source",
         cmd_migrate_cancel},
        {"migrate recover <id> [peer <ip>]",
         "post-copy recovery (QEMU's migrate-recover): after a link failure, resend at once, to "
         "the peer's new address if given (on the source: where the destination now is; on "
         "the destination: where the source now sends from)",
         cmd_migrate_recover},
        {"migrate resolve <id> <how>",
         "settle an unknown outcome: resume-source (the destination does not run the VM) or "
         "abandon (it does); or, in post-copy with the peer silent for good, lost (the VM went "
         "with it)",
         cmd_migrate_resolve},
        {"migrate counters",
         "messages the engine received (HELLOs apart) and dropped, by reason; the cipher this "
         "host seals fastest with; listeners",
         cmd_migrate_counters},
};

int migrate_commands_register(struct cli_table *cli, struct host *host)
{
	return cli_table_register(cli, migrate_commands,
	                          sizeof(migrate_commands) / sizeof(migrate_commands[0]), host);
}
