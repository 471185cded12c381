/* The command table, the tokenizer and the dispatcher shared by the socket and startup files. */
#ifndef FERRY_CLI_CLI_H
#define FERRY_CLI_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/reply.h"

struct rte_ether_addr;

#define CLI_LINE_MAX     65536 /* longest request line, in bytes, without the newline */
#define CLI_MAX_TOKENS   64
#define CLI_MAX_SYNTAX   24 /* words, <slots> and [options] in one command's syntax */
#define CLI_MAX_COMMANDS 256

/* Per-connection state a command may change (the output format). */
struct cli_session {
	enum reply_format format;
};

/* The arguments of one call, as the dispatcher matched them against the syntax. */
struct cli_args {
	unsigned int nb_values;
	const char *names[CLI_MAX_TOKENS];  /* slot or option name */
	const char *values[CLI_MAX_TOKENS]; /* its value; "" for a flag that was given */
	unsigned int nb_rest;
	const char *const *rest; /* the tokens a trailing <name>... slot took */
	struct cli_session *session;
};

/* A handler returns 0, or a negative errno after reply_error() said why. */
typedef int cli_handler_fn(void *ctx, const struct cli_args *args, struct reply *reply);

/* One command. Its syntax is its words, its argument counts and its usage text at once:
 * literal words, <name> for a required value, [word <name>] for an optional keyword with a
 * value, [word] for an optional flag, and a last [<name>...] for any number of trailing words,
 * e.g. "port add <name> <devargs> [mtu <bytes>]". */
struct cli_command {
	const char *syntax;
	const char *help; /* one line */
	cli_handler_fn *handler;
};

enum cli_token_kind { CLI_WORD, CLI_SLOT, CLI_OPTION, CLI_FLAG, CLI_REST };

struct cli_syntax_token {
	enum cli_token_kind kind;
	char word[32]; /* the literal, the slot's name or the option's keyword */
	char value_name[32];
};

struct cli_entry {
	const struct cli_command *command;
	void *ctx;
	struct cli_syntax_token tokens[CLI_MAX_SYNTAX];
	unsigned int nb_tokens;
	unsigned int nb_fixed; /* leading words and slots, which every call must give */
	unsigned int nb_words;
};

struct cli_table {
	struct cli_entry entries[CLI_MAX_COMMANDS];
	unsigned int nb_entries;
};

/* Initialises a table holding the built-in commands `help` and `output text|json`. */
void cli_table_init(struct cli_table *table);

/* Adds commands whose handlers get ctx. Returns -EINVAL (and names the bad syntax on stderr via
 * the log) if a syntax string is malformed, -ENOSPC when the table is full. */
int cli_table_register(struct cli_table *table, const struct cli_command *commands,
                       unsigned int nb_commands, void *ctx);

/* Splits a line into words: blanks separate, "double" and 'single' quotes group, backslash
 * escapes inside double quotes, an unquoted # starts a comment. Control bytes are refused.
 * Returns the number of tokens (pointers into buf, which is overwritten) or a negative errno with
 * a message in error (at least 128 bytes). */
int cli_tokenize(char *buf, const char **tokens, unsigned int max_tokens, char *error,
                 unsigned int error_size);

/* Runs one command line: tokenizes, finds the command, checks the arguments against its
 * syntax and only then calls its handler. Every outcome is in the reply; returns 0 or the
 * negative errno of the failure. An empty or comment-only line does nothing and returns 0. */
int cli_execute(struct cli_table *table, struct cli_session *session, const char *line,
                struct reply *reply);

/* The value of a slot or option by name, "" for a flag that was given, NULL if absent. */
const char *cli_arg(const struct cli_args *args, const char *name);

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

/* The same parsers on bare text, for values inside another syntax: 0 or -EINVAL. */
int cli_parse_rate(const char *text, uint64_t *bps);
int cli_parse_ms(const char *text, uint64_t *ns);
int cli_parse_size(const char *text, uint64_t unit, uint64_t *value);

/* Runs one command line in text format, as a start-up file does. *text gets the rendered answer,
 * or the error message on failure (malloc'ed, the caller frees it; NULL when out of memory).
 * Returns 0 or the command's negative errno. */
int cli_run(struct cli_table *table, const char *line, char **text);

/* The same, the line made from a format. */
int cli_runf(struct cli_table *table, char **text, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int cli_vrunf(struct cli_table *table, char **text, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

/* Runs a start-up file: one command per line, # comments. Stops at the first failing line and
 * logs "file:line: reason". Returns 0 or that line's negative errno. */
int cli_run_file(struct cli_table *table, const char *path);

#endif
