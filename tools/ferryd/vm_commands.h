/* ferryd's VM commands: vm create/list/show/pause/resume/destroy. */
#ifndef FERRY_TOOLS_VM_COMMANDS_H
#define FERRY_TOOLS_VM_COMMANDS_H

struct ferryd;

/* Adds the VM commands to ferryd->cli. Returns 0 or a negative errno. */
int vm_commands_register(struct ferryd *ferryd);

#endif
