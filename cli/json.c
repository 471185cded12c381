/* Reading ferry's own JSON answers: the one reader ferryctl, the tests and the benchmarks share. */
#include "json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *json_find(const char *json, const char *key)
{
	size_t len = strlen(key);

	for (const char *p = strchr(json, '"'); p != NULL; p = strchr(p + 1, '"')) {
		if (strncmp(p + 1, key, len) == 0 && p[len + 1] == '"' && p[len + 2] == ':') {
			p += len + 3;
			while (*p == ' ')
				p++;
			return p;
		}
	}
	return NULL;
}

bool json_u64(const char *json, const char *key, uint64_t *value)
{
	const char *p = json_find(json, key);

	return p != NULL && *p >= '0' && *p <= '9' && sscanf(p, "%" SCNu64, value) == 1;
}

double json_double(const char *json, const char *key, double absent)
{
	const char *p = json_find(json, key);
	char *end;

	if (p == NULL)
		return absent;
	double value = strtod(p, &end);
	return end != p ? value : absent;
}

const char *json_string_at(const char *p, char *out, size_t size)
{
	size_t n = 0;

	if (size > 0)
		out[0] = '\0';
	if (*p != '"')
		return NULL;
	/* The renderer escapes quotes, backslashes and control bytes; \uXXXX stays as written. */
	for (p++; *p != '\0' && *p != '"'; p++) {
		char c = *p;
		if (c == '\\' && p[1] != '\0') {
			p++;
			c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
		}
		if (n + 1 < size)
			out[n++] = c;
	}
	if (size > 0)
		out[n] = '\0';
	return *p == '"' ? p + 1 : NULL;
}

bool json_string(const char *json, const char *key, char *out, size_t size)
{
	const char *p = json_find(json, key);

	if (size == 0)
		return false;
	out[0] = '\0';
	return p != NULL && json_string_at(p, out, size) != NULL;
}

const char *json_skip_space(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

const char *json_skip(const char *p)
{
	unsigned int depth = 0;

	p = json_skip_space(p);
	do {
		if (*p == '"') {
			/* Past the string, escapes included. */
			for (p++; *p != '"'; p++) {
				if (*p == '\0' || (*p == '\\' && *++p == '\0'))
					return NULL;
			}
			p++;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (depth == 0)
				return NULL;
			depth--;
			p++;
		} else if (depth > 0 && *p != '\0' && strchr(",: \n\t\r", *p) != NULL) {
			p++;
		} else {
			/* A number or a literal ends at what ends values. */
			const char *start = p;
			while (*p != '\0' && strchr(",:}] \n\t\r", *p) == NULL)
				p++;
			if (p == start)
				return NULL;
		}
	} while (depth > 0);
	return p;
}
