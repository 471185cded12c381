/* Typed command arguments: one parser per type (numbers, on/off, IPv4 with or without a prefix,
 * MAC, rate, milliseconds, seconds, percentage, size), used by every command. */
#ifndef FERRY_CLI_ARGS_H
#define FERRY_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

struct cli_args;
struct reply;
struct rte_ether_addr;

/* Typed arguments: each parses the argument of that name. An absent optional argument leaves
 * *value untouched and returns 0; a malformed one is said in reply ("name: 'text' is not ...")
 * and returns -EINVAL. */

/* An unsigned decimal (or 0x hex) within [min, max]. */
int cli_arg_u64(const struct cli_args *args, const char *name, uint64_t min, uint64_t max,
                uint64_t *value, struct reply *reply);

/* on or off. */
int cli_arg_bool(const struct cli_args *args, const char *name, bool *value, struct reply *reply);

/* An IPv4 address, A.B.C.D, in network byte order. */
int cli_arg_ipv4(const struct cli_args *args, const char *name, uint32_t *ip, struct reply *reply);

/* An IPv4 address with its prefix, A.B.C.D/N; or, when netmask_name is not NULL, A.B.C.D with
 * the netmask W.X.Y.Z in the argument of that name (the form vSphere's screens use). The
 * address may not be 0.0.0.0. */
int cli_arg_ipv4_prefix(const struct cli_args *args, const char *name, const char *netmask_name,
                        uint32_t *ip, uint8_t *prefix_len, struct reply *reply);

/* A MAC address; a unicast, non-zero one if unicast is true. */
int cli_arg_mac(const struct cli_args *args, const char *name, bool unicast,
                struct rte_ether_addr *mac, struct reply *reply);

/* A bit rate of at least min: 1G, 500M, 2.5gbit, 10k, or plain bit/s. */
int cli_arg_rate(const struct cli_args *args, const char *name, uint64_t min, uint64_t *bps,
                 struct reply *reply);

/* Milliseconds, decimals allowed, from min_ns up to a minute, into nanoseconds. */
int cli_arg_ms(const struct cli_args *args, const char *name, uint64_t min_ns, uint64_t *ns,
               struct reply *reply);

/* A size in units of unit bytes within [min, max]: a bare number counts units, a number with K,
 * M, G or T (and an optional B or iB) counts KiB to TiB and must make whole units ("mem 2G" is
 * 2048 for MiB). */
int cli_arg_size(const struct cli_args *args, const char *name, uint64_t unit, uint64_t min,
                 uint64_t max, uint64_t *value, struct reply *reply);

/* Seconds, decimals allowed, within [min, max], into nanoseconds. */
int cli_arg_seconds(const struct cli_args *args, const char *name, double min, double max,
                    uint64_t *ns, struct reply *reply);

/* A percentage, 0 to 100, "0.5" or "0.5%", into parts per million. */
int cli_arg_percent(const struct cli_args *args, const char *name, uint32_t *ppm,
                    struct reply *reply);

#endif
