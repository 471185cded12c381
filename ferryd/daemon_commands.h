/* ferryd's own commands: ports, the worker loop, logging, the version. */
#ifndef FERRY_FERRYD_DAEMON_COMMANDS_H
#define FERRY_FERRYD_DAEMON_COMMANDS_H

struct cli_table;
struct host;

/* Adds the port, loop, log and version commands to a CLI table, with the host as their
 * context. Returns 0 or a negative errno. */
int daemon_commands_register(struct cli_table *cli, struct host *host);

#endif
