/* A command's answer as data: built once by the handler, rendered as human text or as JSON. */
#ifndef FERRY_CLI_REPLY_H
#define FERRY_CLI_REPLY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct reply;

enum reply_format {
	REPLY_FORMAT_TEXT, /* aligned "key  value" lines and tables, for people */
	REPLY_FORMAT_JSON, /* one JSON object, for scripts */
};

/* Creates an empty reply (an empty object). NULL when out of memory. */
struct reply *reply_new(void);

/* Frees a reply and everything in it. NULL is fine. */
void reply_free(struct reply *reply);

/* Opens an object: a member of the current object (key set) or an element of the current list
 * (key NULL). Every begin has its end. */
void reply_object_begin(struct reply *reply, const char *key);
void reply_object_end(struct reply *reply);

/* Opens a list, as reply_object_begin does. A list of objects with the same keys reads as a
 * table in text. */
void reply_list_begin(struct reply *reply, const char *key);
void reply_list_end(struct reply *reply);

/* Adds a string member (key NULL inside a list), printf style. */
void reply_str(struct reply *reply, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Adds a string member that is a document of its own (Prometheus text, say): text renders it
 * as it is, without its key; JSON as a string. */
void reply_document(struct reply *reply, const char *key, const char *text);

/* Adds an unsigned integer member. */
void reply_u64(struct reply *reply, const char *key, uint64_t value);

/* Adds a signed integer member. */
void reply_i64(struct reply *reply, const char *key, int64_t value);

/* Adds a number shown with the given number of decimals. */
void reply_double(struct reply *reply, const char *key, double value, int decimals);

/* Adds a boolean member. */
void reply_bool(struct reply *reply, const char *key, bool value);

/* Marks the reply failed with a message (the first error wins) and returns err, so a handler
 * can `return reply_error(reply, -EINVAL, "...")`. */
int reply_error(struct reply *reply, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* As reply_error, with a va_list. */
int reply_verror(struct reply *reply, int err, const char *fmt, va_list ap);

/* True once reply_error was called (or memory ran out while building). */
bool reply_failed(const struct reply *reply);

/* The error message, or NULL. */
const char *reply_error_message(const struct reply *reply);

/* Renders the reply (or its error) into a new NUL-terminated string; *len gets its length.
 * Text ends with a newline unless empty. NULL when out of memory. */
char *reply_render(const struct reply *reply, enum reply_format format, size_t *len);

#endif
