/* ferryd's switching commands: vswitches, port groups, port roles, the MAC table, errors. */
#ifndef FERRY_TOOLS_VSWITCH_COMMANDS_H
#define FERRY_TOOLS_VSWITCH_COMMANDS_H

struct ferryd;

/* Adds the switching commands to ferryd->cli. Returns 0 or a negative errno. */
int vswitch_commands_register(struct ferryd *ferryd);

#endif
