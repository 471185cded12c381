/* ferry-center's inventory: the schema and its typed queries, one text for both engines. */
#include "inventory.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The schema, by version. A change is a new step, never an edit of an old one: a store made by
 * an older ferry-center is brought forward on open. */
static const struct store_step schema[] = {
        {1, "CREATE TABLE hosts (name TEXT PRIMARY KEY, address TEXT NOT NULL,"
            " state TEXT NOT NULL, maintenance INTEGER NOT NULL DEFAULT 0,"
            " memory_mb BIGINT NOT NULL DEFAULT 0, free_mb BIGINT NOT NULL DEFAULT 0,"
            " last_seen_ms BIGINT NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '');"
            "CREATE TABLE datastores (name TEXT PRIMARY KEY, path TEXT NOT NULL,"
            " lease_s BIGINT NOT NULL);"
            "CREATE TABLE vms (name TEXT PRIMARY KEY, host TEXT NOT NULL,"
            " state TEXT NOT NULL, memory_mb BIGINT NOT NULL, portgroup TEXT NOT NULL,"
            " datastore TEXT NOT NULL DEFAULT '', dirty_rate BIGINT NOT NULL DEFAULT 0,"
            " updated_ms BIGINT NOT NULL);"
            "CREATE TABLE tasks (id {id}, kind TEXT NOT NULL, target TEXT NOT NULL,"
            " detail TEXT NOT NULL, state TEXT NOT NULL, started_ms BIGINT NOT NULL,"
            " ended_ms BIGINT NOT NULL DEFAULT 0, result TEXT NOT NULL DEFAULT '');"
            "CREATE TABLE events (id {id}, at_ms BIGINT NOT NULL, severity TEXT NOT NULL,"
            " object TEXT NOT NULL, message TEXT NOT NULL)"},
        /* Version 2: what a host's certificate was when it was added (vCenter's thumbprint),
         * and its vMotion address. */
        {2, "ALTER TABLE hosts ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';"
            "ALTER TABLE hosts ADD COLUMN vmotion_ip TEXT NOT NULL DEFAULT ''"},
        /* Version 3: the host's port groups, for admission (one name a line). */
        {3, "ALTER TABLE hosts ADD COLUMN portgroups TEXT NOT NULL DEFAULT ''"},
};

int inventory_open(struct store **out, const char *where, char *why, size_t why_size)
{
	int ret = store_open(out, where, why, why_size);

	if (ret < 0)
		return ret;
	ret = store_migrate(*out, schema, (int)(sizeof(schema) / sizeof(schema[0])));
	if (ret < 0) {
		snprintf(why, why_size, "%s", store_error(*out));
		store_close(*out);
		*out = NULL;
		return ret;
	}
	return 0;
}

uint64_t inventory_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Numbers travel as text. */
struct numbers {
	char text[8][24];
};

static const char *number(struct numbers *n, int i, uint64_t value)
{
	snprintf(n->text[i], sizeof(n->text[i]), "%" PRIu64, value);
	return n->text[i];
}

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

static uint64_t to_u64(const char *text)
{
	return text != NULL ? strtoull(text, NULL, 10) : 0;
}

/* Rows into an array of structs, up to max. */
struct rows {
	void *out;
	size_t size;
	int max, n;
	void (*fill)(void *row, const char *const *values);
};

static int take_row(void *ctx, int nb_columns, const char *const *values)
{
	struct rows *rows = ctx;

	(void)nb_columns;
	if (rows->n >= rows->max)
		return 1;
	void *row = (char *)rows->out + (size_t)rows->n * rows->size;
	memset(row, 0, rows->size);
	rows->fill(row, values);
	rows->n++;
	return 0;
}

static int query_rows(struct store *store, const char *sql, int nb_params,
                      const char *const *params, struct rows *rows)
{
	int ret = store_query(store, sql, nb_params, params, take_row, rows);

	return ret < 0 ? ret : rows->n;
}

/* The one row a key names into out: 0, -ENOENT when there is none, or -EIO. */
static int query_one(struct store *store, const char *sql, const char *key, void *out, size_t size,
                     void (*fill)(void *row, const char *const *values))
{
	const char *params[] = {key};
	struct rows rows = {out, size, 1, 0, fill};
	int ret = query_rows(store, sql, 1, params, &rows);

	return ret < 0 ? ret : ret == 0 ? -ENOENT : 0;
}

#define HOST_COLUMNS                                                                               \
	"name, address, state, maintenance, memory_mb, free_mb, last_seen_ms, reason, "            \
	"fingerprint, vmotion_ip, portgroups"

static void fill_host(void *row, const char *const *v)
{
	struct inventory_host *h = row;

	copy(h->name, sizeof(h->name), v[0]);
	copy(h->address, sizeof(h->address), v[1]);
	copy(h->state, sizeof(h->state), v[2]);
	h->maintenance = to_u64(v[3]) != 0;
	h->memory_mb = to_u64(v[4]);
	h->free_mb = to_u64(v[5]);
	h->last_seen_ms = to_u64(v[6]);
	copy(h->reason, sizeof(h->reason), v[7]);
	copy(h->fingerprint, sizeof(h->fingerprint), v[8]);
	copy(h->vmotion_ip, sizeof(h->vmotion_ip), v[9]);
	copy(h->portgroups, sizeof(h->portgroups), v[10]);
}

int inventory_host_put(struct store *store, const struct inventory_host *h)
{
	struct numbers n;
	const char *params[] = {h->name,
	                        h->address,
	                        h->state,
	                        number(&n, 0, h->maintenance),
	                        number(&n, 1, h->memory_mb),
	                        number(&n, 2, h->free_mb),
	                        number(&n, 3, h->last_seen_ms),
	                        h->reason,
	                        h->fingerprint,
	                        h->vmotion_ip,
	                        h->portgroups};
	int ret =
	        store_exec(store,
	                   "INSERT INTO hosts (" HOST_COLUMNS
	                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
	                   " ON CONFLICT (name) DO UPDATE SET address = excluded.address,"
	                   " state = excluded.state, maintenance = excluded.maintenance,"
	                   " memory_mb = excluded.memory_mb, free_mb = excluded.free_mb,"
	                   " last_seen_ms = excluded.last_seen_ms, reason = excluded.reason,"
	                   " fingerprint = excluded.fingerprint, vmotion_ip = excluded.vmotion_ip,"
	                   " portgroups = excluded.portgroups",
	                   11, params);
	return ret < 0 ? ret : 0;
}

int inventory_host_get(struct store *store, const char *name, struct inventory_host *host)
{
	return query_one(store, "SELECT " HOST_COLUMNS " FROM hosts WHERE name = $1", name, host,
	                 sizeof(*host), fill_host);
}

int inventory_hosts(struct store *store, struct inventory_host *hosts, int max)
{
	struct rows rows = {hosts, sizeof(*hosts), max, 0, fill_host};

	return query_rows(store, "SELECT " HOST_COLUMNS " FROM hosts ORDER BY name", 0, NULL,
	                  &rows);
}

int inventory_host_remove(struct store *store, const char *name)
{
	const char *params[] = {name};

	if (store_exec(store, "DELETE FROM vms WHERE host = $1", 1, params) < 0)
		return -EIO;
	int ret = store_exec(store, "DELETE FROM hosts WHERE name = $1", 1, params);
	return ret < 0 ? ret : ret == 0 ? -ENOENT : 0;
}

#define VM_COLUMNS "name, host, state, memory_mb, portgroup, datastore, dirty_rate, updated_ms"

static void fill_vm(void *row, const char *const *v)
{
	struct inventory_vm *vm = row;

	copy(vm->name, sizeof(vm->name), v[0]);
	copy(vm->host, sizeof(vm->host), v[1]);
	copy(vm->state, sizeof(vm->state), v[2]);
	vm->memory_mb = to_u64(v[3]);
	copy(vm->portgroup, sizeof(vm->portgroup), v[4]);
	copy(vm->datastore, sizeof(vm->datastore), v[5]);
	vm->dirty_rate = to_u64(v[6]);
	vm->updated_ms = to_u64(v[7]);
}

int inventory_vms_replace(struct store *store, const char *host, const struct inventory_vm *vms,
                          int nb_vms)
{
	const char *params[] = {host};

	if (store_exec(store, "BEGIN", 0, NULL) < 0)
		return -EIO;
	/* A VM another host reported moments ago (it migrated) moves here with this insert. */
	if (store_exec(store, "DELETE FROM vms WHERE host = $1", 1, params) < 0)
		goto fail;
	for (int i = 0; i < nb_vms; i++) {
		struct numbers n;
		const char *p[] = {vms[i].name,
		                   host,
		                   vms[i].state,
		                   number(&n, 0, vms[i].memory_mb),
		                   vms[i].portgroup,
		                   vms[i].datastore,
		                   number(&n, 1, vms[i].dirty_rate),
		                   number(&n, 2, vms[i].updated_ms)};
		if (store_exec(
		            store,
		            "INSERT INTO vms (" VM_COLUMNS
		            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
		            " ON CONFLICT (name) DO UPDATE SET host = excluded.host,"
		            " state = excluded.state, memory_mb = excluded.memory_mb,"
		            " portgroup = excluded.portgroup, datastore = excluded.datastore,"
		            " dirty_rate = excluded.dirty_rate, updated_ms = excluded.updated_ms",
		            8, p) < 0)
			goto fail;
	}
	return store_exec(store, "COMMIT", 0, NULL) < 0 ? -EIO : 0;
fail:
	store_exec(store, "ROLLBACK", 0, NULL);
	return -EIO;
}

int inventory_vm_get(struct store *store, const char *name, struct inventory_vm *vm)
{
	return query_one(store, "SELECT " VM_COLUMNS " FROM vms WHERE name = $1", name, vm,
	                 sizeof(*vm), fill_vm);
}

int inventory_vms(struct store *store, const char *host, struct inventory_vm *vms, int max)
{
	const char *params[] = {host};
	struct rows rows = {vms, sizeof(*vms), max, 0, fill_vm};

	if (host == NULL)
		return query_rows(store, "SELECT " VM_COLUMNS " FROM vms ORDER BY name", 0, NULL,
		                  &rows);
	return query_rows(store, "SELECT " VM_COLUMNS " FROM vms WHERE host = $1 ORDER BY name", 1,
	                  params, &rows);
}

static void fill_datastore(void *row, const char *const *v)
{
	struct inventory_datastore *ds = row;

	copy(ds->name, sizeof(ds->name), v[0]);
	copy(ds->path, sizeof(ds->path), v[1]);
	ds->lease_s = to_u64(v[2]);
}

int inventory_datastore_put(struct store *store, const struct inventory_datastore *ds)
{
	struct numbers n;
	const char *params[] = {ds->name, ds->path, number(&n, 0, ds->lease_s)};
	int ret = store_exec(store,
	                     "INSERT INTO datastores (name, path, lease_s) VALUES ($1, $2, $3)"
	                     " ON CONFLICT (name) DO UPDATE SET path = excluded.path,"
	                     " lease_s = excluded.lease_s",
	                     3, params);

	return ret < 0 ? ret : 0;
}

int inventory_datastores(struct store *store, struct inventory_datastore *ds, int max)
{
	struct rows rows = {ds, sizeof(*ds), max, 0, fill_datastore};

	return query_rows(store, "SELECT name, path, lease_s FROM datastores ORDER BY name", 0,
	                  NULL, &rows);
}

#define TASK_COLUMNS "id, kind, target, detail, state, started_ms, ended_ms, result"

static void fill_task(void *row, const char *const *v)
{
	struct inventory_task *t = row;

	t->id = to_u64(v[0]);
	copy(t->kind, sizeof(t->kind), v[1]);
	copy(t->target, sizeof(t->target), v[2]);
	copy(t->detail, sizeof(t->detail), v[3]);
	copy(t->state, sizeof(t->state), v[4]);
	t->started_ms = to_u64(v[5]);
	t->ended_ms = to_u64(v[6]);
	copy(t->result, sizeof(t->result), v[7]);
}

static int first_u64(void *ctx, int nb_columns, const char *const *values)
{
	*(uint64_t *)ctx = nb_columns > 0 ? to_u64(values[0]) : 0;
	return 0; /* run the statement to its end (an INSERT ... RETURNING commits then) */
}

int inventory_task_begin(struct store *store, const char *kind, const char *target,
                         const char *detail, uint64_t *id)
{
	struct numbers n;
	const char *params[] = {kind, target, detail, number(&n, 0, inventory_now_ms())};

	*id = 0;
	int ret = store_query(store,
	                      "INSERT INTO tasks (kind, target, detail, state, started_ms)"
	                      " VALUES ($1, $2, $3, 'queued', $4) RETURNING id",
	                      4, params, first_u64, id);
	return ret < 0 ? ret : *id != 0 ? 0 : -EIO;
}

int inventory_task_state(struct store *store, uint64_t id, const char *state, const char *result)
{
	struct numbers n;
	bool done = strcmp(state, "success") == 0 || strcmp(state, "error") == 0;
	const char *params[] = {state, result != NULL ? result : "",
	                        number(&n, 0, done ? inventory_now_ms() : 0), number(&n, 1, id)};
	int ret = store_exec(
	        store, "UPDATE tasks SET state = $1, result = $2, ended_ms = $3 WHERE id = $4", 4,
	        params);

	return ret < 0 ? ret : ret == 0 ? -ENOENT : 0;
}

int inventory_task_get(struct store *store, uint64_t id, struct inventory_task *task)
{
	struct numbers n;

	return query_one(store, "SELECT " TASK_COLUMNS " FROM tasks WHERE id = $1",
	                 number(&n, 0, id), task, sizeof(*task), fill_task);
}

int inventory_tasks(struct store *store, struct inventory_task *tasks, int max)
{
	struct numbers n;
	const char *params[] = {number(&n, 0, (uint64_t)max)};
	struct rows rows = {tasks, sizeof(*tasks), max, 0, fill_task};

	return query_rows(store, "SELECT " TASK_COLUMNS " FROM tasks ORDER BY id DESC LIMIT $1", 1,
	                  params, &rows);
}

int inventory_tasks_abandon(struct store *store, const char *reason)
{
	struct numbers n;
	const char *params[] = {reason, number(&n, 0, inventory_now_ms())};

	return store_exec(store,
	                  "UPDATE tasks SET state = 'error', result = $1, ended_ms = $2"
	                  " WHERE state IN ('queued', 'running')",
	                  2, params);
}

int inventory_event(struct store *store, const char *severity, const char *object, const char *fmt,
                    ...)
{
	char message[INVENTORY_TEXT_MAX];
	struct numbers n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	const char *params[] = {number(&n, 0, inventory_now_ms()), severity, object, message};
	int ret = store_exec(store,
	                     "INSERT INTO events (at_ms, severity, object, message)"
	                     " VALUES ($1, $2, $3, $4)",
	                     4, params);
	return ret < 0 ? ret : 0;
}

static void fill_event(void *row, const char *const *v)
{
	struct inventory_event *e = row;

	e->id = to_u64(v[0]);
	e->at_ms = to_u64(v[1]);
	copy(e->severity, sizeof(e->severity), v[2]);
	copy(e->object, sizeof(e->object), v[3]);
	copy(e->message, sizeof(e->message), v[4]);
}

int inventory_events(struct store *store, struct inventory_event *events, int max)
{
	struct numbers n;
	const char *params[] = {number(&n, 0, (uint64_t)max)};
	struct rows rows = {events, sizeof(*events), max, 0, fill_event};

	return query_rows(store,
	                  "SELECT id, at_ms, severity, object, message FROM events"
	                  " ORDER BY id DESC LIMIT $1",
	                  1, params, &rows);
}
