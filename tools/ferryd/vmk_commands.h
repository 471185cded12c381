/* ferryd's VMkernel commands: vmk add/del, show vmk, show arp, arp flush. */
#ifndef FERRY_TOOLS_VMK_COMMANDS_H
#define FERRY_TOOLS_VMK_COMMANDS_H

struct ferryd;

/* Adds the VMkernel commands to ferryd->cli. Returns 0 or a negative errno. */
int vmk_commands_register(struct ferryd *ferryd);

#endif
