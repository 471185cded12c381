/* ferryd's VMkernel commands: vmk add/del, show vmk, show arp, arp flush. */
#ifndef FERRY_FERRYD_VMK_COMMANDS_H
#define FERRY_FERRYD_VMK_COMMANDS_H

struct cli_table;
struct host;

/* Adds the VMkernel commands to a CLI table, with the host as their context. Returns 0 or a negative errno. */
int vmk_commands_register(struct cli_table *cli, struct host *host);

#endif
