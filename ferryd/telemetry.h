/* ferryd's DPDK telemetry endpoints: /ferry/ports, /ferry/port/stats,<name>, /ferry/fdb/stats,
 * /ferry/vms, /ferry/migrations, /ferry/loop, /ferry/capture, read with dpdk-telemetry.py. */
#ifndef FERRY_FERRYD_TELEMETRY_H
#define FERRY_FERRYD_TELEMETRY_H

/* Registers the endpoints; each answers from the CLI at cli_socket (the same JSON as ferryctl
 * -j, run on the main lcore as every command is). EAL must be up. Returns 0 or a negative
 * errno. */
int telemetry_endpoints_register(const char *cli_socket);

/* Makes the endpoints answer an error from now on (ferryd is going). */
void telemetry_endpoints_unregister(void);

#endif
