/* ferry-center's hosts and tasks: the refresh that keeps the inventory current, and the task
 * thread that adds hosts, pushes datastores, moves VMs, evacuates hosts and balances them. */
#include "center.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cli/client.h"
#include "cli/json.h"

#define MAX_HOSTS       64
#define MAX_VMS         1024
#define QUEUE_MAX       256
#define KEY_BYTES       32
#define KEY_TEXT_MAX    256
#define MOVE_TIMEOUT_MS (10 * 60 * 1000)
#define BALANCE_MOVES   16

/* A migration started on a source host, followed to its end. */
struct move {
	char vm[INVENTORY_NAME_MAX];
	char source[INVENTORY_NAME_MAX], destination[INVENTORY_NAME_MAX];
	uint64_t id; /* the source's session id */
	uint64_t memory_mb;
	int vm_index;   /* in the evacuation's list of the host's VMs */
	uint64_t bytes; /* on the wire so far, as the source last said */
	bool done, ok;
	double total_ms, downtime_ms;
	char reason[INVENTORY_TEXT_MAX];
};

/* The task thread's working space, too large for its stack: each function that needs a list
 * has its own, as they call one another. */
struct center_scratch {
	struct inventory_host refresh_hosts[MAX_HOSTS];
	struct inventory_vm reported[MAX_VMS];
	struct inventory_host plan_hosts[MAX_HOSTS];
	struct inventory_vm plan_vms[MAX_VMS];
	struct move moves[MAX_VMS];
};

struct center {
	struct center_config config;
	struct center_scratch *scratch;
	struct store *store;
	pthread_mutex_t lock; /* the store, the queue and the flags */
	pthread_cond_t wake;
	pthread_t thread;
	bool thread_started;
	bool stop;
	bool refresh_now;
	uint64_t queue[QUEUE_MAX];
	unsigned int queue_head, queue_len;
	/* The cluster's vMotion key: made at start (or read from a file), provisioned to each host
	 * as it connects (over its management channel, never to a file there), so any two hosts
	 * can migrate to each other. Text without spaces: it travels in a command line. */
	char key_hex[KEY_TEXT_MAX + 1];
};

/* ---- calls to hosts ---- */

/* One connection to a host's CLI, in JSON. */
struct link {
	struct client *client;
	char host[INVENTORY_NAME_MAX];
};

static int link_call(struct link *link, char **body, char *why, size_t why_size, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

static int link_open(struct center *c, const struct inventory_host *h, struct link *link, char *why,
                     size_t why_size)
{
	char *body = NULL;
	int ret;

	memset(link, 0, sizeof(*link));
	snprintf(link->host, sizeof(link->host), "%s", h->name);
	if (h->address[0] == '/') {
		ret = client_open_unix(&link->client, h->address, why, why_size);
	} else {
		if (c->config.cert == NULL) {
			snprintf(why, why_size,
			         "%s is a TLS address: start ferry-center with --cert, "
			         "--key and --ca",
			         h->address);
			return -EINVAL;
		}
		struct client_tls tls = {.address = h->address,
		                         .cert = c->config.cert,
		                         .key = c->config.key,
		                         .ca = c->config.ca,
		                         .timeout_ms = (unsigned int)c->config.timeout_ms};
		ret = client_open_tls(&link->client, &tls, why, why_size);
	}
	if (ret < 0)
		return ret;
	client_set_timeout(link->client, (unsigned int)c->config.timeout_ms);
	ret = link_call(link, &body, why, why_size, "output json");
	free(body);
	return ret;
}

static void link_close(struct link *link)
{
	client_close(link->client);
	link->client = NULL;
}

/* Runs a command; 0 with the JSON answer in *body (free it), -EREMOTEIO when the host refused
 * (its reason in why), -EPIPE when the connection failed. */
static int link_call(struct link *link, char **body, char *why, size_t why_size, const char *fmt,
                     ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	*body = NULL;
	enum client_status status = client_call(link->client, line, body);
	if (status == CLIENT_LOST) {
		snprintf(why, why_size, "%s: %s", link->host, client_error(link->client));
		return -EPIPE;
	}
	if (status == CLIENT_REFUSED) {
		char error[200];
		if (!json_string(*body, "error", error, sizeof(error)))
			snprintf(error, sizeof(error), "%.190s", *body);
		snprintf(why, why_size, "%s: %s", link->host, error);
		free(*body);
		*body = NULL;
		return -EREMOTEIO;
	}
	return 0;
}

/* Calls fn for each object of the list under key in json; stops when fn returns false. */
static void each_object(const char *json, const char *key, bool (*fn)(void *ctx, const char *obj),
                        void *ctx)
{
	const char *p = json_find(json, key);

	if (p == NULL || *(p = json_skip_space(p)) != '[')
		return;
	p = json_skip_space(p + 1);
	while (*p == '{') {
		const char *end = json_skip(p);
		if (end == NULL)
			return;
		char *obj = strndup(p, (size_t)(end - p));
		bool more = obj != NULL && fn(ctx, obj);
		free(obj);
		if (!more)
			return;
		p = json_skip_space(end);
		if (*p == ',')
			p = json_skip_space(p + 1);
	}
}

/* The strings of the list under key in json, one a line in out ("" if none). */
static void string_lines(const char *json, const char *key, char *out, size_t size)
{
	const char *p = json_find(json, key);
	size_t len = 0;

	out[0] = '\0';
	if (p == NULL || *(p = json_skip_space(p)) != '[')
		return;
	p = json_skip_space(p + 1);
	while (p != NULL && *p == '"') {
		char item[INVENTORY_NAME_MAX];
		p = json_string_at(p, item, sizeof(item));
		if (p == NULL)
			return;
		len += (size_t)snprintf(out + len, size - len, "%s%s", len ? "\n" : "", item);
		if (len >= size) {
			out[size - 1] = '\0';
			return;
		}
		p = json_skip_space(p);
		if (*p == ',')
			p = json_skip_space(p + 1);
	}
}

/* Whether a host has a port group of that name. */
static bool has_portgroup(const struct inventory_host *h, const char *portgroup)
{
	size_t len = strlen(portgroup);

	for (const char *line = h->portgroups; *line != '\0';) {
		size_t n = strcspn(line, "\n");
		if (n == len && strncmp(line, portgroup, len) == 0)
			return true;
		line += n + (line[n] == '\n');
	}
	return false;
}

/* ---- the inventory, under the lock ---- */

static void event(struct center *c, const char *severity, const char *object, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void event(struct center *c, const char *severity, const char *object, const char *fmt, ...)
{
	char message[INVENTORY_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->lock);
	inventory_event(c->store, severity, object, "%s", message);
	pthread_mutex_unlock(&c->lock);
}

static int host_get(struct center *c, const char *name, struct inventory_host *h)
{
	pthread_mutex_lock(&c->lock);
	int ret = inventory_host_get(c->store, name, h);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static void host_put(struct center *c, const struct inventory_host *h)
{
	pthread_mutex_lock(&c->lock);
	inventory_host_put(c->store, h);
	pthread_mutex_unlock(&c->lock);
}

static void task_state(struct center *c, uint64_t id, const char *state, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void task_state(struct center *c, uint64_t id, const char *state, const char *fmt, ...)
{
	char result[INVENTORY_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(result, sizeof(result), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->lock);
	inventory_task_state(c->store, id, state, result);
	pthread_mutex_unlock(&c->lock);
}

/* ---- refresh: what each host says it has ---- */

struct vm_list {
	struct inventory_vm *vms;
	int n;
	uint64_t now_ms;
};

static bool take_vm(void *ctx, const char *obj)
{
	struct vm_list *list = ctx;
	struct inventory_vm *vm = &list->vms[list->n];

	if (list->n >= MAX_VMS)
		return false;
	memset(vm, 0, sizeof(*vm));
	if (!json_string(obj, "name", vm->name, sizeof(vm->name)))
		return true;
	json_string(obj, "state", vm->state, sizeof(vm->state));
	json_string(obj, "portgroup", vm->portgroup, sizeof(vm->portgroup));
	json_string(obj, "datastore", vm->datastore, sizeof(vm->datastore));
	json_u64(obj, "memory_mb", &vm->memory_mb);
	json_u64(obj, "dirty_rate", &vm->dirty_rate);
	vm->updated_ms = list->now_ms;
	list->n++;
	return true;
}

struct vmotion_listener {
	char vmk[32], ip[16];
	uint64_t port;
};

static bool take_listener(void *ctx, const char *obj)
{
	struct vmotion_listener *l = ctx;

	json_string(obj, "vmk", l->vmk, sizeof(l->vmk));
	json_string(obj, "ip", l->ip, sizeof(l->ip));
	json_u64(obj, "port", &l->port);
	return false; /* the first one */
}

/* Gives a host the cluster's vMotion key on its listener (it keeps its port). */
static int provision_key(struct center *c, struct link *link, const struct vmotion_listener *l,
                         char *why, size_t why_size)
{
	char *body = NULL;
	int ret = link_call(link, &body, why, why_size, "migrate unlisten %s", l->vmk);

	free(body);
	if (ret == -EPIPE)
		return ret;
	ret = link_call(link, &body, why, why_size,
	                "migrate listen %s key "
	                "inline:%s port %" PRIu64,
	                l->vmk, c->key_hex, l->port);
	free(body);
	return ret;
}

/* Asks a host what it has; connected (with its VMs) or disconnected with the reason. Returns
 * 0 if it answered as the host the inventory names (another ferryd at its address does not).
 * With rekey, or when it was disconnected, its listener gets the cluster's vMotion key. */
static int refresh_host(struct center *c, const char *name, bool rekey)
{
	struct inventory_host h;
	struct link link;
	char why[INVENTORY_TEXT_MAX] = "", *body = NULL;
	struct vm_list list = {.vms = c->scratch->reported};
	struct vmotion_listener listener = {0};
	int ret;

	if (host_get(c, name, &h) < 0)
		return -ENOENT;
	bool was_connected = strcmp(h.state, "connected") == 0;
	ret = link_open(c, &h, &link, why, sizeof(why));
	if (ret == 0)
		ret = link_call(&link, &body, why, sizeof(why), "show host");
	if (ret == 0) {
		char reported[INVENTORY_NAME_MAX] = "";
		json_string(body, "name", reported, sizeof(reported));
		json_u64(body, "memory_committed_mb", &h.memory_mb);
		json_u64(body, "available_mb", &h.free_mb);
		each_object(body, "vmotion", take_listener, &listener);
		snprintf(h.vmotion_ip, sizeof(h.vmotion_ip), "%s", listener.ip);
		string_lines(body, "portgroups", h.portgroups, sizeof(h.portgroups));
		free(body);
		body = NULL;
		/* Another ferryd at the address (a host reinstalled, or a wrong address) is not
		 * the host the inventory knows. */
		if (strcmp(reported, h.name) != 0) {
			snprintf(why, sizeof(why), "%s answers as '%s'", h.address, reported);
			ret = -EINVAL;
		}
	}
	if (ret == 0 && listener.vmk[0] != '\0' && (rekey || !was_connected))
		ret = provision_key(c, &link, &listener, why, sizeof(why));
	list.n = 0;
	list.now_ms = inventory_now_ms();
	if (ret == 0 && (ret = link_call(&link, &body, why, sizeof(why), "vm list")) == 0) {
		each_object(body, "vms", take_vm, &list);
		free(body);
	}
	if (link.client != NULL)
		link_close(&link);
	pthread_mutex_lock(&c->lock);
	if (ret == 0) {
		snprintf(h.state, sizeof(h.state), "connected");
		h.reason[0] = '\0';
		h.last_seen_ms = list.now_ms;
		inventory_vms_replace(c->store, h.name, list.vms, list.n);
	} else {
		snprintf(h.state, sizeof(h.state), "disconnected");
		snprintf(h.reason, sizeof(h.reason), "%s", why);
	}
	inventory_host_put(c->store, &h);
	if (ret == 0 && !was_connected)
		inventory_event(c->store, "info", h.name, "connected (%d VMs)", list.n);
	else if (ret < 0 && was_connected)
		inventory_event(c->store, "warning", h.name, "disconnected: %s", why);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static void refresh_all(struct center *c)
{
	struct inventory_host *hosts = c->scratch->refresh_hosts;

	pthread_mutex_lock(&c->lock);
	int n = inventory_hosts(c->store, hosts, MAX_HOSTS);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < n && !c->stop; i++)
		refresh_host(c, hosts[i].name, false);
}

/* ---- migrations ---- */

/* Starts moving a VM: returns 0 with the session's id in move, or a negative errno with the
 * reason in move->reason. */
static int move_start(struct center *c, struct link *source, struct move *move)
{
	struct inventory_host dst;
	char *body = NULL;
	int ret;

	if (host_get(c, move->destination, &dst) < 0) {
		snprintf(move->reason, sizeof(move->reason), "no host %s", move->destination);
		return -ENOENT;
	}
	if (dst.vmotion_ip[0] == '\0') {
		snprintf(move->reason, sizeof(move->reason), "%s has no vMotion vmk listening",
		         dst.name);
		return -EINVAL;
	}
	ret = link_call(source, &body, move->reason, sizeof(move->reason),
	                "migrate start %s to %s key inline:%s %s", move->vm, dst.vmotion_ip,
	                c->key_hex,
	                c->config.vmotion_options != NULL ? c->config.vmotion_options : "");
	if (ret < 0)
		return ret;
	if (!json_u64(body, "id", &move->id)) {
		snprintf(move->reason, sizeof(move->reason), "%s: no session id in its answer",
		         move->source);
		ret = -EPROTO;
	}
	free(body);
	return ret;
}

/* Looks at a started move once; sets done (and ok) when it ended. */
static void move_check(struct link *source, struct move *move)
{
	char status[32] = "", *body = NULL;

	if (link_call(source, &body, move->reason, sizeof(move->reason), "migrate status %" PRIu64,
	              move->id) < 0) {
		move->done = true;
		return;
	}
	json_string(body, "status", status, sizeof(status));
	json_u64(body, "bytes_transferred", &move->bytes);
	if (json_find(body, "ended_at") != NULL) {
		move->done = true;
		move->ok = strcmp(status, "completed") == 0;
		move->total_ms = json_double(body, "total_time_ms", 0);
		move->downtime_ms = json_double(body, "downtime_ms", 0);
		if (!move->ok && !json_string(body, "reason", move->reason, sizeof(move->reason)))
			snprintf(move->reason, sizeof(move->reason), "%s", status);
	}
	free(body);
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* How many moves run at once: as many as raise what the link carries, up to the bound. One runs
 * for a window, then two, and so on while each step carries at least PROBE_GAIN more than the
 * one before; a step that carries less goes back, and the number stays. Where the hosts' CPUs
 * (or the link) are the limit, a second migration only shares them, and its losses cost more
 * than it brings (measured: README, Performance). */
#define PROBE_WINDOW_MS 1000
#define PROBE_GAIN      1.1

struct concurrency {
	unsigned int limit, bound;
	bool warm; /* the first window (the first migration's set-up and pre-flight) is not measured */
	bool settled;
	uint64_t window_start_ms, window_bytes;
	double best_bps; /* at limit - 1 */
};

/* Counts a window's bytes; at its end, decides the next limit. */
static void concurrency_update(struct center *c, struct concurrency *k, uint64_t bytes,
                               const char *host)
{
	uint64_t now = inventory_now_ms();

	k->window_bytes += bytes;
	if (k->settled || now - k->window_start_ms < PROBE_WINDOW_MS)
		return;
	double bps = (double)k->window_bytes * 8e3 / (double)(now - k->window_start_ms);
	if (!k->warm) {
		k->warm = true;
	} else if (k->limit == 1 || bps >= k->best_bps * PROBE_GAIN) {
		k->best_bps = bps;
		if (k->limit < k->bound)
			k->limit++;
		else
			k->settled = true;
	} else {
		k->limit--;
		k->settled = true;
		event(c, "info", host,
		      "%u migrations at once carried %.2f Gbit/s, %u carried %.2f: %u at once",
		      k->limit + 1, bps / 1e9, k->limit, k->best_bps / 1e9, k->limit);
	}
	k->window_start_ms = now;
	k->window_bytes = 0;
}

/* Runs moves from one source, at most concurrent at once (fewer when more would not carry more),
 * each to its destination (a move that fails is left failed: the caller decides whether another
 * host may take it). Returns how many ran at once in the end. */
static unsigned int run_moves(struct center *c, const char *source_name, struct move *moves, int n,
                              unsigned int concurrent)
{
	struct inventory_host source;
	struct link link;
	char why[INVENTORY_TEXT_MAX];
	int next = 0, running = 0;
	uint64_t deadline = inventory_now_ms() + MOVE_TIMEOUT_MS;
	struct concurrency k = {.limit = 1,
	                        .bound = concurrent,
	                        .settled = concurrent <= 1,
	                        .window_start_ms = inventory_now_ms()};

	if (host_get(c, source_name, &source) < 0 ||
	    link_open(c, &source, &link, why, sizeof(why)) < 0) {
		for (int i = 0; i < n; i++) {
			moves[i].done = true;
			snprintf(moves[i].reason, sizeof(moves[i].reason), "%s", why);
		}
		return 0;
	}
	while ((next < n || running > 0) && !c->stop && inventory_now_ms() < deadline) {
		while (next < n && running < (int)k.limit) {
			struct move *m = &moves[next++];
			if (move_start(c, &link, m) < 0) {
				m->done = true;
				continue;
			}
			running++;
			event(c, "info", m->vm, "migrating from %s to %s", m->source,
			      m->destination);
		}
		/* A migration's end is seen within this: 20 ms a move, against 1 s or more each. */
		sleep_ms(20);
		running = 0;
		uint64_t carried = 0;
		for (int i = 0; i < next; i++) {
			if (moves[i].done || moves[i].id == 0)
				continue;
			uint64_t before = moves[i].bytes;
			move_check(&link, &moves[i]);
			carried += moves[i].bytes > before ? moves[i].bytes - before : 0;
			if (!moves[i].done) {
				running++;
				continue;
			}
			if (moves[i].ok)
				event(c, "info", moves[i].vm,
				      "migrated from %s to %s in %.0f ms, downtime %.1f ms",
				      moves[i].source, moves[i].destination, moves[i].total_ms,
				      moves[i].downtime_ms);
			else
				event(c, "error", moves[i].vm, "did not migrate to %s: %s",
				      moves[i].destination, moves[i].reason);
		}
		concurrency_update(c, &k, carried, source_name);
	}
	for (int i = 0; i < n; i++)
		if (!moves[i].done) {
			moves[i].done = true;
			snprintf(moves[i].reason, sizeof(moves[i].reason),
			         c->stop ? "ferry-center stopped" : "no end within 10 minutes");
		}
	link_close(&link);
	return k.limit;
}

/* ---- tasks ---- */

static bool host_usable(const struct inventory_host *h)
{
	return strcmp(h->state, "connected") == 0 && !h->maintenance && h->vmotion_ip[0] != '\0';
}

static void task_host_add(struct center *c, uint64_t id, const struct inventory_task *t)
{
	struct inventory_host h = {0};
	struct inventory_datastore ds[MAX_HOSTS];
	struct link link;
	char why[INVENTORY_TEXT_MAX], *body = NULL;

	snprintf(h.name, sizeof(h.name), "%s", t->target);
	snprintf(h.address, sizeof(h.address), "%s", t->detail);
	snprintf(h.state, sizeof(h.state), "disconnected");
	int ret = link_open(c, &h, &link, why, sizeof(why));
	if (ret == 0)
		ret = link_call(&link, &body, why, sizeof(why), "show host");
	if (ret == 0) {
		char reported[INVENTORY_NAME_MAX] = "";
		json_string(body, "name", reported, sizeof(reported));
		free(body);
		/* The host takes the inventory's name (its disk locks carry it). */
		if (strcmp(reported, h.name) != 0) {
			ret = link_call(&link, &body, why, sizeof(why), "host name %s", h.name);
			free(body);
		}
	}
	if (ret == 0)
		client_peer_fingerprint(link.client, h.fingerprint, sizeof(h.fingerprint));
	/* The cluster's datastores, mounted under the same names. */
	pthread_mutex_lock(&c->lock);
	int nb_ds = inventory_datastores(c->store, ds, MAX_HOSTS);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; ret == 0 && i < nb_ds; i++) {
		char error[INVENTORY_TEXT_MAX];
		if (link_call(&link, &body, error, sizeof(error),
		              "datastore add %s %s lease %" PRIu64, ds[i].name, ds[i].path,
		              ds[i].lease_s) == -EPIPE)
			ret = -EPIPE;
		free(body);
	}
	if (link.client != NULL)
		link_close(&link);
	if (ret < 0) {
		task_state(c, id, "error", "%s", why);
		return;
	}
	host_put(c, &h);
	ret = refresh_host(c, h.name, true);
	pthread_mutex_lock(&c->lock);
	inventory_host_get(c->store, h.name, &h);
	pthread_mutex_unlock(&c->lock);
	if (ret < 0) {
		task_state(c, id, "error", "added, but: %s", h.reason);
		return;
	}
	event(c, "info", h.name, "added at %s%s%s", h.address,
	      h.fingerprint[0] ? ", certificate " : "", h.fingerprint);
	task_state(c, id, "success", "%s added: %s, vMotion %s", h.name, h.address,
	           h.vmotion_ip[0] ? h.vmotion_ip : "none (no listener)");
}

static void task_datastore_add(struct center *c, uint64_t id, const struct inventory_task *t)
{
	struct inventory_host *hosts = c->scratch->plan_hosts;
	struct inventory_datastore ds = {0};
	char path[INVENTORY_ADDRESS_MAX];
	int pushed = 0, failed = 0;
	char failures[INVENTORY_TEXT_MAX] = "";

	if (sscanf(t->detail, "%255s %" SCNu64, path, &ds.lease_s) != 2) {
		task_state(c, id, "error", "malformed detail");
		return;
	}
	snprintf(ds.name, sizeof(ds.name), "%s", t->target);
	snprintf(ds.path, sizeof(ds.path), "%s", path);
	pthread_mutex_lock(&c->lock);
	inventory_datastore_put(c->store, &ds);
	int n = inventory_hosts(c->store, hosts, MAX_HOSTS);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < n; i++) {
		struct link link;
		char why[INVENTORY_TEXT_MAX], *body = NULL;
		int ret = link_open(c, &hosts[i], &link, why, sizeof(why));
		if (ret == 0) {
			ret = link_call(&link, &body, why, sizeof(why),
			                "datastore add %s %s lease %" PRIu64, ds.name, ds.path,
			                ds.lease_s);
			free(body);
			link_close(&link);
		}
		/* One that has it already has it. */
		if (ret < 0 && strstr(why, "exists already") == NULL) {
			failed++;
			size_t len = strlen(failures);
			snprintf(failures + len, sizeof(failures) - len, "%s%s", len ? "; " : "",
			         why);
		} else {
			pushed++;
		}
	}
	event(c, failed ? "warning" : "info", ds.name, "datastore at %s on %d of %d hosts", ds.path,
	      pushed, n);
	if (failed)
		task_state(c, id, "error", "on %d of %d hosts: %s", pushed, n, failures);
	else
		task_state(c, id, "success", "%s on %d hosts", ds.name, pushed);
}

static void task_vmotion(struct center *c, uint64_t id, const struct inventory_task *t)
{
	struct inventory_vm vm;
	struct inventory_host src, dst;
	struct move move = {0};

	refresh_all(c);
	pthread_mutex_lock(&c->lock);
	int ret = inventory_vm_get(c->store, t->target, &vm);
	int dst_ret = inventory_host_get(c->store, t->detail, &dst);
	pthread_mutex_unlock(&c->lock);
	if (ret < 0 || dst_ret < 0) {
		task_state(c, id, "error", ret < 0 ? "no VM %s" : "no host %s",
		           ret < 0 ? t->target : t->detail);
		return;
	}
	if (host_get(c, vm.host, &src) < 0 || strcmp(src.state, "connected") != 0) {
		task_state(c, id, "error", "its host %s is not connected", vm.host);
		return;
	}
	if (strcmp(vm.host, dst.name) == 0) {
		task_state(c, id, "error", "%s runs on %s already", vm.name, dst.name);
		return;
	}
	if (!host_usable(&dst)) {
		task_state(c, id, "error", "%s takes no VMs: %s", dst.name,
		           dst.maintenance                       ? "in maintenance"
		           : strcmp(dst.state, "connected") != 0 ? "disconnected"
		                                                 : "no vMotion vmk listening");
		return;
	}
	if (!has_portgroup(&dst, vm.portgroup)) {
		task_state(c, id, "error", "%s has no port group %s", dst.name, vm.portgroup);
		return;
	}
	if (dst.free_mb < vm.memory_mb) {
		task_state(c, id, "error", "%s has %" PRIu64 " MiB free, %s needs %" PRIu64,
		           dst.name, dst.free_mb, vm.name, vm.memory_mb);
		return;
	}
	snprintf(move.vm, sizeof(move.vm), "%s", vm.name);
	snprintf(move.source, sizeof(move.source), "%s", vm.host);
	snprintf(move.destination, sizeof(move.destination), "%s", dst.name);
	task_state(c, id, "running", "migrating from %s", vm.host);
	run_moves(c, vm.host, &move, 1, 1);
	refresh_host(c, src.name, false);
	refresh_host(c, dst.name, false);
	if (move.ok)
		task_state(c, id, "success", "%s -> %s in %.0f ms, downtime %.1f ms", move.source,
		           move.destination, move.total_ms, move.downtime_ms);
	else
		task_state(c, id, "error", "%s", move.reason);
}

/* Where a VM may go: a usable host other than its own with its port group and room for it (as
 * planned so far), the most free first; "" if none. */
static const char *place(struct inventory_host *hosts, int n, const char *from,
                         const struct inventory_vm *vm, const char *excluded)
{
	struct inventory_host *best = NULL;
	uint64_t mb = vm->memory_mb;

	for (int i = 0; i < n; i++) {
		struct inventory_host *h = &hosts[i];
		if (strcmp(h->name, from) == 0 || !host_usable(h) || h->free_mb < mb ||
		    !has_portgroup(h, vm->portgroup) ||
		    (excluded != NULL && strcmp(h->name, excluded) == 0))
			continue;
		if (best == NULL || h->free_mb > best->free_mb)
			best = h;
	}
	if (best == NULL)
		return "";
	best->free_mb -= mb;
	best->memory_mb += mb;
	return best->name;
}

static void task_maintenance(struct center *c, uint64_t id, const struct inventory_task *t, bool on)
{
	struct inventory_host *hosts = c->scratch->plan_hosts;
	struct inventory_vm *vms = c->scratch->plan_vms;
	struct move *moves = c->scratch->moves;
	struct inventory_host h;

	if (host_get(c, t->target, &h) < 0) {
		task_state(c, id, "error", "no host %s", t->target);
		return;
	}
	if (!on) {
		h.maintenance = false;
		host_put(c, &h);
		event(c, "info", h.name, "left maintenance mode");
		task_state(c, id, "success", "%s takes VMs again", h.name);
		return;
	}
	/* No VM is placed there from now on, by vmotion or balance. */
	h.maintenance = true;
	host_put(c, &h);
	task_state(c, id, "running", "evacuating");
	uint64_t start_ms = inventory_now_ms();
	refresh_all(c);
	pthread_mutex_lock(&c->lock);
	int nb_hosts = inventory_hosts(c->store, hosts, MAX_HOSTS);
	int nb_vms = inventory_vms(c->store, h.name, vms, MAX_VMS);
	pthread_mutex_unlock(&c->lock);
	if (strcmp(h.state, "connected") != 0) {
		task_state(c, id, "error", "%s is disconnected: %s", h.name, h.reason);
		h.maintenance = false;
		host_put(c, &h);
		return;
	}
	/* Largest first: they are the hardest to place. */
	for (int i = 0; i < nb_vms; i++)
		for (int j = i + 1; j < nb_vms; j++)
			if (vms[j].memory_mb > vms[i].memory_mb) {
				struct inventory_vm tmp = vms[i];
				vms[i] = vms[j];
				vms[j] = tmp;
			}
	char unplaced[INVENTORY_TEXT_MAX] = "";
	int nb_moves = 0;
	for (int i = 0; i < nb_vms; i++) {
		const char *to = place(hosts, nb_hosts, h.name, &vms[i], NULL);
		if (to[0] == '\0') {
			size_t len = strlen(unplaced);
			snprintf(unplaced + len, sizeof(unplaced) - len, "%s%s (%" PRIu64 " MiB)",
			         len ? ", " : "", vms[i].name, vms[i].memory_mb);
			continue;
		}
		memset(&moves[nb_moves], 0, sizeof(moves[nb_moves]));
		snprintf(moves[nb_moves].vm, sizeof(moves[nb_moves].vm), "%s", vms[i].name);
		snprintf(moves[nb_moves].source, sizeof(moves[nb_moves].source), "%s", h.name);
		snprintf(moves[nb_moves].destination, sizeof(moves[nb_moves].destination), "%s",
		         to);
		moves[nb_moves].memory_mb = vms[i].memory_mb;
		moves[nb_moves].vm_index = i;
		nb_moves++;
	}
	unsigned int concurrent = run_moves(c, h.name, moves, nb_moves, c->config.concurrent);
	/* A VM a destination refused gets one more try elsewhere. */
	int retries = 0;
	for (int i = 0; i < nb_moves; i++) {
		if (moves[i].ok)
			continue;
		const char *to = place(hosts, nb_hosts, h.name, &vms[moves[i].vm_index],
		                       moves[i].destination);
		if (to[0] == '\0')
			continue;
		struct move retry = moves[i];
		retry.done = retry.ok = false;
		retry.id = 0;
		snprintf(retry.destination, sizeof(retry.destination), "%s", to);
		run_moves(c, h.name, &retry, 1, 1);
		moves[i] = retry;
		retries++;
	}
	double sum_ms = 0;
	int moved = 0;
	for (int i = 0; i < nb_moves; i++) {
		if (moves[i].ok) {
			moved++;
			sum_ms += moves[i].total_ms;
			continue;
		}
		size_t len = strlen(unplaced);
		snprintf(unplaced + len, sizeof(unplaced) - len, "%s%s (%s)", len ? ", " : "",
		         moves[i].vm, moves[i].reason);
	}
	/* The host's own word that it runs nothing (the others report at the next refresh). */
	refresh_host(c, h.name, false);
	pthread_mutex_lock(&c->lock);
	int left = inventory_vms(c->store, h.name, vms, MAX_VMS);
	pthread_mutex_unlock(&c->lock);
	double total_ms = (double)(inventory_now_ms() - start_ms);
	if (unplaced[0] != '\0' || left != 0) {
		/* It does not enter maintenance while a VM runs there. */
		host_get(c, h.name, &h);
		h.maintenance = false;
		host_put(c, &h);
		event(c, "error", h.name, "stays out of maintenance: %s", unplaced);
		task_state(c, id, "error", "%d of %d VMs left; %d stay: %s", moved, nb_vms, left,
		           unplaced[0] ? unplaced : "VMs arrived meanwhile");
		return;
	}
	event(c, "info", h.name, "in maintenance mode: %d VMs evacuated in %.1f s", moved,
	      total_ms / 1e3);
	task_state(c, id, "success",
	           "%d VMs evacuated in %.1f s (its migrations took %.1f s summed; %u at once "
	           "of at most %u%s)",
	           moved, total_ms / 1e3, sum_ms / 1e3, concurrent, c->config.concurrent,
	           retries ? ", some on a second host" : "");
}

/* DRS's measure here: memory the VMs commit, per host. */
static unsigned int spread_percent(const struct inventory_host *hosts, int n, int *most, int *least)
{
	*most = *least = -1;
	for (int i = 0; i < n; i++) {
		if (!host_usable(&hosts[i]))
			continue;
		if (*most < 0 || hosts[i].memory_mb > hosts[*most].memory_mb)
			*most = i;
		if (*least < 0 || hosts[i].memory_mb < hosts[*least].memory_mb)
			*least = i;
	}
	if (*most < 0 || *most == *least || hosts[*most].memory_mb == 0)
		return 0;
	return (unsigned int)((hosts[*most].memory_mb - hosts[*least].memory_mb) * 100 /
	                      hosts[*most].memory_mb);
}

static void task_balance(struct center *c, uint64_t id, const struct inventory_task *t)
{
	struct inventory_host *hosts = c->scratch->plan_hosts;
	struct inventory_vm *vms = c->scratch->plan_vms;
	bool dry_run = strcmp(t->detail, "dry-run") == 0;
	char summary[INVENTORY_TEXT_MAX] = "";
	int recommendations = 0;
	unsigned int first_spread = 0, spread = 0;

	task_state(c, id, "running", dry_run ? "recommending" : "balancing");
	refresh_all(c);
	pthread_mutex_lock(&c->lock);
	int nb_hosts = inventory_hosts(c->store, hosts, MAX_HOSTS);
	int nb_vms = inventory_vms(c->store, NULL, vms, MAX_VMS);
	pthread_mutex_unlock(&c->lock);
	for (int round = 0; round < BALANCE_MOVES && !c->stop; round++) {
		int most, least;
		spread = spread_percent(hosts, nb_hosts, &most, &least);
		if (round == 0)
			first_spread = spread;
		if (spread < c->config.balance_spread || most < 0)
			break;
		/* The VM whose move brings the two nearest to even: its memory nearest half the
		 * gap and under the gap (more would only swap them); of equals, the one that
		 * dirties memory slowest (the cheapest to move). */
		uint64_t gap = hosts[most].memory_mb - hosts[least].memory_mb, best_off = 0;
		int pick = -1;
		for (int v = 0; v < nb_vms; v++) {
			if (strcmp(vms[v].host, hosts[most].name) != 0 || vms[v].memory_mb >= gap ||
			    vms[v].memory_mb > hosts[least].free_mb)
				continue;
			/* How far the two would end from even: |2 x memory - gap|. */
			uint64_t twice = vms[v].memory_mb * 2;
			uint64_t off = twice > gap ? twice - gap : gap - twice;
			if (pick < 0 || off < best_off ||
			    (off == best_off && vms[v].dirty_rate < vms[pick].dirty_rate)) {
				pick = v;
				best_off = off;
			}
		}
		if (pick < 0)
			break;
		struct inventory_vm *vm = &vms[pick];
		struct inventory_host *from = &hosts[most], *to = &hosts[least];
		uint64_t after_most = from->memory_mb - vm->memory_mb,
		         after_least = to->memory_mb + vm->memory_mb;
		recommendations++;
		event(c, "info", vm->name,
		      "%s: move from %s to %s (%" PRIu64 " MiB, %" PRIu64
		      " pages/s dirtied): their memory %" PRIu64 "/%" PRIu64 " MiB -> %" PRIu64
		      "/%" PRIu64,
		      dry_run ? "recommendation" : "balance", from->name, to->name, vm->memory_mb,
		      vm->dirty_rate, from->memory_mb, to->memory_mb, after_most, after_least);
		size_t len = strlen(summary);
		snprintf(summary + len, sizeof(summary) - len, "%s%s %s->%s", len ? ", " : "",
		         vm->name, from->name, to->name);
		if (!dry_run) {
			struct move move = {0};
			snprintf(move.vm, sizeof(move.vm), "%s", vm->name);
			snprintf(move.source, sizeof(move.source), "%s", from->name);
			snprintf(move.destination, sizeof(move.destination), "%s", to->name);
			run_moves(c, from->name, &move, 1, 1);
			if (!move.ok) {
				task_state(c, id, "error", "%s did not move: %s", vm->name,
				           move.reason);
				return;
			}
		}
		/* As planned (dry run) or done: the next recommendation starts from there. */
		from->memory_mb = after_most;
		from->free_mb += vm->memory_mb;
		to->memory_mb = after_least;
		to->free_mb -= vm->memory_mb;
		snprintf(vm->host, sizeof(vm->host), "%s", to->name);
	}
	if (!dry_run)
		refresh_all(c);
	int most, least;
	spread = spread_percent(hosts, nb_hosts, &most, &least);
	task_state(c, id, "success", "spread %u%% -> %u%% (threshold %u%%); %d %s%s%s",
	           first_spread, spread, c->config.balance_spread, recommendations,
	           dry_run ? "recommended, none moved" : "moved", summary[0] ? ": " : "", summary);
}

static void run_task(struct center *c, uint64_t id)
{
	struct inventory_task t;

	pthread_mutex_lock(&c->lock);
	int ret = inventory_task_get(c->store, id, &t);
	if (ret == 0)
		inventory_task_state(c->store, id, "running", "");
	pthread_mutex_unlock(&c->lock);
	if (ret < 0)
		return;
	if (strcmp(t.kind, "host-add") == 0)
		task_host_add(c, id, &t);
	else if (strcmp(t.kind, "datastore-add") == 0)
		task_datastore_add(c, id, &t);
	else if (strcmp(t.kind, "vmotion") == 0)
		task_vmotion(c, id, &t);
	else if (strcmp(t.kind, "maintenance-on") == 0 || strcmp(t.kind, "maintenance-off") == 0)
		task_maintenance(c, id, &t, strcmp(t.kind, "maintenance-on") == 0);
	else if (strcmp(t.kind, "balance") == 0)
		task_balance(c, id, &t);
	else
		task_state(c, id, "error", "unknown task kind %s", t.kind);
}

static void *task_thread(void *arg)
{
	struct center *c = arg;
	uint64_t next_refresh = 0;

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		uint64_t now = inventory_now_ms();
		if (c->queue_len == 0 && !c->refresh_now && now < next_refresh) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			uint64_t wait = next_refresh - now;
			until.tv_sec += (time_t)(wait / 1000);
			until.tv_nsec += (long)(wait % 1000) * 1000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c->wake, &c->lock, &until);
			continue;
		}
		if (c->queue_len > 0) {
			uint64_t id = c->queue[c->queue_head];
			c->queue_head = (c->queue_head + 1) % QUEUE_MAX;
			c->queue_len--;
			pthread_mutex_unlock(&c->lock);
			run_task(c, id);
		} else {
			c->refresh_now = false;
			pthread_mutex_unlock(&c->lock);
			refresh_all(c);
			next_refresh = inventory_now_ms() + c->config.refresh_ms;
		}
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* A key file's text (a trailing newline dropped): 16 to 256 printable bytes, no space. */
static int read_key(const char *path, char *out, size_t size, char *why, size_t why_size)
{
	FILE *f = fopen(path, "re");
	size_t len;

	if (f == NULL) {
		snprintf(why, why_size, "vMotion key %s: %s", path, strerror(errno));
		return -errno;
	}
	len = fread(out, 1, size - 1, f);
	fclose(f);
	out[len] = '\0';
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
		out[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (out[i] <= ' ' || out[i] > '~')
			len = 0;
	if (len < 16) {
		snprintf(why, why_size, "vMotion key %s: give 16 to %zu printable bytes, no space",
		         path, size - 1);
		return -EINVAL;
	}
	return 0;
}

int center_start(struct center **out, const struct center_config *config, char *why,
                 size_t why_size)
{
	struct center *c = calloc(1, sizeof(*c));
	uint8_t key[KEY_BYTES];
	int ret;

	if (c == NULL) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	c->config = *config;
	if (c->config.concurrent == 0)
		c->config.concurrent = 2;
	if (c->config.refresh_ms == 0)
		c->config.refresh_ms = 2000;
	if (c->config.timeout_ms == 0)
		c->config.timeout_ms = 10000;
	if (c->config.balance_spread == 0)
		c->config.balance_spread = 20;
	c->scratch = calloc(1, sizeof(*c->scratch));
	if (c->scratch == NULL) {
		snprintf(why, why_size, "out of memory");
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	if (getrandom(key, sizeof(key), 0) != sizeof(key)) {
		snprintf(why, why_size, "no randomness for the vMotion key");
		free(c->scratch);
		free(c);
		return -EIO;
	}
	for (int i = 0; i < KEY_BYTES; i++)
		snprintf(&c->key_hex[2 * i], 3, "%02x", key[i]);
	if (config->vmotion_key != NULL &&
	    (ret = read_key(config->vmotion_key, c->key_hex, sizeof(c->key_hex), why, why_size)) <
	            0) {
		free(c->scratch);
		free(c);
		return ret;
	}
	if ((ret = inventory_open(&c->store, config->inventory, why, why_size)) < 0) {
		free(c->scratch);
		free(c);
		return ret;
	}
	/* Tasks a stopped daemon left are over; hosts are asked afresh. */
	inventory_tasks_abandon(c->store, "ferry-center stopped while it ran");
	if (pthread_create(&c->thread, NULL, task_thread, c) != 0) {
		snprintf(why, why_size, "cannot start the task thread");
		store_close(c->store);
		free(c->scratch);
		free(c);
		return -EAGAIN;
	}
	c->thread_started = true;
	*out = c;
	return 0;
}

void center_stop(struct center *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	inventory_tasks_abandon(c->store, "ferry-center stopped while it ran");
	store_close(c->store);
	explicit_bzero(c->key_hex, sizeof(c->key_hex));
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c->scratch);
	free(c);
}

struct store *center_store(struct center *c)
{
	return c->store;
}

void center_lock(struct center *c)
{
	pthread_mutex_lock(&c->lock);
}

void center_unlock(struct center *c)
{
	pthread_mutex_unlock(&c->lock);
}

int center_queue(struct center *c, const char *kind, const char *target, const char *detail,
                 uint64_t *id)
{
	pthread_mutex_lock(&c->lock);
	int ret = c->queue_len == QUEUE_MAX
	                  ? -EBUSY
	                  : inventory_task_begin(c->store, kind, target, detail, id);
	if (ret == 0) {
		c->queue[(c->queue_head + c->queue_len) % QUEUE_MAX] = *id;
		c->queue_len++;
		pthread_cond_signal(&c->wake);
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void center_refresh_soon(struct center *c)
{
	pthread_mutex_lock(&c->lock);
	c->refresh_now = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}
