/* ferry-center's inventory, the same suite on each engine: SQLite by default, PostgreSQL when
 * FERRY_INVENTORY holds a connection string (tests/interop/inventory.sh starts a server). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "center/inventory.h"

static char where[512];
static struct store *store;

/* An empty store: a fresh SQLite file, or PostgreSQL's tables dropped. */
static void setup(void)
{
	char why[256];
	const char *env = getenv("FERRY_INVENTORY");

	if (env != NULL && env[0] != '\0') {
		/* Each test process in a schema of its own: Criterion runs several at once. */
		char schema[64];
		snprintf(schema, sizeof(schema), "test_%d", getpid());
		cr_assert_eq(store_open(&store, env, why, sizeof(why)), 0, "%s", why);
		cr_assert_eq(store_kind(store), STORE_POSTGRESQL);
		char sql[200];
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
		cr_assert_geq(store_exec(store, sql, 0, NULL), 0, "%s", store_error(store));
		snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
		cr_assert_geq(store_exec(store, sql, 0, NULL), 0, "%s", store_error(store));
		store_close(store);
		snprintf(where, sizeof(where), "%s options='-csearch_path=%s'", env, schema);
	} else {
		snprintf(where, sizeof(where), "/tmp/ferry-inventory-%d.db", getpid());
		unlink(where);
	}
	cr_assert_eq(inventory_open(&store, where, why, sizeof(why)), 0, "%s", why);
}

static void teardown(void)
{
	store_close(store);
	store = NULL;
	if (getenv("FERRY_INVENTORY") != NULL && getenv("FERRY_INVENTORY")[0] != '\0') {
		char why[256], sql[100];
		cr_assert_eq(store_open(&store, getenv("FERRY_INVENTORY"), why, sizeof(why)), 0);
		snprintf(sql, sizeof(sql), "DROP SCHEMA test_%d CASCADE", getpid());
		store_exec(store, sql, 0, NULL);
		store_close(store);
		store = NULL;
	}
	if (getenv("FERRY_INVENTORY") == NULL || getenv("FERRY_INVENTORY")[0] == '\0') {
		char path[600];
		unlink(where);
		snprintf(path, sizeof(path), "%s-wal", where);
		unlink(path);
		snprintf(path, sizeof(path), "%s-shm", where);
		unlink(path);
	}
}

TestSuite(inventory, .init = setup, .fini = teardown);

static struct inventory_host host(const char *name, const char *address)
{
	struct inventory_host h = {0};

	snprintf(h.name, sizeof(h.name), "%s", name);
	snprintf(h.address, sizeof(h.address), "%s", address);
	snprintf(h.state, sizeof(h.state), "connected");
	snprintf(h.vmotion_ip, sizeof(h.vmotion_ip), "50.50.50.1");
	h.memory_mb = 512;
	h.free_mb = 4096;
	h.last_seen_ms = 1700000000123ull;
	return h;
}

static struct inventory_vm vm(const char *name, uint64_t mb)
{
	struct inventory_vm v = {0};

	snprintf(v.name, sizeof(v.name), "%s", name);
	snprintf(v.state, sizeof(v.state), "running");
	snprintf(v.portgroup, sizeof(v.portgroup), "VM Network");
	v.memory_mb = mb;
	v.dirty_rate = 1000;
	v.updated_ms = 42;
	return v;
}

Test(inventory, the_schema_is_at_its_last_version_and_a_newer_store_is_refused)
{
	char why[256];

	cr_assert_eq(store_schema_version(store), 3);
	store_close(store);
	/* Reopened: nothing to do, nothing lost. */
	cr_assert_eq(inventory_open(&store, where, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(store_schema_version(store), 3);
	const char *v[] = {"99"};
	cr_assert_geq(store_exec(store, "INSERT INTO schema_version (version) VALUES ($1)", 1, v),
	              0);
	store_close(store);
	store = NULL;
	cr_assert_eq(inventory_open(&store, where, why, sizeof(why)), -EPROTO);
	cr_assert(strstr(why, "newer") != NULL, "%s", why);
	cr_assert_eq(inventory_open(&store, "host=/nonexistent-dir dbname=x connect_timeout=2", why,
	                            sizeof(why)),
	             -ECONNREFUSED);
	cr_assert(strstr(why, "PostgreSQL") != NULL, "%s", why);
	/* For the teardown: a store again, at the newer version (closing is all it does). */
	char why2[256];
	cr_assert_eq(store_open(&store, where, why2, sizeof(why2)), 0);
}

/* A store an older ferry-center made (version 1's hosts table, one host in it) is brought
 * forward on open: the later steps add their columns, the host keeps its row. */
Test(inventory, an_older_store_is_brought_forward_with_its_rows)
{
	char why[256];
	struct inventory_host got;

	store_close(store);
	cr_assert_eq(store_open(&store, where, why, sizeof(why)), 0, "%s", why);
	static const char *const drop[] = {"DROP TABLE hosts", "DROP TABLE schema_version"};
	for (unsigned int i = 0; i < 2; i++)
		cr_assert_geq(store_exec(store, drop[i], 0, NULL), 0, "%s", store_error(store));
	static const struct store_step version1[] = {
	        {1, "CREATE TABLE hosts (name TEXT PRIMARY KEY, address TEXT NOT NULL,"
	            " state TEXT NOT NULL, maintenance INTEGER NOT NULL DEFAULT 0,"
	            " memory_mb BIGINT NOT NULL DEFAULT 0, free_mb BIGINT NOT NULL DEFAULT 0,"
	            " last_seen_ms BIGINT NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '');"
	            "INSERT INTO hosts (name, address, state) VALUES ('old', '/run/old.sock', "
	            "'connected')"}};
	cr_assert_eq(store_migrate(store, version1, 1), 1, "%s", store_error(store));
	store_close(store);
	cr_assert_eq(inventory_open(&store, where, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(store_schema_version(store), 3);
	cr_assert_eq(inventory_host_get(store, "old", &got), 0);
	cr_assert_str_eq(got.address, "/run/old.sock");
	cr_assert_str_eq(got.fingerprint, "", "the new columns take their defaults");
	cr_assert_str_eq(got.portgroups, "");
}

Test(inventory, hosts_are_added_updated_listed_and_removed_with_their_vms)
{
	struct inventory_host a = host("host-a", "/run/ferry/a.sock"),
	                      b = host("host-b", "10.0.0.2:9443");
	struct inventory_host got, list[4];

	cr_assert_eq(inventory_host_put(store, &b), 0);
	cr_assert_eq(inventory_host_put(store, &a), 0);
	snprintf(b.fingerprint, sizeof(b.fingerprint), "AB:CD");
	snprintf(b.portgroups, sizeof(b.portgroups), "VM Network\nvMotion");
	snprintf(b.state, sizeof(b.state), "disconnected");
	snprintf(b.reason, sizeof(b.reason), "connection refused");
	b.maintenance = true;
	b.free_mb = 1;
	cr_assert_eq(inventory_host_put(store, &b), 0, "an update, not a second row");
	cr_assert_eq(inventory_hosts(store, list, 4), 2);
	cr_assert_str_eq(list[0].name, "host-a", "by name");
	cr_assert_eq(inventory_host_get(store, "host-b", &got), 0);
	cr_assert_str_eq(got.state, "disconnected");
	cr_assert_str_eq(got.reason, "connection refused");
	cr_assert_str_eq(got.fingerprint, "AB:CD");
	cr_assert_str_eq(got.portgroups, "VM Network\nvMotion");
	cr_assert_str_eq(got.address, "10.0.0.2:9443");
	cr_assert(got.maintenance);
	cr_assert_eq(got.free_mb, 1);
	cr_assert_eq(got.last_seen_ms, 1700000000123ull, "64-bit times survive");
	struct inventory_vm vms[] = {vm("web01", 256), vm("web02", 512)};
	cr_assert_eq(inventory_vms_replace(store, "host-b", vms, 2), 0);
	cr_assert_eq(inventory_host_remove(store, "host-b"), 0);
	cr_assert_eq(inventory_host_get(store, "host-b", &got), -ENOENT);
	cr_assert_eq(inventory_vms(store, NULL, vms, 2), 0, "its VMs went with it");
	cr_assert_eq(inventory_host_remove(store, "host-b"), -ENOENT);
}

Test(inventory, a_hosts_report_replaces_its_vms_and_a_migrated_vm_moves)
{
	struct inventory_vm on_a[] = {vm("web01", 256), vm("web02", 512), vm("db01", 1024)};
	struct inventory_vm on_b[] = {vm("web02", 512)};
	struct inventory_vm got[8], one;

	cr_assert_eq(inventory_vms_replace(store, "host-a", on_a, 3), 0);
	cr_assert_eq(inventory_vms(store, NULL, got, 8), 3);
	cr_assert_str_eq(got[0].name, "db01");
	/* web02 migrated: host-b reports it before host-a's next report. */
	cr_assert_eq(inventory_vms_replace(store, "host-b", on_b, 1), 0);
	cr_assert_eq(inventory_vm_get(store, "web02", &one), 0);
	cr_assert_str_eq(one.host, "host-b");
	cr_assert_eq(inventory_vms_replace(store, "host-a", on_a, 1), 0, "host-a now has web01");
	cr_assert_eq(inventory_vms(store, "host-a", got, 8), 1);
	cr_assert_eq(inventory_vms(store, NULL, got, 8), 2);
	cr_assert_eq(inventory_vm_get(store, "db01", &one), -ENOENT, "gone with host-a's report");
	cr_assert_eq(inventory_vms(store, NULL, got, 1), 1, "a list stops at its room");
}

Test(inventory, text_from_anyone_is_stored_as_text)
{
	/* Parameters, never SQL: quotes, semicolons and comments are names like any other. */
	const char *nasty = "x'); DROP TABLE hosts; --\"";
	struct inventory_host h = host(nasty, "/tmp/a b';");
	struct inventory_host got;
	uint64_t id;

	cr_assert_eq(inventory_host_put(store, &h), 0);
	cr_assert_eq(inventory_host_get(store, nasty, &got), 0);
	cr_assert_str_eq(got.address, "/tmp/a b';");
	cr_assert_eq(inventory_event(store, "info", nasty, "%s", nasty), 0);
	cr_assert_eq(inventory_task_begin(store, "vmotion", nasty, nasty, &id), 0);
	struct inventory_task t;
	cr_assert_eq(inventory_task_get(store, id, &t), 0);
	cr_assert_str_eq(t.target, nasty);
	struct inventory_host list[2];
	cr_assert_eq(inventory_hosts(store, list, 2), 1, "the table is there");
}

Test(inventory, tasks_run_their_course_and_a_stopped_daemons_are_abandoned)
{
	uint64_t first, second, third;
	struct inventory_task t, list[8];

	cr_assert_eq(inventory_task_begin(store, "host-add", "host-a", "/run/a.sock", &first), 0);
	cr_assert_eq(inventory_task_begin(store, "vmotion", "web01", "host-b", &second), 0);
	cr_assert_eq(inventory_task_begin(store, "balance", "cluster", "dry-run", &third), 0);
	cr_assert(first < second && second < third, "ids in order");
	cr_assert_eq(inventory_task_get(store, second, &t), 0);
	cr_assert_str_eq(t.state, "queued");
	cr_assert_gt(t.started_ms, 0);
	cr_assert_eq(t.ended_ms, 0);
	cr_assert_eq(inventory_task_state(store, first, "running", ""), 0);
	cr_assert_eq(inventory_task_state(store, first, "success", "host-a added"), 0);
	cr_assert_eq(inventory_task_state(store, second, "running", "migrating"), 0);
	cr_assert_eq(inventory_task_get(store, first, &t), 0);
	cr_assert_str_eq(t.result, "host-a added");
	cr_assert_geq(t.ended_ms, t.started_ms);
	cr_assert_eq(inventory_tasks(store, list, 8), 3);
	cr_assert_eq(list[0].id, third, "newest first");
	cr_assert_eq(inventory_tasks_abandon(store, "ferry-center stopped"), 2);
	cr_assert_eq(inventory_task_get(store, second, &t), 0);
	cr_assert_str_eq(t.state, "error");
	cr_assert_str_eq(t.result, "ferry-center stopped");
	cr_assert_eq(inventory_task_get(store, first, &t), 0);
	cr_assert_str_eq(t.state, "success", "a finished task keeps its outcome");
	cr_assert_eq(inventory_task_state(store, 9999, "error", ""), -ENOENT);
	cr_assert_eq(inventory_task_get(store, 9999, &t), -ENOENT);
}

Test(inventory, events_newest_first_and_datastores)
{
	struct inventory_event e[4];
	struct inventory_datastore ds = {.lease_s = 15}, got[2];

	cr_assert_eq(inventory_event(store, "info", "host-a", "connected (%d VMs)", 3), 0);
	cr_assert_eq(inventory_event(store, "warning", "host-b", "disconnected"), 0);
	cr_assert_eq(inventory_events(store, e, 4), 2);
	cr_assert_str_eq(e[0].object, "host-b");
	cr_assert_str_eq(e[1].message, "connected (3 VMs)");
	snprintf(ds.name, sizeof(ds.name), "ds1");
	snprintf(ds.path, sizeof(ds.path), "/mnt/ds1");
	cr_assert_eq(inventory_datastore_put(store, &ds), 0);
	ds.lease_s = 5;
	cr_assert_eq(inventory_datastore_put(store, &ds), 0);
	cr_assert_eq(inventory_datastores(store, got, 2), 1);
	cr_assert_eq(got[0].lease_s, 5);
}
