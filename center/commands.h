/* ferry-center's CLI: hosts, VMs, datastores, vMotion, maintenance, balance, tasks, events. */
#ifndef FERRY_CENTER_COMMANDS_H
#define FERRY_CENTER_COMMANDS_H

struct center;
struct cli_table;

/* Adds ferry-center's commands to a CLI table. Returns 0 or a negative errno. */
int center_commands_register(struct cli_table *cli, struct center *center);

#endif
