/* ferryd's own commands: ports, the worker loop, logging, the version. */
#ifndef FERRY_FERRYD_DAEMON_COMMANDS_H
#define FERRY_FERRYD_DAEMON_COMMANDS_H

#include <stdint.h>

struct cli_table;
struct host;

/* Adds the port, loop, log and version commands to a CLI table, with the host as their
 * context. Returns 0 or a negative errno. */
int daemon_commands_register(struct cli_table *cli, struct host *host);

/* Parses a bit rate: a number with an optional k, M or G (and bit/s). 0 or -EINVAL. */
int commands_parse_rate(const char *text, uint64_t *bps);

/* Parses milliseconds, decimals allowed, up to a minute, into nanoseconds. 0 or -EINVAL. */
int commands_parse_ms(const char *text, uint64_t *ns);

#endif
