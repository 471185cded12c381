/* ferryd's commands: the table entries and handlers for ports, the loop, logging, version. */
#ifndef FERRY_TOOLS_COMMANDS_H
#define FERRY_TOOLS_COMMANDS_H

struct ferryd;

/* Adds every ferryd command to ferryd->cli. Returns 0 or a negative errno. */
int commands_register(struct ferryd *ferryd);

#endif
