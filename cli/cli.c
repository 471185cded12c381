/* The command table, the tokenizer and the dispatcher shared by the socket and startup files. */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_log.h>

static RTE_LOG_REGISTER(cli_logtype, ferry.cli, INFO);

#define CLI_LOG(level, fmt, ...)                                                                   \
	rte_log(RTE_LOG_##level, cli_logtype, "cli: " fmt "\n", ##__VA_ARGS__)

static int cli_help(void *ctx, const struct cli_args *args, struct reply *reply);
static int cli_output(void *ctx, const struct cli_args *args, struct reply *reply);

static const struct cli_command cli_builtin_commands[] = {
        {"help [<words>...]", "list commands, or those starting with the given words", cli_help},
        {"output <format>", "answer this connection in 'text' (default) or 'json'", cli_output},
};

/* Reads one token of a syntax string into out; returns the rest or NULL at the end. */
static const char *syntax_next(const char *s, char *out, size_t size)
{
	size_t n = 0;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return NULL;
	int bracket = 0;
	while (*s != '\0' && (*s != ' ' || bracket > 0)) {
		if (*s == '[')
			bracket++;
		else if (*s == ']')
			bracket--;
		if (n + 1 < size)
			out[n++] = *s;
		s++;
	}
	out[n] = '\0';
	return s;
}

static int copy_name(char *dst, const char *src, size_t len)
{
	if (len == 0 || len >= sizeof(((struct cli_syntax_token *)0)->word))
		return -EINVAL;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/* <name> → the name; anything else is malformed. */
static int parse_slot(const char *s, size_t len, char *name)
{
	if (len < 3 || s[0] != '<' || s[len - 1] != '>')
		return -EINVAL;
	return copy_name(name, s + 1, len - 2);
}

static int compile_token(const char *text, struct cli_syntax_token *token)
{
	size_t len = strlen(text);

	memset(token, 0, sizeof(*token));
	if (text[0] == '<') {
		token->kind = CLI_SLOT;
		return parse_slot(text, len, token->word);
	}
	if (text[0] != '[') {
		token->kind = CLI_WORD;
		return copy_name(token->word, text, len);
	}
	if (len < 3 || text[len - 1] != ']')
		return -EINVAL;
	const char *inner = text + 1;
	size_t inner_len = len - 2;
	if (inner_len > 5 && inner[0] == '<' && strncmp(inner + inner_len - 3, "...", 3) == 0) {
		token->kind = CLI_REST;
		return parse_slot(inner, inner_len - 3, token->word);
	}
	const char *space = memchr(inner, ' ', inner_len);
	if (space == NULL) {
		token->kind = CLI_FLAG;
		return copy_name(token->word, inner, inner_len);
	}
	token->kind = CLI_OPTION;
	if (copy_name(token->word, inner, (size_t)(space - inner)) < 0)
		return -EINVAL;
	return parse_slot(space + 1, inner_len - (size_t)(space - inner) - 1, token->value_name);
}

static int compile_entry(struct cli_entry *entry)
{
	const char *s = entry->command->syntax;
	char text[80];
	bool optional_seen = false;

	entry->nb_tokens = entry->nb_fixed = entry->nb_words = 0;
	while ((s = syntax_next(s, text, sizeof(text))) != NULL) {
		if (entry->nb_tokens == CLI_MAX_SYNTAX)
			return -EINVAL;
		struct cli_syntax_token *token = &entry->tokens[entry->nb_tokens];
		if (compile_token(text, token) < 0)
			return -EINVAL;
		bool fixed = token->kind == CLI_WORD || token->kind == CLI_SLOT;
		/* Required parts come first, and a [<rest>...] only last. */
		if (fixed && optional_seen)
			return -EINVAL;
		if (entry->nb_tokens > 0 && entry->tokens[entry->nb_tokens - 1].kind == CLI_REST)
			return -EINVAL;
		if (fixed) {
			entry->nb_fixed++;
			if (token->kind == CLI_WORD)
				entry->nb_words++;
		} else {
			optional_seen = true;
		}
		entry->nb_tokens++;
	}
	if (entry->nb_words == 0 || entry->tokens[0].kind != CLI_WORD)
		return -EINVAL;
	return 0;
}

int cli_table_register(struct cli_table *table, const struct cli_command *commands,
                       unsigned int nb_commands, void *ctx)
{
	for (unsigned int i = 0; i < nb_commands; i++) {
		if (table->nb_entries == CLI_MAX_COMMANDS)
			return -ENOSPC;
		struct cli_entry *entry = &table->entries[table->nb_entries];
		entry->command = &commands[i];
		entry->ctx = ctx;
		if (compile_entry(entry) < 0) {
			CLI_LOG(ERR, "malformed command syntax '%s'", commands[i].syntax);
			return -EINVAL;
		}
		table->nb_entries++;
	}
	return 0;
}

void cli_table_init(struct cli_table *table)
{
	table->nb_entries = 0;
	/* The built-in syntax strings are known to be well formed. */
	cli_table_register(table, cli_builtin_commands, RTE_DIM(cli_builtin_commands), table);
}

int cli_tokenize(char *buf, const char **tokens, unsigned int max_tokens, char *error,
                 unsigned int error_size)
{
	unsigned int nb = 0;
	char *in = buf, *out = buf;

	for (;;) {
		while (*in == ' ' || *in == '\t' || *in == '\r')
			in++;
		if (*in == '\0' || *in == '#')
			break;
		if (nb == max_tokens) {
			snprintf(error, error_size, "too many words (at most %u)", max_tokens);
			return -E2BIG;
		}
		tokens[nb++] = out;
		char quote = 0;
		/* Copy the word down over the quotes and escapes it loses. */
		while (*in != '\0') {
			unsigned char c = (unsigned char)*in;
			if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
				snprintf(error, error_size, "invalid byte 0x%02x at column %zu", c,
				         (size_t)(in - buf) + 1);
				return -EINVAL;
			}
			if (quote == 0 && (c == ' ' || c == '\t' || c == '\r'))
				break;
			if (quote == 0 && (c == '"' || c == '\'')) {
				quote = (char)c;
				in++;
				continue;
			}
			if (quote != 0 && c == (unsigned char)quote) {
				quote = 0;
				in++;
				continue;
			}
			if (quote == '"' && c == '\\' && (in[1] == '"' || in[1] == '\\'))
				in++;
			*out++ = *in++;
		}
		if (quote != 0) {
			snprintf(error, error_size, "unterminated %c quote", quote);
			return -EINVAL;
		}
		bool more = *in != '\0';
		if (more)
			in++;
		*out++ = '\0';
		if (!more)
			break;
	}
	return (int)nb;
}

/* How many of the entry's leading literal words the tokens match, stopping at the first slot. */
static unsigned int leading_words_matched(const struct cli_entry *entry, const char **tokens,
                                          unsigned int nb_tokens)
{
	unsigned int n = 0;

	while (n < entry->nb_fixed && n < nb_tokens && entry->tokens[n].kind == CLI_WORD &&
	       strcmp(entry->tokens[n].word, tokens[n]) == 0)
		n++;
	return n;
}

static bool fixed_part_matches(const struct cli_entry *entry, const char **tokens,
                               unsigned int nb_tokens)
{
	if (nb_tokens < entry->nb_fixed)
		return false;
	for (unsigned int i = 0; i < entry->nb_fixed; i++)
		if (entry->tokens[i].kind == CLI_WORD &&
		    strcmp(entry->tokens[i].word, tokens[i]) != 0)
			return false;
	return true;
}

static int usage_error(struct reply *reply, const char *what, const struct cli_entry *entry)
{
	return reply_error(reply, -EINVAL, "%s\nusage: %s", what, entry->command->syntax);
}

/* Matches the tokens after the fixed part against the entry's options. */
static int bind_options(const struct cli_entry *entry, const char **tokens, unsigned int nb_tokens,
                        struct cli_args *args, struct reply *reply)
{
	unsigned int i = entry->nb_fixed;

	while (i < nb_tokens) {
		const struct cli_syntax_token *match = NULL;
		for (unsigned int t = entry->nb_fixed; t < entry->nb_tokens; t++) {
			const struct cli_syntax_token *opt = &entry->tokens[t];
			if ((opt->kind == CLI_OPTION || opt->kind == CLI_FLAG) &&
			    strcmp(opt->word, tokens[i]) == 0) {
				match = opt;
				break;
			}
		}
		if (match == NULL) {
			const struct cli_syntax_token *last = &entry->tokens[entry->nb_tokens - 1];
			if (last->kind == CLI_REST) {
				args->rest = &tokens[i];
				args->nb_rest = nb_tokens - i;
				return 0;
			}
			char what[96];
			snprintf(what, sizeof(what), "unexpected argument '%.64s'", tokens[i]);
			return usage_error(reply, what, entry);
		}
		if (cli_arg(args, match->word) != NULL) {
			char what[96];
			snprintf(what, sizeof(what), "'%s' given twice", match->word);
			return usage_error(reply, what, entry);
		}
		const char *value = "";
		if (match->kind == CLI_OPTION) {
			if (i + 1 >= nb_tokens) {
				char what[96];
				snprintf(what, sizeof(what), "'%s' needs a value <%s>", match->word,
				         match->value_name);
				return usage_error(reply, what, entry);
			}
			value = tokens[++i];
		}
		args->names[args->nb_values] = match->word;
		args->values[args->nb_values++] = value;
		i++;
	}
	return 0;
}

/* True if the tokens are a proper prefix of the entry's fixed part: the user stopped early. */
static bool is_incomplete_call(const struct cli_entry *entry, const char **tokens,
                               unsigned int nb_tokens)
{
	if (nb_tokens >= entry->nb_fixed)
		return false;
	for (unsigned int i = 0; i < nb_tokens; i++)
		if (entry->tokens[i].kind == CLI_WORD &&
		    strcmp(entry->tokens[i].word, tokens[i]) != 0)
			return false;
	return true;
}

static int no_match_error(const struct cli_table *table, const char **tokens,
                          unsigned int nb_tokens, struct reply *reply)
{
	unsigned int best = 0;
	bool incomplete = false;

	for (unsigned int e = 0; e < table->nb_entries; e++) {
		unsigned int n = leading_words_matched(&table->entries[e], tokens, nb_tokens);
		if (n > best)
			best = n;
		incomplete |= is_incomplete_call(&table->entries[e], tokens, nb_tokens);
	}
	if (best == 0)
		return reply_error(reply, -ENOENT, "unknown command '%.64s' (try 'help')",
		                   tokens[0]);

	/* Name what went wrong, then list the usage of the commands the user may have meant. */
	const char *what = incomplete ? "incomplete command" : "wrong arguments";
	for (unsigned int e = 0; e < table->nb_entries && !incomplete; e++) {
		const struct cli_entry *entry = &table->entries[e];
		if (leading_words_matched(entry, tokens, nb_tokens) == best &&
		    best < entry->nb_fixed && entry->tokens[best].kind == CLI_WORD)
			what = "unknown command";
	}
	char *message = NULL;
	size_t message_len = 0;
	FILE *f = open_memstream(&message, &message_len);
	if (f == NULL)
		return reply_error(reply, -ENOMEM, "out of memory");
	fputs(what, f);
	for (unsigned int e = 0; e < table->nb_entries; e++) {
		const struct cli_entry *entry = &table->entries[e];
		bool relevant = incomplete
		                        ? is_incomplete_call(entry, tokens, nb_tokens)
		                        : leading_words_matched(entry, tokens, nb_tokens) == best;
		if (relevant)
			fprintf(f, "\nusage: %s", entry->command->syntax);
	}
	fclose(f);
	int ret = reply_error(reply, -EINVAL, "%s", message != NULL ? message : what);
	free(message);
	return ret;
}

int cli_execute(struct cli_table *table, struct cli_session *session, const char *line,
                struct reply *reply)
{
	const char *tokens[CLI_MAX_TOKENS];
	char error[160];
	size_t len = strlen(line);

	if (len > CLI_LINE_MAX)
		return reply_error(reply, -E2BIG, "line too long (%zu bytes, at most %u)", len,
		                   CLI_LINE_MAX);
	char *buf = malloc(len + 1);
	if (buf == NULL)
		return reply_error(reply, -ENOMEM, "out of memory");
	memcpy(buf, line, len + 1);

	int ret;
	int nb = cli_tokenize(buf, tokens, CLI_MAX_TOKENS, error, sizeof(error));
	if (nb < 0) {
		ret = reply_error(reply, nb, "%s", error);
		goto out;
	}
	if (nb == 0) {
		ret = 0;
		goto out;
	}

	/* The most specific command wins: the one whose fixed part matches with most words. */
	const struct cli_entry *entry = NULL;
	for (unsigned int e = 0; e < table->nb_entries; e++) {
		const struct cli_entry *candidate = &table->entries[e];
		if (fixed_part_matches(candidate, tokens, (unsigned int)nb) &&
		    (entry == NULL || candidate->nb_words > entry->nb_words))
			entry = candidate;
	}
	if (entry == NULL) {
		ret = no_match_error(table, tokens, (unsigned int)nb, reply);
		goto out;
	}

	struct cli_args args = {.session = session, .table = table};
	for (unsigned int i = 0; i < entry->nb_fixed; i++) {
		if (entry->tokens[i].kind != CLI_SLOT)
			continue;
		args.names[args.nb_values] = entry->tokens[i].word;
		args.values[args.nb_values++] = tokens[i];
	}
	ret = bind_options(entry, tokens, (unsigned int)nb, &args, reply);
	if (ret < 0)
		goto out;
	ret = entry->command->handler(entry->ctx, &args, reply);
	if (ret < 0 && !reply_failed(reply))
		reply_error(reply, ret, "%s", strerror(-ret));
	if (ret >= 0 && reply_failed(reply))
		ret = -ENOMEM;
out:
	free(buf);
	return ret < 0 ? ret : 0;
}

#ifndef NDEBUG
/* Whether a command declares an argument of this name: asking for another is a handler's typo
 * ("seconds" for "[lease <seconds>]"), which would read as "not given" for ever. (Any command:
 * helpers parse options for several, some of which lack a few.) */
static bool declared(const struct cli_table *table, const char *name)
{
	for (unsigned int e = 0; e < table->nb_entries; e++)
		for (unsigned int t = 0; t < table->entries[e].nb_tokens; t++)
			if (table->entries[e].tokens[t].kind != CLI_WORD &&
			    strcmp(table->entries[e].tokens[t].word, name) == 0)
				return true;
	return false;
}
#endif

const char *cli_arg(const struct cli_args *args, const char *name)
{
	assert(args->table == NULL || declared(args->table, name));
	for (unsigned int i = 0; i < args->nb_values; i++)
		if (strcmp(args->names[i], name) == 0)
			return args->values[i];
	return NULL;
}

static int cli_help(void *ctx, const struct cli_args *args, struct reply *reply)
{
	const struct cli_table *table = ctx;

	reply_list_begin(reply, "commands");
	for (unsigned int e = 0; e < table->nb_entries; e++) {
		const struct cli_entry *entry = &table->entries[e];
		unsigned int matched = 0;
		while (matched < args->nb_rest && matched < entry->nb_words &&
		       strcmp(entry->tokens[matched].word, args->rest[matched]) == 0)
			matched++;
		if (matched < args->nb_rest)
			continue;
		reply_object_begin(reply, NULL);
		reply_str(reply, "command", "%s", entry->command->syntax);
		reply_str(reply, "help", "%s", entry->command->help);
		reply_object_end(reply);
	}
	reply_list_end(reply);
	return 0;
}

static int cli_output(void *ctx, const struct cli_args *args, struct reply *reply)
{
	const char *format = cli_arg(args, "format");

	(void)ctx;
	if (strcmp(format, "json") == 0)
		args->session->format = REPLY_FORMAT_JSON;
	else if (strcmp(format, "text") == 0)
		args->session->format = REPLY_FORMAT_TEXT;
	else
		return reply_error(reply, -EINVAL, "unknown format '%.32s' (text or json)", format);
	reply_str(reply, "output", "%s", format);
	return 0;
}

int cli_run(struct cli_table *table, const char *line, char **text)
{
	struct cli_session session = {.format = REPLY_FORMAT_TEXT};
	struct reply *reply = reply_new();

	*text = NULL;
	if (reply == NULL)
		return -ENOMEM;
	int ret = cli_execute(table, &session, line, reply);
	*text = ret < 0 ? strdup(reply_error_message(reply))
	                : reply_render(reply, REPLY_FORMAT_TEXT, NULL);
	reply_free(reply);
	return ret;
}

int cli_vrunf(struct cli_table *table, char **text, const char *fmt, va_list ap)
{
	char *line;

	if (vasprintf(&line, fmt, ap) < 0) {
		*text = NULL;
		return -ENOMEM;
	}
	int ret = cli_run(table, line, text);
	free(line);
	return ret;
}

int cli_runf(struct cli_table *table, char **text, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int ret = cli_vrunf(table, text, fmt, ap);
	va_end(ap);
	return ret;
}

int cli_run_file(struct cli_table *table, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t size = 0;
	unsigned int number = 0;
	int ret = 0;

	if (f == NULL) {
		ret = -errno;
		CLI_LOG(ERR, "%s: %s", path, strerror(errno));
		return ret;
	}
	ssize_t len;
	while ((len = getline(&line, &size, f)) >= 0) {
		number++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if ((size_t)len != strlen(line)) {
			CLI_LOG(ERR, "%s:%u: invalid byte 0x00", path, number);
			ret = -EINVAL;
			break;
		}
		char *text;
		ret = cli_run(table, line, &text);
		if (ret < 0)
			CLI_LOG(ERR, "%s:%u: %s", path, number,
			        text != NULL ? text : strerror(-ret));
		else if (text != NULL && text[0] != '\0')
			CLI_LOG(INFO, "%s:%u: %s\n%s", path, number, line, text);
		free(text);
		if (ret < 0)
			break;
	}
	free(line);
	fclose(f);
	return ret;
}
