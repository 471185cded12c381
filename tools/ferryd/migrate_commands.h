/* ferryd's migration commands: migrate listen/unlisten/start/status/cancel/counters. */
#ifndef FERRY_TOOLS_MIGRATE_COMMANDS_H
#define FERRY_TOOLS_MIGRATE_COMMANDS_H

struct ferryd;

/* Adds the migration commands to ferryd->cli. Returns 0 or a negative errno. */
int migrate_commands_register(struct ferryd *ferryd);

#endif
