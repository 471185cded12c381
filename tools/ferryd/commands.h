/* ferryd's commands: the table entries and handlers for ports, the loop, logging, version. */
#ifndef FERRY_TOOLS_COMMANDS_H
#define FERRY_TOOLS_COMMANDS_H

#include <stdint.h>

struct ferryd;

/* Adds every ferryd command to ferryd->cli. Returns 0 or a negative errno. */
int commands_register(struct ferryd *ferryd);

/* Parses a bit rate: a number with an optional k, M or G (and bit/s). 0 or -EINVAL. */
int commands_parse_rate(const char *text, uint64_t *bps);

/* Parses milliseconds, decimals allowed, up to a minute, into nanoseconds. 0 or -EINVAL. */
int commands_parse_ms(const char *text, uint64_t *ns);

#endif
