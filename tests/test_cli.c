/* Unit tests of the command table, the tokenizer, argument validation and reply rendering. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ether.h>

#include "cli/cli.h"
#include "cli/reply.h"

struct calls {
	int count;
	char last[256];
};

static int record_handler(void *ctx, const struct cli_args *args, struct reply *reply)
{
	struct calls *calls = ctx;
	const char *name = cli_arg(args, "name");
	const char *mtu = cli_arg(args, "mtu");
	uint64_t value = 0;

	if (cli_arg_u64(args, "mtu", 68, 9216, &value, reply) < 0)
		return -EINVAL;
	calls->count++;
	snprintf(calls->last, sizeof(calls->last), "name=%s mtu=%s force=%s rest=%u",
	         name ? name : "-", mtu ? mtu : "-", cli_arg(args, "force") ? "yes" : "no",
	         args->nb_rest);
	reply_str(reply, "name", "%s", name ? name : "");
	return 0;
}

static const struct cli_command test_commands[] = {
        {"port add <name> <devargs> [mtu <bytes>] [force]", "add", record_handler},
        {"port del <name>", "delete", record_handler},
        {"show ports", "list", record_handler},
        {"show port <name> stats", "stats", record_handler},
        {"echo [<words>...]", "echo", record_handler},
};

static struct cli_table table;
static struct calls calls;
static struct cli_session session;

static void setup(void)
{
	memset(&calls, 0, sizeof(calls));
	session.format = REPLY_FORMAT_TEXT;
	cli_table_init(&table);
	cr_assert_eq(cli_table_register(&table, test_commands, 5, &calls), 0);
}

/* Runs a line; returns the result and leaves the rendered reply in out. */
static int run(const char *line, char *out, size_t size)
{
	struct reply *reply = reply_new();
	int ret = cli_execute(&table, &session, line, reply);
	char *text = reply_render(reply, session.format, NULL);

	snprintf(out, size, "%s", text);
	free(text);
	reply_free(reply);
	return ret;
}

TestSuite(cli, .init = setup);

Test(cli, matches_words_slots_and_options)
{
	char out[1024];

	cr_assert_eq(run("port add p0 net_null0 mtu 9000 force", out, sizeof(out)), 0, "%s", out);
	cr_assert_str_eq(calls.last, "name=p0 mtu=9000 force=yes rest=0");
	cr_assert_eq(run("port add p1 net_null1", out, sizeof(out)), 0);
	cr_assert_str_eq(calls.last, "name=p1 mtu=- force=no rest=0");
	cr_assert_eq(run("  show   port\tp1 stats  ", out, sizeof(out)), 0);
	cr_assert_str_eq(calls.last, "name=p1 mtu=- force=no rest=0");
	cr_assert_eq(run("echo a b c", out, sizeof(out)), 0);
	cr_assert_str_eq(calls.last, "name=- mtu=- force=no rest=3");
	cr_assert_eq(calls.count, 4);
}

Test(cli, quotes_and_comments)
{
	char out[1024];

	cr_assert_eq(run("port add \"my port\" 'a b' # comment here", out, sizeof(out)), 0, "%s",
	             out);
	cr_assert_str_eq(calls.last, "name=my port mtu=- force=no rest=0");
	cr_assert_eq(run("port add \"a\\\"b\" x", out, sizeof(out)), 0);
	cr_assert_str_eq(calls.last, "name=a\"b mtu=- force=no rest=0");
	cr_assert_eq(run("# only a comment", out, sizeof(out)), 0);
	cr_assert_eq(run("", out, sizeof(out)), 0);
	cr_assert_eq(calls.count, 2);
}

Test(cli, unknown_command_is_named_and_runs_nothing)
{
	char out[1024];

	cr_assert_eq(run("frobnicate now", out, sizeof(out)), -ENOENT);
	cr_assert(strstr(out, "unknown command 'frobnicate'") != NULL, "%s", out);
	cr_assert_eq(calls.count, 0);
}

Test(cli, incomplete_and_wrong_arguments_print_usage)
{
	char out[1024];

	cr_assert_eq(run("port add p0", out, sizeof(out)), -EINVAL);
	cr_assert(strstr(out, "incomplete command") != NULL, "%s", out);
	cr_assert(strstr(out, "usage: port add <name> <devargs> [mtu <bytes>] [force]") != NULL,
	          "%s", out);
	cr_assert_eq(run("show port p0", out, sizeof(out)), -EINVAL);
	cr_assert(strstr(out, "usage: show port <name> stats") != NULL, "%s", out);
	cr_assert_eq(run("show ports extra", out, sizeof(out)), -EINVAL);
	cr_assert(strstr(out, "unexpected argument 'extra'") != NULL, "%s", out);
	cr_assert_eq(run("port add p0 x mtu", out, sizeof(out)), -EINVAL);
	cr_assert(strstr(out, "'mtu' needs a value") != NULL, "%s", out);
	cr_assert_eq(run("port add p0 x mtu 1500 mtu 1500", out, sizeof(out)), -EINVAL);
	cr_assert(strstr(out, "given twice") != NULL, "%s", out);
	cr_assert_eq(run("show nothing", out, sizeof(out)), -EINVAL);
	cr_assert(strstr(out, "usage: show ports") != NULL, "%s", out);
	cr_assert_eq(calls.count, 0, "no handler runs on invalid arguments");
}

Test(cli, numbers_are_range_checked)
{
	char out[1024];

	cr_assert_eq(run("port add p0 x mtu 67", out, sizeof(out)), -EINVAL);
	cr_assert(strstr(out, "mtu: '67' is not a number from 68 to 9216") != NULL, "%s", out);
	cr_assert_eq(run("port add p0 x mtu -1", out, sizeof(out)), -EINVAL);
	cr_assert_eq(run("port add p0 x mtu 12abc", out, sizeof(out)), -EINVAL);
	cr_assert_eq(run("port add p0 x mtu 99999999999999999999999", out, sizeof(out)), -EINVAL);
	cr_assert_eq(run("port add p0 x mtu 0x2328", out, sizeof(out)), 0, "%s", out);
	cr_assert_eq(calls.count, 1);
}

Test(cli, control_bytes_and_bad_quotes_are_refused)
{
	char out[1024];

	cr_assert_eq(run("show\x01ports", out, sizeof(out)), -EINVAL);
	cr_assert(strstr(out, "invalid byte 0x01 at column 5") != NULL, "%s", out);
	cr_assert_eq(run("show ports\x7f", out, sizeof(out)), -EINVAL);
	cr_assert_eq(run("port add \"p0 x", out, sizeof(out)), -EINVAL);
	cr_assert(strstr(out, "unterminated \" quote") != NULL, "%s", out);
	cr_assert_eq(calls.count, 0);
}

Test(cli, too_many_words_and_too_long_lines)
{
	char out[1024];
	char line[CLI_LINE_MAX + 16];

	line[0] = '\0';
	strcat(line, "echo");
	for (int i = 0; i < CLI_MAX_TOKENS + 5; i++)
		strcat(line, " w");
	cr_assert_eq(run(line, out, sizeof(out)), -E2BIG);
	memset(line, 'a', CLI_LINE_MAX + 1);
	line[CLI_LINE_MAX + 1] = '\0';
	cr_assert_eq(run(line, out, sizeof(out)), -E2BIG);
	cr_assert(strstr(out, "line too long") != NULL, "%s", out);
	cr_assert_eq(calls.count, 0);
}

Test(cli, help_lists_commands_and_filters_by_prefix)
{
	char out[4096];

	cr_assert_eq(run("help", out, sizeof(out)), 0);
	cr_assert(strstr(out, "COMMAND") != NULL && strstr(out, "show port <name> stats") != NULL,
	          "%s", out);
	cr_assert(strstr(out, "output <format>") != NULL);
	/* Readable in a terminal: no line is padded out to the longest command. */
	for (const char *line = out; *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		cr_assert_leq(len, 120, "a line of %zu columns: %.*s", len, (int)len, line);
		line += len + (end != NULL);
	}
	cr_assert_eq(run("help show", out, sizeof(out)), 0);
	cr_assert(strstr(out, "show ports") != NULL, "%s", out);
	cr_assert(strstr(out, "port del") == NULL, "%s", out);
}

Test(cli, output_json_switches_the_session)
{
	char out[1024];

	cr_assert_eq(run("output json", out, sizeof(out)), 0);
	cr_assert_eq(session.format, REPLY_FORMAT_JSON);
	cr_assert_eq(run("port add p0 x", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "{\"name\": \"p0\"}\n");
	cr_assert_eq(run("nope", out, sizeof(out)), -ENOENT);
	cr_assert_str_eq(out, "{\"error\": \"unknown command 'nope' (try 'help')\"}\n");
	cr_assert_eq(run("output yaml", out, sizeof(out)), -EINVAL);
	cr_assert_eq(session.format, REPLY_FORMAT_JSON);
	cr_assert_eq(run("output text", out, sizeof(out)), 0);
	cr_assert_eq(session.format, REPLY_FORMAT_TEXT);
}

static int dummy(void *ctx, const struct cli_args *args, struct reply *reply)
{
	(void)ctx;
	(void)args;
	(void)reply;
	return 0;
}

Test(cli_table, malformed_syntax_is_refused_at_registration)
{
	struct cli_table t;
	const struct cli_command bad[][1] = {
	        {{"<name> first", "", dummy}},         {{"x [opt <v>] <late>", "", dummy}},
	        {{"x [<rest>...] [flag]", "", dummy}}, {{"x <unclosed", "", dummy}},
	        {{"x [mtu <v]", "", dummy}},           {{"", "", dummy}},
	};

	cli_table_init(&t);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(cli_table_register(&t, bad[i], 1, NULL), -EINVAL, "syntax %u: '%s'", i,
		             bad[i][0].syntax);
}

Test(reply, text_renders_aligned_members_tables_and_nesting)
{
	struct reply *r = reply_new();

	reply_str(r, "name", "p0");
	reply_u64(r, "rx_packets", 42);
	reply_bool(r, "up", true);
	reply_double(r, "load", 12.345, 1);
	reply_object_begin(r, "drops");
	reply_u64(r, "tx_full", 3);
	reply_object_end(r);
	reply_list_begin(r, "rows");
	for (int i = 0; i < 2; i++) {
		reply_object_begin(r, NULL);
		reply_str(r, "port", "%s", i ? "long-name" : "p");
		reply_i64(r, "socket", -i);
		reply_object_end(r);
	}
	reply_list_end(r);
	char *text = reply_render(r, REPLY_FORMAT_TEXT, NULL);
	cr_assert_str_eq(text, "name:       p0\n"
	                       "rx_packets: 42\n"
	                       "up:         yes\n"
	                       "load:       12.3\n"
	                       "drops:\n"
	                       "  tx_full: 3\n"
	                       "rows:\n"
	                       "  PORT       SOCKET\n"
	                       "  p          0\n"
	                       "  long-name  -1\n");
	free(text);
	reply_free(r);
}

Test(reply, json_escapes_strings_and_replaces_invalid_utf8)
{
	struct reply *r = reply_new();

	reply_str(r, "s", "a\"b\\c\n\x01 \xc3\xa9 \xff");
	reply_list_begin(r, "l");
	reply_u64(r, NULL, 1);
	reply_bool(r, NULL, false);
	reply_double(r, NULL, 0.0 / 0.0, 2);
	reply_list_end(r);
	char *json = reply_render(r, REPLY_FORMAT_JSON, NULL);
	cr_assert_str_eq(
	        json,
	        "{\"s\": \"a\\\"b\\\\c\\n\\u0001 \xc3\xa9 \\ufffd\", \"l\": [1, false, null]}\n");
	free(json);
	reply_free(r);
}

Test(reply, first_error_wins_and_replaces_the_data)
{
	struct reply *r = reply_new();

	reply_u64(r, "x", 1);
	cr_assert_eq(reply_error(r, -ENOENT, "first %d", 1), -ENOENT);
	reply_error(r, -EINVAL, "second");
	cr_assert(reply_failed(r));
	char *text = reply_render(r, REPLY_FORMAT_TEXT, NULL);
	cr_assert_str_eq(text, "first 1\n");
	free(text);
	reply_free(r);
}

Test(reply, a_single_table_has_no_heading_and_empty_reply_renders_empty)
{
	struct reply *r = reply_new();
	char *text = reply_render(r, REPLY_FORMAT_TEXT, NULL);

	cr_assert_str_eq(text, "");
	free(text);
	text = reply_render(r, REPLY_FORMAT_JSON, NULL);
	cr_assert_str_eq(text, "{}\n");
	free(text);
	reply_list_begin(r, "ports");
	reply_object_begin(r, NULL);
	reply_str(r, "name", "p0");
	reply_object_end(r);
	reply_list_end(r);
	text = reply_render(r, REPLY_FORMAT_TEXT, NULL);
	cr_assert_str_eq(text, "NAME\np0\n");
	free(text);
	reply_free(r);
}

Test(cli, a_table_too_wide_for_a_terminal_prints_as_records)
{
	struct reply *r = reply_new();
	char long_syntax[301];

	memset(long_syntax, 0, sizeof(long_syntax));
	for (size_t i = 0; i + 6 < 300; i += 6)
		memcpy(long_syntax + i, "[opt] ", 6);
	reply_list_begin(r, "commands");
	reply_object_begin(r, NULL);
	reply_str(r, "command", "show ports");
	reply_str(r, "help", "every port");
	reply_object_end(r);
	reply_object_begin(r, NULL);
	reply_str(r, "command", "%s", long_syntax);
	reply_str(r, "help", "a command with many options");
	reply_object_end(r);
	reply_list_end(r);
	char *text = reply_render(r, REPLY_FORMAT_TEXT, NULL);
	cr_assert(strncmp(text, "COMMAND\n    HELP\nshow ports\n    every port\n", 43) == 0, "%s",
	          text);
	unsigned int lines = 0;
	for (const char *line = text; *line != '\0'; lines++) {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		cr_assert_leq(len, 120, "a line of %zu columns: %.*s", len, (int)len, line);
		line += len + (end != NULL);
	}
	cr_assert_geq(lines, 8, "the long syntax is wrapped: %s", text);
	free(text);
	/* JSON is untouched by the terminal's width. */
	text = reply_render(r, REPLY_FORMAT_JSON, NULL);
	cr_assert(strstr(text, long_syntax) != NULL);
	free(text);
	reply_free(r);
}

/* A handler that parses every typed argument and answers with what it got. */
static int typed_handler(void *ctx, const struct cli_args *args, struct reply *reply)
{
	uint32_t ip = 0, gw = 0, ppm = 0;
	uint8_t prefix = 0;
	struct rte_ether_addr mac = {{0}};
	uint64_t bps = 0, ns = 0, seconds_ns = 0, mib = 0;
	bool on = false;
	char text[16];

	(void)ctx;
	if (cli_arg_ipv4_prefix(args, "ip", "netmask", &ip, &prefix, reply) < 0 ||
	    cli_arg_ipv4(args, "gw", &gw, reply) < 0 ||
	    cli_arg_mac(args, "mac", true, &mac, reply) < 0 ||
	    cli_arg_rate(args, "rate", 1000, &bps, reply) < 0 ||
	    cli_arg_ms(args, "delay", 0, &ns, reply) < 0 ||
	    cli_arg_seconds(args, "wait", 0.001, 60, &seconds_ns, reply) < 0 ||
	    cli_arg_percent(args, "loss", &ppm, reply) < 0 ||
	    cli_arg_size(args, "mem", 1u << 20, 1, 65536, &mib, reply) < 0 ||
	    cli_arg_bool(args, "verify", &on, reply) < 0)
		return -EINVAL;
	inet_ntop(AF_INET, &ip, text, sizeof(text));
	reply_str(reply, "ip", "%s/%u", text, prefix);
	inet_ntop(AF_INET, &gw, text, sizeof(text));
	reply_str(reply, "gw", "%s", text);
	reply_str(reply, "mac", "%02x:%02x", mac.addr_bytes[0], mac.addr_bytes[5]);
	reply_u64(reply, "bps", bps);
	reply_u64(reply, "ns", ns);
	reply_u64(reply, "seconds_ns", seconds_ns);
	reply_u64(reply, "ppm", ppm);
	reply_u64(reply, "mib", mib);
	reply_bool(reply, "verify", on);
	return 0;
}

static const struct cli_command typed_command[] = {
        {"typed [ip <a>] [netmask <m>] [gw <g>] [mac <m>] [rate <r>] [delay <ms>] [wait <s>] "
         "[loss <p>] [mem <size>] [verify <on|off>]",
         "every typed argument", typed_handler},
};

Test(cli, typed_arguments_parse_once_and_refuse_with_the_argument_named)
{
	char out[1024];

	cr_assert_eq(cli_table_register(&table, typed_command, 1, NULL), 0);
	cr_assert_eq(run("typed ip 10.1.2.3/24 gw 10.1.2.1 mac 02:00:00:00:00:0b rate 2.5G "
	                 "delay 1.5 wait 0.25 loss 0.5% mem 2G verify on",
	                 out, sizeof(out)),
	             0, "%s", out);
	cr_assert(strstr(out, "ip:         10.1.2.3/24") != NULL, "%s", out);
	cr_assert(strstr(out, "gw:         10.1.2.1") != NULL, "%s", out);
	cr_assert(strstr(out, "mac:        02:0b") != NULL, "%s", out);
	cr_assert(strstr(out, "bps:        2500000000") != NULL, "%s", out);
	cr_assert(strstr(out, "ns:         1500000") != NULL, "%s", out);
	cr_assert(strstr(out, "seconds_ns: 250000000") != NULL, "%s", out);
	cr_assert(strstr(out, "ppm:        5000") != NULL, "%s", out);
	cr_assert(strstr(out, "mib:        2048") != NULL, "%s", out);
	cr_assert(strstr(out, "verify:     yes") != NULL, "%s", out);
	/* The vSphere form: an address and a netmask; a bare size counts the unit. */
	cr_assert_eq(run("typed ip 10.1.2.3 netmask 255.255.255.248 mem 512", out, sizeof(out)), 0,
	             "%s", out);
	cr_assert(strstr(out, "10.1.2.3/29") != NULL && strstr(out, "mib:        512") != NULL,
	          "%s", out);
	static const struct {
		const char *line, *says;
	} refused[] = {
	        {"typed ip 10.1.2.3", "ip: '10.1.2.3': give A.B.C.D/N, or A.B.C.D netmask"},
	        {"typed ip 10.1.2.3/33", "ip: '10.1.2.3/33': give"},
	        {"typed ip 0.0.0.0/8", "ip: '0.0.0.0' is not an IPv4 address"},
	        {"typed ip 10.1.2.3 netmask 255.0.255.0",
	         "netmask: '255.0.255.0' is not a netmask"},
	        {"typed netmask 255.255.255.0", "netmask goes with ip"},
	        {"typed gw 10.1.2", "gw: '10.1.2' is not an IPv4 address"},
	        {"typed mac 01:00:5e:00:00:01", "mac: '01:00:5e:00:00:01' is not a unicast MAC"},
	        {"typed mac 00:00:00:00:00:00", "is not a unicast MAC"},
	        {"typed rate 10", "rate: '10' is not a rate of at least 1000 bit/s"},
	        {"typed rate fast", "rate: 'fast' is not a rate"},
	        {"typed delay 60001", "delay: '60001' is not a number of milliseconds"},
	        {"typed delay -1", "delay: '-1' is not a number of milliseconds"},
	        {"typed wait 0", "wait: '0' is not a number of seconds from 0.001 to 60"},
	        {"typed loss 101", "loss: '101' is not a percentage from 0 to 100"},
	        {"typed mem 1k", "mem: '1k' is not a size"},
	        {"typed mem 65G", "mem: '65G' is not a size"},
	        {"typed verify yes", "verify: 'yes' is not on or off"},
	};
	for (unsigned int i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		cr_assert_eq(run(refused[i].line, out, sizeof(out)), -EINVAL, "%s: %s",
		             refused[i].line, out);
		cr_assert(strstr(out, refused[i].says) != NULL, "%s: %s", refused[i].line, out);
	}
}
