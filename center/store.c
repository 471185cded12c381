/* ferry-center's storage over SQLite or PostgreSQL, behind one set of calls. */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

struct store {
	enum store_kind kind;
	sqlite3 *sqlite;
	PGconn *pg;
	char error[256];
};

static int fail(struct store *store, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(store->error, sizeof(store->error), fmt, ap);
	va_end(ap);
	return -EIO;
}

static bool is_connection_string(const char *where)
{
	return strncmp(where, "postgresql://", 13) == 0 || strncmp(where, "postgres://", 11) == 0 ||
	       strstr(where, "host=") != NULL || strstr(where, "dbname=") != NULL;
}

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int store_open(struct store **out, const char *where, char *why, size_t why_size)
{
	struct store *store = calloc(1, sizeof(*store));

	if (store == NULL) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	if (is_connection_string(where)) {
		store->kind = STORE_POSTGRESQL;
		store->pg = PQconnectdb(where);
		if (PQstatus(store->pg) != CONNECTION_OK) {
			snprintf(why, why_size, "PostgreSQL: %s", PQerrorMessage(store->pg));
			why[strcspn(why, "\n")] = '\0';
			store_close(store);
			return -ECONNREFUSED;
		}
		/* Notices (as "relation exists, skipping") are not errors: keep them off stderr. */
		PQsetNoticeProcessor(store->pg, ignore_notice, NULL);
	} else {
		store->kind = STORE_SQLITE;
		if (sqlite3_open_v2(where, &store->sqlite,
		                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		                            SQLITE_OPEN_FULLMUTEX,
		                    NULL) != SQLITE_OK) {
			snprintf(why, why_size, "SQLite %s: %s", where,
			         store->sqlite != NULL ? sqlite3_errmsg(store->sqlite)
			                               : "out of memory");
			store_close(store);
			return -EIO;
		}
		/* Another process may hold the file for a moment (a backup, sqlite3 reading it). */
		sqlite3_busy_timeout(store->sqlite, 5000);
		char *message = NULL;
		if (sqlite3_exec(store->sqlite,
		                 "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL", NULL, NULL,
		                 &message) != SQLITE_OK) {
			snprintf(why, why_size, "SQLite %s: %s", where, message);
			sqlite3_free(message);
			store_close(store);
			return -EIO;
		}
	}
	*out = store;
	return 0;
}

void store_close(struct store *store)
{
	if (store == NULL)
		return;
	if (store->sqlite != NULL)
		sqlite3_close(store->sqlite);
	if (store->pg != NULL)
		PQfinish(store->pg);
	free(store);
}

enum store_kind store_kind(const struct store *store)
{
	return store->kind;
}

const char *store_kind_name(enum store_kind kind)
{
	return kind == STORE_POSTGRESQL ? "postgresql" : "sqlite";
}

const char *store_error(const struct store *store)
{
	return store->error;
}

/* SQLite: prepares, binds the text parameters and steps through the rows. */
static int sqlite_run(struct store *store, const char *sql, int nb_params,
                      const char *const *params, store_row_fn *row, void *ctx, bool changes)
{
	sqlite3_stmt *stmt = NULL;
	const char *values[64];
	int rows = 0, rc;

	if (sqlite3_prepare_v2(store->sqlite, sql, -1, &stmt, NULL) != SQLITE_OK)
		return fail(store, "%s", sqlite3_errmsg(store->sqlite));
	if (sqlite3_bind_parameter_count(stmt) != nb_params) {
		sqlite3_finalize(stmt);
		return fail(store, "%d parameters for a statement of %d", nb_params,
		            sqlite3_bind_parameter_count(stmt));
	}
	for (int i = 0; i < nb_params; i++)
		if ((params[i] == NULL ? sqlite3_bind_null(stmt, i + 1)
		                       : sqlite3_bind_text(stmt, i + 1, params[i], -1,
		                                           SQLITE_TRANSIENT)) != SQLITE_OK) {
			sqlite3_finalize(stmt);
			return fail(store, "%s", sqlite3_errmsg(store->sqlite));
		}
	int columns = sqlite3_column_count(stmt);
	if (columns > (int)(sizeof(values) / sizeof(values[0])))
		columns = (int)(sizeof(values) / sizeof(values[0]));
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		rows++;
		for (int c = 0; c < columns; c++)
			values[c] = (const char *)sqlite3_column_text(stmt, c);
		if (row != NULL && row(ctx, columns, values) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		int ret = fail(store, "%s", sqlite3_errmsg(store->sqlite));
		sqlite3_finalize(stmt);
		return ret;
	}
	sqlite3_finalize(stmt);
	return changes ? sqlite3_changes(store->sqlite) : rows;
}

static int pg_run(struct store *store, const char *sql, int nb_params, const char *const *params,
                  store_row_fn *row, void *ctx, bool changes)
{
	const char *values[64];
	PGresult *result = PQexecParams(store->pg, sql, nb_params, NULL, params, NULL, NULL, 0);
	ExecStatusType status = PQresultStatus(result);

	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
		int ret = fail(store, "%s", PQresultErrorMessage(result));
		store->error[strcspn(store->error, "\n")] = '\0';
		PQclear(result);
		return ret;
	}
	int rows = PQntuples(result), columns = PQnfields(result);
	if (columns > (int)(sizeof(values) / sizeof(values[0])))
		columns = (int)(sizeof(values) / sizeof(values[0]));
	for (int r = 0; row != NULL && r < rows; r++) {
		for (int c = 0; c < columns; c++)
			values[c] = PQgetisnull(result, r, c) ? NULL : PQgetvalue(result, r, c);
		if (row(ctx, columns, values) != 0)
			break;
	}
	int ret = changes ? atoi(PQcmdTuples(result)) : rows;
	PQclear(result);
	return ret;
}

int store_exec(struct store *store, const char *sql, int nb_params, const char *const *params)
{
	return store->kind == STORE_SQLITE
	               ? sqlite_run(store, sql, nb_params, params, NULL, NULL, true)
	               : pg_run(store, sql, nb_params, params, NULL, NULL, true);
}

int store_query(struct store *store, const char *sql, int nb_params, const char *const *params,
                store_row_fn *row, void *ctx)
{
	return store->kind == STORE_SQLITE
	               ? sqlite_run(store, sql, nb_params, params, row, ctx, false)
	               : pg_run(store, sql, nb_params, params, row, ctx, false);
}

static int first_int(void *ctx, int nb_columns, const char *const *values)
{
	*(int *)ctx = nb_columns > 0 && values[0] != NULL ? atoi(values[0]) : 0;
	return 1;
}

int store_schema_version(const struct store *store)
{
	int version = 0;

	store_query((struct store *)store, "SELECT MAX(version) FROM schema_version", 0, NULL,
	            first_int, &version);
	return version;
}

/* Runs a step's statements one by one, "{id}" put in the engine's words. */
static int run_step(struct store *store, const char *sql)
{
	const char *id = store->kind == STORE_SQLITE
	                         ? "INTEGER PRIMARY KEY AUTOINCREMENT"
	                         : "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY";
	char statement[2048];

	while (*sql != '\0') {
		size_t len = strcspn(sql, ";"), n = 0;
		for (size_t i = 0; i < len && n + 64 < sizeof(statement); i++) {
			if (strncmp(&sql[i], "{id}", 4) == 0) {
				n += (size_t)snprintf(&statement[n], sizeof(statement) - n, "%s",
				                      id);
				i += 3;
			} else {
				statement[n++] = sql[i];
			}
		}
		statement[n] = '\0';
		if (strspn(statement, " \t\n") != n && store_exec(store, statement, 0, NULL) < 0)
			return -EIO;
		sql += len + (sql[len] == ';');
	}
	return 0;
}

int store_migrate(struct store *store, const struct store_step *steps, int nb_steps)
{
	int version;

	if (store_exec(store,
	               "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", 0,
	               NULL) < 0)
		return -EIO;
	version = store_schema_version(store);
	if (nb_steps > 0 && version > steps[nb_steps - 1].version) {
		fail(store, "the store is at schema version %d, newer than this ferry-center's %d",
		     version, steps[nb_steps - 1].version);
		return -EPROTO;
	}
	for (int s = 0; s < nb_steps; s++) {
		if (steps[s].version <= version)
			continue;
		char text[16];
		const char *param[] = {text};
		snprintf(text, sizeof(text), "%d", steps[s].version);
		if (store_exec(store, "BEGIN", 0, NULL) < 0)
			return -EIO;
		if (run_step(store, steps[s].sql) < 0 ||
		    store_exec(store, "INSERT INTO schema_version (version) VALUES ($1)", 1,
		               param) < 0) {
			char reason[sizeof(store->error)];
			snprintf(reason, sizeof(reason), "%s", store->error);
			store_exec(store, "ROLLBACK", 0, NULL);
			return fail(store, "schema version %d: %s", steps[s].version, reason);
		}
		if (store_exec(store, "COMMIT", 0, NULL) < 0)
			return -EIO;
		version = steps[s].version;
	}
	return version;
}
