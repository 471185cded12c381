/* ferryd's show metrics: every counter in the Prometheus text format. */
#ifndef FERRY_FERRYD_METRICS_COMMANDS_H
#define FERRY_FERRYD_METRICS_COMMANDS_H

struct cli_table;
struct host;

/* Adds show metrics to a CLI table, with the host as its context. Returns 0 or a negative
 * errno. */
int metrics_commands_register(struct cli_table *cli, struct host *host);

#endif
