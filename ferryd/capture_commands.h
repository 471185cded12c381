/* ferryd's capture commands: capture start|stop, show capture. */
#ifndef FERRY_FERRYD_CAPTURE_COMMANDS_H
#define FERRY_FERRYD_CAPTURE_COMMANDS_H

struct cli_table;
struct host;

/* Adds the capture commands to a CLI table, with the host as their context. Returns 0 or a
 * negative errno. */
int capture_commands_register(struct cli_table *cli, struct host *host);

#endif
