/* ferryd's migration commands: migrate listen/unlisten/start/status/cancel/counters. */
#ifndef FERRY_FERRYD_MIGRATE_COMMANDS_H
#define FERRY_FERRYD_MIGRATE_COMMANDS_H

struct cli_table;
struct host;

/* Adds the migration commands to a CLI table, with the host as their context. Returns 0 or a negative errno. */
int migrate_commands_register(struct cli_table *cli, struct host *host);

#endif
