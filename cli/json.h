/* Reading ferry's own JSON answers ("key": value, as cli/reply renders them): the one reader
 * ferryctl, the tests and the benchmarks share. Not a general JSON parser: a key is found by
 * its first occurrence. */
#ifndef FERRY_CLI_JSON_H
#define FERRY_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The text of the value after the first "key": in json, NULL if the key is absent. */
const char *json_find(const char *json, const char *key);

/* An unsigned integer value; false if the key is absent or its value is not one. */
bool json_u64(const char *json, const char *key, uint64_t *value);

/* A number value, or absent when the key is absent or its value is not a number. */
double json_double(const char *json, const char *key, double absent);

/* A string value, unescaped and cut to size; false (and "") if the key is absent or its value is
 * not a string. */
bool json_string(const char *json, const char *key, char *out, size_t size);

/* The string at p (at its opening quote), unescaped into out and cut to size; returns what
 * follows its closing quote, or NULL if it has none. */
const char *json_string_at(const char *p, char *out, size_t size);

/* What follows the value at p (spaces before it skipped): a string, a number, a literal, or an
 * object or list with all it holds; NULL if it does not end. */
const char *json_skip(const char *p);

/* p past spaces and newlines. */
const char *json_skip_space(const char *p);

#endif
