/* Every command set of ferryd on one CLI table: what the daemon, the tests and the benchmarks
 * drive a host with. */
#ifndef FERRY_FERRYD_COMMANDS_H
#define FERRY_FERRYD_COMMANDS_H

struct cli_table;
struct host;

/* Initialises a CLI table and registers every command set on it, with the host as their
 * context. Returns 0 or a negative errno. */
int ferryd_commands_init(struct cli_table *cli, struct host *host);

#endif
