/* ferry-center's storage: one query layer over SQLite (a file, the default) and PostgreSQL (a
 * libpq connection string), and a schema brought up to date by numbered steps. */
#ifndef FERRY_CENTER_STORE_H
#define FERRY_CENTER_STORE_H

#include <stddef.h>

struct store;

enum store_kind {
	STORE_SQLITE,
	STORE_POSTGRESQL,
};

/* Opens the store at where: a libpq connection string ("postgresql://...", "postgres://..."
 * or "key=value ..." with host= or dbname=) is PostgreSQL, anything else is an SQLite file
 * (created if absent). Returns 0, or a negative errno with the reason in why. */
int store_open(struct store **out, const char *where, char *why, size_t why_size);

/* Closes it. NULL is fine. */
void store_close(struct store *store);

enum store_kind store_kind(const struct store *store);

/* "sqlite" or "postgresql". */
const char *store_kind_name(enum store_kind kind);

/* One step of a schema: the statements (';'-separated) that take it from version - 1 to
 * version. "{id}" stands for an auto-numbered primary key column in the engine's words. */
struct store_step {
	int version;
	const char *sql;
};

/* Applies, in one transaction each, the steps past the store's version, and records it.
 * Returns the version reached, or -EIO with the reason in store_error() (a store newer than
 * the steps is refused with -EPROTO: an older ferry-center must not write it). */
int store_migrate(struct store *store, const struct store_step *steps, int nb_steps);

/* The schema version the store is at (0: none yet). */
int store_schema_version(const struct store *store);

/* Runs one statement. Its parameters are text, $1 to $n, each first used in that order (so one
 * text serves both engines); NULL is SQL's NULL. Returns the rows it changed, or -EIO with the
 * reason in store_error(). */
int store_exec(struct store *store, const char *sql, int nb_params, const char *const *params);

/* A row of a query's answer: its columns as text (NULL for SQL's NULL). Returning non-zero
 * stops the query. */
typedef int store_row_fn(void *ctx, int nb_columns, const char *const *values);

/* Runs a query and calls row for each row of its answer (row may be NULL). Returns the number
 * of rows, or -EIO with the reason in store_error(). */
int store_query(struct store *store, const char *sql, int nb_params, const char *const *params,
                store_row_fn *row, void *ctx);

/* Why the last call failed. */
const char *store_error(const struct store *store);

#endif
