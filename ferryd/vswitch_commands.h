/* ferryd's switching commands: vswitches, port groups, port roles, the MAC table, errors. */
#ifndef FERRY_FERRYD_VSWITCH_COMMANDS_H
#define FERRY_FERRYD_VSWITCH_COMMANDS_H

struct cli_table;
struct host;

/* Adds the switching commands to a CLI table, with the host as their context. Returns 0 or a negative errno. */
int vswitch_commands_register(struct cli_table *cli, struct host *host);

#endif
