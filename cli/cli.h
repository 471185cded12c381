/* The command table, the tokenizer and the dispatcher shared by the socket and startup files. */
#ifndef FERRY_CLI_CLI_H
#define FERRY_CLI_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/reply.h"

#define CLI_LINE_MAX     65536 /* longest request line, in bytes, without the newline */
#define CLI_MAX_TOKENS   64
#define CLI_MAX_SYNTAX   32 /* words, <slots> and [options] in one command's syntax */
#define CLI_MAX_COMMANDS 256

/* Per-connection state a command may change (the output format). */
struct cli_session {
	enum reply_format format;
};

struct cli_table;

/* The arguments of one call, as the dispatcher matched them against the syntax. */
struct cli_args {
	unsigned int nb_values;
	const char *names[CLI_MAX_TOKENS];  /* slot or option name */
	const char *values[CLI_MAX_TOKENS]; /* its value; "" for a flag that was given */
	unsigned int nb_rest;
	const char *const *rest; /* the tokens a trailing <name>... slot took */
	struct cli_session *session;
	const struct cli_table *table; /* the commands: the argument names they declare */
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

/* The typed arguments (cli_arg_u64 and the others) are part of the CLI's API. */
#include "cli/args.h"

#endif
