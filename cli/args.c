/* Typed command arguments: one parser per type, each refusing with the argument named. */
#include "args.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <rte_common.h>
#include <rte_ether.h>

#include "cli/cli.h"

int cli_arg_bool(const struct cli_args *args, const char *name, bool *value, struct reply *reply)
{
	const char *text = cli_arg(args, name);

	if (text == NULL)
		return 0;
	if (strcmp(text, "on") == 0)
		*value = true;
	else if (strcmp(text, "off") == 0)
		*value = false;
	else
		return reply_error(reply, -EINVAL, "%s: '%.32s' is not on or off", name, text);
	return 0;
}

/* A dotted quad, strictly: inet_pton's own rules (no shorthand, no octal). */
static int parse_ipv4(const char *text, uint32_t *ip)
{
	struct in_addr addr;

	if (inet_pton(AF_INET, text, &addr) != 1)
		return -EINVAL;
	*ip = addr.s_addr;
	return 0;
}

int cli_arg_ipv4(const struct cli_args *args, const char *name, uint32_t *ip, struct reply *reply)
{
	const char *text = cli_arg(args, name);

	if (text != NULL && parse_ipv4(text, ip) < 0)
		return reply_error(reply, -EINVAL, "%s: '%.32s' is not an IPv4 address", name,
		                   text);
	return 0;
}

int cli_arg_ipv4_prefix(const struct cli_args *args, const char *name, const char *netmask_name,
                        uint32_t *ip, uint8_t *prefix_len, struct reply *reply)
{
	const char *given = cli_arg(args, name);
	const char *netmask = netmask_name != NULL ? cli_arg(args, netmask_name) : NULL;
	const char *forms =
	        netmask_name != NULL ? "A.B.C.D/N, or A.B.C.D netmask W.X.Y.Z" : "A.B.C.D/N";
	char text[32];

	if (given == NULL) {
		if (netmask != NULL)
			return reply_error(reply, -EINVAL, "%s goes with %s", netmask_name, name);
		return 0;
	}
	snprintf(text, sizeof(text), "%s", given);
	char *slash = strchr(text, '/');
	uint8_t prefix;
	if (slash != NULL) {
		char *end;
		long n = strtol(slash + 1, &end, 10);
		*slash = '\0';
		if (netmask != NULL || *end != '\0' || slash[1] == '\0' || n < 1 || n > 32)
			return reply_error(reply, -EINVAL, "%s: '%.32s': give %s", name, given,
			                   forms);
		prefix = (uint8_t)n;
	} else {
		uint32_t mask;
		if (netmask == NULL || parse_ipv4(netmask, &mask) < 0)
			return reply_error(reply, -EINVAL, "%s: '%.32s': give %s", name, given,
			                   forms);
		uint32_t host_mask = ntohl(mask);
		/* A netmask is ones then zeros. */
		if (host_mask == 0 || (~host_mask & (~host_mask + 1)) != 0)
			return reply_error(reply, -EINVAL, "%s: '%.32s' is not a netmask",
			                   netmask_name, netmask);
		prefix = (uint8_t)__builtin_popcount(host_mask);
	}
	uint32_t address;
	if (parse_ipv4(text, &address) < 0 || address == 0)
		return reply_error(reply, -EINVAL, "%s: '%.32s' is not an IPv4 address", name,
		                   text);
	*ip = address;
	*prefix_len = prefix;
	return 0;
}

int cli_arg_mac(const struct cli_args *args, const char *name, bool unicast,
                struct rte_ether_addr *mac, struct reply *reply)
{
	const char *text = cli_arg(args, name);
	struct rte_ether_addr parsed;

	if (text == NULL)
		return 0;
	if (rte_ether_unformat_addr(text, &parsed) < 0 ||
	    (unicast && (!rte_is_unicast_ether_addr(&parsed) || rte_is_zero_ether_addr(&parsed))))
		return reply_error(reply, -EINVAL, "%s: '%.32s' is not a %sMAC address", name, text,
		                   unicast ? "unicast " : "");
	*mac = parsed;
	return 0;
}

/* The number parsers of the typed arguments: text to a value, 0 or -EINVAL; unit is for sizes. */
typedef int number_parser(const char *text, uint64_t unit, uint64_t *value);

static int parse_u64(const char *text, uint64_t unit, uint64_t *value)
{
	char *end;

	(void)unit;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 0);
	if (text[0] == '\0' || text[0] == '-' || *end != '\0' || errno != 0)
		return -EINVAL;
	*value = v;
	return 0;
}

/* "1g", "100m", "2.5gbit", "10k", or plain bits per second. */
static int parse_rate(const char *text, uint64_t unit, uint64_t *bps)
{
	static const struct {
		char suffix;
		double scale;
	} units[] = {{'k', 1e3}, {'m', 1e6}, {'g', 1e9}};
	char *end;
	double value = strtod(text, &end);
	double scale = 1;

	(void)unit;
	if (end == text || !(value >= 0) || value > 1e15)
		return -EINVAL;
	for (unsigned int i = 0; i < RTE_DIM(units); i++) {
		if (tolower((unsigned char)*end) == units[i].suffix) {
			scale = units[i].scale;
			end++;
			break;
		}
	}
	if (strcasecmp(end, "bit") == 0 || strcasecmp(end, "bps") == 0)
		end += 3;
	if (*end != '\0')
		return -EINVAL;
	*bps = (uint64_t)(value * scale);
	return 0;
}

/* A decimal number with an optional suffix, times a scale: milliseconds ("ms") or seconds (no
 * suffix) into nanoseconds, a percentage ("%") into parts per million. */
static int parse_scaled(const char *text, const char *suffix, double max, double scale, bool round,
                        uint64_t *value)
{
	char *end;
	double v = strtod(text, &end);

	if (end == text || (*end != '\0' && strcmp(end, suffix) != 0) || !(v >= 0) || v > max)
		return -EINVAL;
	*value = (uint64_t)(v * scale + (round ? 0.5 : 0));
	return 0;
}

static int parse_ms(const char *text, uint64_t unit, uint64_t *ns)
{
	(void)unit;
	return parse_scaled(text, "ms", 60000, 1e6, false, ns);
}

static int parse_seconds(const char *text, uint64_t unit, uint64_t *ns)
{
	(void)unit;
	return parse_scaled(text, "", 1e9, 1e9, false, ns);
}

static int parse_percent(const char *text, uint64_t unit, uint64_t *ppm)
{
	(void)unit;
	return parse_scaled(text, "%", 100, 1e4, true, ppm);
}

/* A size in units of unit bytes: a bare number counts units, K, M, G or T (and B or iB) bytes. */
static int parse_size(const char *text, uint64_t unit, uint64_t *value)
{
	static const char suffixes[] = "kmgt";
	char *end;

	errno = 0;
	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	unsigned long long n = strtoull(text, &end, 10);
	uint64_t bytes_per = unit;
	const char *s = strchr(suffixes, tolower((unsigned char)*end));
	if (*end != '\0' && s != NULL) {
		bytes_per = 1ull << (10 * (s - suffixes + 1));
		end++;
		if (strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0)
			end += strlen(end);
	}
	if (errno != 0 || *end != '\0' || (n != 0 && bytes_per > UINT64_MAX / n) ||
	    (n * bytes_per) % unit != 0)
		return -EINVAL;
	*value = n * bytes_per / unit;
	return 0;
}

/* Every typed number argument: absent is fine, and text that does not parse into [min, max] is
 * refused as "name: 'text' is not <what>". */
static int parsed_arg(const struct cli_args *args, const char *name, number_parser *parse,
                      uint64_t unit, uint64_t min, uint64_t max, uint64_t *value,
                      struct reply *reply, const char *what)
{
	const char *text = cli_arg(args, name);
	uint64_t parsed;

	if (text == NULL)
		return 0;
	if (parse(text, unit, &parsed) < 0 || parsed < min || parsed > max)
		return reply_error(reply, -EINVAL, "%s: '%.64s' is not %s", name, text, what);
	*value = parsed;
	return 0;
}

int cli_arg_u64(const struct cli_args *args, const char *name, uint64_t min, uint64_t max,
                uint64_t *value, struct reply *reply)
{
	char what[80];

	snprintf(what, sizeof(what), "a number from %llu to %llu", (unsigned long long)min,
	         (unsigned long long)max);
	return parsed_arg(args, name, parse_u64, 0, min, max, value, reply, what);
}

int cli_arg_rate(const struct cli_args *args, const char *name, uint64_t min, uint64_t *bps,
                 struct reply *reply)
{
	char what[80];

	snprintf(what, sizeof(what), "a rate of at least %lu bit/s (e.g. 1G, 500M, 10k)",
	         (unsigned long)min);
	return parsed_arg(args, name, parse_rate, 0, min, UINT64_MAX, bps, reply, what);
}

int cli_arg_ms(const struct cli_args *args, const char *name, uint64_t min_ns, uint64_t *ns,
               struct reply *reply)
{
	char what[80];

	snprintf(what, sizeof(what), "a number of milliseconds from %g to 60000",
	         (double)min_ns / 1e6);
	return parsed_arg(args, name, parse_ms, 0, min_ns, UINT64_MAX, ns, reply, what);
}

int cli_arg_size(const struct cli_args *args, const char *name, uint64_t unit, uint64_t min,
                 uint64_t max, uint64_t *value, struct reply *reply)
{
	char what[112];

	snprintf(what, sizeof(what),
	         "a size from %lu to %lu units of %lu bytes (a number, or with K, M, G or T)",
	         (unsigned long)min, (unsigned long)max, (unsigned long)unit);
	return parsed_arg(args, name, parse_size, unit, min, max, value, reply, what);
}

int cli_arg_seconds(const struct cli_args *args, const char *name, double min, double max,
                    uint64_t *ns, struct reply *reply)
{
	char what[80];

	snprintf(what, sizeof(what), "a number of seconds from %g to %g", min, max);
	return parsed_arg(args, name, parse_seconds, 0, (uint64_t)(min * 1e9),
	                  (uint64_t)(max * 1e9), ns, reply, what);
}

int cli_arg_percent(const struct cli_args *args, const char *name, uint32_t *ppm,
                    struct reply *reply)
{
	uint64_t value = *ppm;
	int ret = parsed_arg(args, name, parse_percent, 0, 0, 1000000, &value, reply,
	                     "a percentage from 0 to 100");

	*ppm = (uint32_t)value;
	return ret;
}
