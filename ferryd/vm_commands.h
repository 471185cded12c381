/* ferryd's VM commands: vm create/list/show/pause/resume/destroy. */
#ifndef FERRY_FERRYD_VM_COMMANDS_H
#define FERRY_FERRYD_VM_COMMANDS_H

struct cli_table;
struct host;

/* Adds the VM commands to a CLI table, with the host as their context. Returns 0 or a negative errno. */
int vm_commands_register(struct cli_table *cli, struct host *host);

#endif
