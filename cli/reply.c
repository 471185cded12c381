/* A command's answer as data: built once by the handler, rendered as human text or as JSON. */
#include "reply.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum reply_type { NODE_OBJECT, NODE_LIST, NODE_STR, NODE_U64, NODE_I64, NODE_DOUBLE, NODE_BOOL };

#define REPLY_MAX_DEPTH 16

struct reply_node {
	enum reply_type type;
	char *key; /* NULL for list elements and the root */
	union {
		char *str;
		uint64_t u64;
		int64_t i64;
		double dbl;
		bool boolean;
	} value;
	int decimals;
	bool document; /* a string that text renders as it is, alone (reply_document) */
	int first_child, last_child, next; /* node indexes, -1 for none */
};

struct reply {
	struct reply_node *nodes;
	unsigned int nb_nodes, size;
	int stack[REPLY_MAX_DEPTH]; /* open containers; stack[0] is the root object */
	unsigned int depth;
	bool out_of_memory;
	int error;
	char *error_message;
};

struct reply *reply_new(void)
{
	struct reply *reply = calloc(1, sizeof(*reply));

	if (reply == NULL)
		return NULL;
	reply->size = 32;
	reply->nodes = calloc(reply->size, sizeof(*reply->nodes));
	if (reply->nodes == NULL) {
		free(reply);
		return NULL;
	}
	reply->nodes[0] = (struct reply_node){
	        .type = NODE_OBJECT, .first_child = -1, .last_child = -1, .next = -1};
	reply->nb_nodes = 1;
	reply->depth = 1;
	reply->stack[0] = 0;
	return reply;
}

void reply_free(struct reply *reply)
{
	if (reply == NULL)
		return;
	for (unsigned int i = 0; i < reply->nb_nodes; i++) {
		free(reply->nodes[i].key);
		if (reply->nodes[i].type == NODE_STR)
			free(reply->nodes[i].value.str);
	}
	free(reply->nodes);
	free(reply->error_message);
	free(reply);
}

/* Appends a node to the innermost open container; returns NULL (and remembers why) on failure. */
static struct reply_node *reply_add(struct reply *reply, const char *key, enum reply_type type)
{
	if (reply->out_of_memory)
		return NULL;
	if (reply->nb_nodes == reply->size) {
		unsigned int size = reply->size * 2;
		struct reply_node *nodes = realloc(reply->nodes, size * sizeof(*nodes));
		if (nodes == NULL) {
			reply->out_of_memory = true;
			return NULL;
		}
		reply->nodes = nodes;
		reply->size = size;
	}
	int index = (int)reply->nb_nodes;
	struct reply_node *node = &reply->nodes[index];
	struct reply_node *parent = &reply->nodes[reply->stack[reply->depth - 1]];

	*node = (struct reply_node){.type = type, .first_child = -1, .last_child = -1, .next = -1};
	/* Members of objects have keys, list elements don't. */
	if (parent->type == NODE_OBJECT && key != NULL) {
		node->key = strdup(key);
		if (node->key == NULL) {
			reply->out_of_memory = true;
			return NULL;
		}
	}
	reply->nb_nodes++;
	if (parent->last_child >= 0)
		reply->nodes[parent->last_child].next = index;
	else
		parent->first_child = index;
	parent->last_child = index;
	return node;
}

static void reply_open(struct reply *reply, const char *key, enum reply_type type)
{
	if (reply->depth == REPLY_MAX_DEPTH) {
		reply->out_of_memory = true; /* a bug in a handler, not a user's input */
		return;
	}
	/* On failure the parent stays open in the new slot, so begin/end still pair up. */
	int index = reply->stack[reply->depth - 1];
	if (reply_add(reply, key, type) != NULL)
		index = (int)reply->nb_nodes - 1;
	reply->stack[reply->depth++] = index;
}

static void reply_close(struct reply *reply)
{
	if (reply->depth > 1)
		reply->depth--;
}

void reply_object_begin(struct reply *reply, const char *key)
{
	reply_open(reply, key, NODE_OBJECT);
}

void reply_object_end(struct reply *reply)
{
	reply_close(reply);
}

void reply_list_begin(struct reply *reply, const char *key)
{
	reply_open(reply, key, NODE_LIST);
}

void reply_list_end(struct reply *reply)
{
	reply_close(reply);
}

void reply_str(struct reply *reply, const char *key, const char *fmt, ...)
{
	struct reply_node *node = reply_add(reply, key, NODE_STR);
	va_list ap;

	if (node == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&node->value.str, fmt, ap) < 0) {
		node->value.str = NULL;
		reply->out_of_memory = true;
	}
	va_end(ap);
}

void reply_document(struct reply *reply, const char *key, const char *text)
{
	struct reply_node *node = reply_add(reply, key, NODE_STR);

	if (node == NULL)
		return;
	node->document = true;
	node->value.str = strdup(text);
	if (node->value.str == NULL)
		reply->out_of_memory = true;
}

void reply_u64(struct reply *reply, const char *key, uint64_t value)
{
	struct reply_node *node = reply_add(reply, key, NODE_U64);

	if (node != NULL)
		node->value.u64 = value;
}

void reply_i64(struct reply *reply, const char *key, int64_t value)
{
	struct reply_node *node = reply_add(reply, key, NODE_I64);

	if (node != NULL)
		node->value.i64 = value;
}

void reply_double(struct reply *reply, const char *key, double value, int decimals)
{
	struct reply_node *node = reply_add(reply, key, NODE_DOUBLE);

	if (node != NULL) {
		node->value.dbl = value;
		node->decimals = decimals;
	}
}

void reply_bool(struct reply *reply, const char *key, bool value)
{
	struct reply_node *node = reply_add(reply, key, NODE_BOOL);

	if (node != NULL)
		node->value.boolean = value;
}

int reply_verror(struct reply *reply, int err, const char *fmt, va_list ap)
{
	if (reply->error == 0) {
		reply->error = err != 0 ? err : -EINVAL;
		if (vasprintf(&reply->error_message, fmt, ap) < 0)
			reply->error_message = NULL;
	}
	return err;
}

int reply_error(struct reply *reply, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_verror(reply, err, fmt, ap);
	va_end(ap);
	return err;
}

bool reply_failed(const struct reply *reply)
{
	return reply->error != 0 || reply->out_of_memory;
}

const char *reply_error_message(const struct reply *reply)
{
	if (reply->error != 0)
		return reply->error_message != NULL ? reply->error_message : "error";
	if (reply->out_of_memory)
		return "out of memory while building the reply";
	return NULL;
}

/* A growable output string; a failed allocation sticks and is reported once at the end. */
struct strbuf {
	char *data;
	size_t len, size;
	bool failed;
};

static void sb_reserve(struct strbuf *sb, size_t extra)
{
	if (sb->failed || sb->len + extra + 1 <= sb->size)
		return;
	size_t size = sb->size != 0 ? sb->size : 256;
	while (size < sb->len + extra + 1)
		size *= 2;
	char *data = realloc(sb->data, size);
	if (data == NULL) {
		sb->failed = true;
		return;
	}
	sb->data = data;
	sb->size = size;
}

static void sb_putn(struct strbuf *sb, const char *s, size_t n)
{
	sb_reserve(sb, n);
	if (sb->failed)
		return;
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

static void sb_puts(struct strbuf *sb, const char *s)
{
	sb_putn(sb, s, strlen(s));
}

static void sb_printf(struct strbuf *sb, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	char small[128];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		sb_putn(sb, small, (size_t)n);
		return;
	}
	sb_reserve(sb, (size_t)n);
	if (sb->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

static void sb_pad(struct strbuf *sb, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_putn(sb, " ", 1);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not valid. */
static size_t utf8_sequence_length(const unsigned char *s, size_t n)
{
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* JSON strings must be valid UTF-8 with control characters escaped; anything else in a value
 * (a device name with stray bytes, say) becomes U+FFFD rather than breaking the document. */
static void json_string(struct strbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	sb_putn(sb, "\"", 1);
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			sb_putn(sb, "\\", 1);
			sb_putn(sb, (const char *)&p[i], 1);
			i++;
		} else if (c == '\n') {
			sb_puts(sb, "\\n");
			i++;
		} else if (c == '\t') {
			sb_puts(sb, "\\t");
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(sb, "\\u%04x", c);
			i++;
		} else {
			size_t len = utf8_sequence_length(&p[i], n - i);
			if (len == 0) {
				sb_puts(sb, "\\ufffd");
				i++;
			} else {
				sb_putn(sb, (const char *)&p[i], len);
				i += len;
			}
		}
	}
	sb_putn(sb, "\"", 1);
}

static void scalar_text(struct strbuf *sb, const struct reply_node *node)
{
	switch (node->type) {
	case NODE_STR:
		sb_puts(sb, node->value.str != NULL ? node->value.str : "");
		break;
	case NODE_U64:
		sb_printf(sb, "%" PRIu64, node->value.u64);
		break;
	case NODE_I64:
		sb_printf(sb, "%" PRId64, node->value.i64);
		break;
	case NODE_DOUBLE:
		sb_printf(sb, "%.*f", node->decimals, node->value.dbl);
		break;
	case NODE_BOOL:
		sb_puts(sb, node->value.boolean ? "yes" : "no");
		break;
	case NODE_OBJECT:
	case NODE_LIST:
		sb_puts(sb, "-");
		break;
	}
}

static void json_value(struct strbuf *sb, const struct reply *reply, int index)
{
	const struct reply_node *node = &reply->nodes[index];
	bool first = true;

	switch (node->type) {
	case NODE_OBJECT:
	case NODE_LIST:
		sb_puts(sb, node->type == NODE_OBJECT ? "{" : "[");
		for (int c = node->first_child; c >= 0; c = reply->nodes[c].next) {
			if (!first)
				sb_puts(sb, ", ");
			first = false;
			if (node->type == NODE_OBJECT) {
				json_string(sb,
				            reply->nodes[c].key != NULL ? reply->nodes[c].key : "");
				sb_puts(sb, ": ");
			}
			json_value(sb, reply, c);
		}
		sb_puts(sb, node->type == NODE_OBJECT ? "}" : "]");
		break;
	case NODE_STR:
		json_string(sb, node->value.str != NULL ? node->value.str : "");
		break;
	case NODE_DOUBLE:
		if (isfinite(node->value.dbl))
			sb_printf(sb, "%.*f", node->decimals, node->value.dbl);
		else
			sb_puts(sb, "null");
		break;
	case NODE_BOOL:
		sb_puts(sb, node->value.boolean ? "true" : "false");
		break;
	default:
		scalar_text(sb, node);
		break;
	}
}

static bool is_container(const struct reply_node *node)
{
	return node->type == NODE_OBJECT || node->type == NODE_LIST;
}

/* Scalar text of a node, in a small buffer (for measuring column widths). */
static size_t scalar_width(const struct reply_node *node)
{
	struct strbuf sb = {0};

	scalar_text(&sb, node);
	size_t len = sb.len;
	free(sb.data);
	return len;
}

#define TABLE_MAX_COLUMNS 32
#define TEXT_WIDTH        120 /* a two-column table wider than this prints as records */

static void sb_heading(struct strbuf *sb, const char *key)
{
	for (const char *k = key; *k != '\0'; k++) {
		char up =
		        (*k >= 'a' && *k <= 'z') ? (char)(*k - 'a' + 'A') : (*k == '_' ? ' ' : *k);
		sb_putn(sb, &up, 1);
	}
}

/* The cell of a row under a column's key, NULL if the row has none. */
static const struct reply_node *row_cell(const struct reply *reply, int row, const char *key)
{
	for (int c = reply->nodes[row].first_child; c >= 0; c = reply->nodes[c].next) {
		const struct reply_node *cell = &reply->nodes[c];
		if (cell->key != NULL && !is_container(cell) && strcmp(cell->key, key) == 0)
			return cell;
	}
	return NULL;
}

/* Text of a scalar, broken at blanks so no line passes TEXT_WIDTH; continuation lines are
 * indented by more. */
static void sb_wrapped(struct strbuf *sb, const struct reply_node *node, size_t indent, size_t more)
{
	struct strbuf text = {0};

	scalar_text(&text, node);
	const char *p = text.data != NULL ? text.data : "";
	size_t room = TEXT_WIDTH - indent;
	size_t len = strlen(p);
	while (len > room) {
		size_t cut = room;
		while (cut > 0 && p[cut] != ' ')
			cut--;
		if (cut == 0)
			break;
		sb_putn(sb, p, cut);
		sb_puts(sb, "\n");
		sb_pad(sb, indent + more);
		p += cut + 1;
		len -= cut + 1;
		room = TEXT_WIDTH - indent - more;
	}
	sb_putn(sb, p, len);
	free(text.data);
}

/* A two-column table too wide for a terminal (a command and its help) prints as records, as
 * `ovs-appctl help` does: the first column on a line of its own, wrapped, and the second
 * indented under it. Wider tables stay tables: scripts read their rows. */
static void text_records(struct strbuf *sb, const struct reply *reply, int list, size_t indent,
                         const char *const *columns)
{
	sb_pad(sb, indent);
	sb_heading(sb, columns[0]);
	sb_puts(sb, "\n");
	sb_pad(sb, indent + 4);
	sb_heading(sb, columns[1]);
	sb_puts(sb, "\n");
	for (int row = reply->nodes[list].first_child; row >= 0; row = reply->nodes[row].next) {
		const struct reply_node *first = row_cell(reply, row, columns[0]);
		const struct reply_node *second = row_cell(reply, row, columns[1]);
		sb_pad(sb, indent);
		if (first != NULL)
			sb_wrapped(sb, first, indent, 8);
		sb_puts(sb, "\n");
		if (second != NULL) {
			sb_pad(sb, indent + 4);
			sb_wrapped(sb, second, indent + 4, 0);
			sb_puts(sb, "\n");
		}
	}
}

/* A list of objects prints as a table: one column per scalar key (in order of first use),
 * headed by the key in capitals. */
static void text_table(struct strbuf *sb, const struct reply *reply, int list, size_t indent)
{
	const char *columns[TABLE_MAX_COLUMNS];
	size_t widths[TABLE_MAX_COLUMNS];
	unsigned int nb_columns = 0;

	for (int row = reply->nodes[list].first_child; row >= 0; row = reply->nodes[row].next) {
		for (int c = reply->nodes[row].first_child; c >= 0; c = reply->nodes[c].next) {
			const struct reply_node *cell = &reply->nodes[c];
			unsigned int col;
			if (is_container(cell) || cell->key == NULL)
				continue;
			for (col = 0; col < nb_columns; col++)
				if (strcmp(columns[col], cell->key) == 0)
					break;
			if (col == nb_columns) {
				if (nb_columns == TABLE_MAX_COLUMNS)
					continue;
				columns[nb_columns] = cell->key;
				widths[nb_columns++] = strlen(cell->key);
			}
			size_t w = scalar_width(cell);
			if (w > widths[col])
				widths[col] = w;
		}
	}
	if (nb_columns == 0)
		return;
	size_t total = indent;
	for (unsigned int col = 0; col < nb_columns; col++)
		total += widths[col] + 2;
	if (nb_columns == 2 && total - 2 > TEXT_WIDTH) {
		text_records(sb, reply, list, indent, columns);
		return;
	}

	sb_pad(sb, indent);
	for (unsigned int col = 0; col < nb_columns; col++) {
		sb_heading(sb, columns[col]);
		if (col + 1 < nb_columns)
			sb_pad(sb, widths[col] - strlen(columns[col]) + 2);
	}
	sb_puts(sb, "\n");
	for (int row = reply->nodes[list].first_child; row >= 0; row = reply->nodes[row].next) {
		sb_pad(sb, indent);
		for (unsigned int col = 0; col < nb_columns; col++) {
			size_t w = 0;
			for (int c = reply->nodes[row].first_child; c >= 0;
			     c = reply->nodes[c].next) {
				const struct reply_node *cell = &reply->nodes[c];
				if (cell->key != NULL && !is_container(cell) &&
				    strcmp(cell->key, columns[col]) == 0) {
					size_t before = sb->len;
					scalar_text(sb, cell);
					w = sb->len - before;
					break;
				}
			}
			if (col + 1 < nb_columns)
				sb_pad(sb, widths[col] - w + 2);
		}
		/* Trailing blanks of the last column are not written. */
		sb_puts(sb, "\n");
	}
}

static bool list_of_objects(const struct reply *reply, int list)
{
	int first = reply->nodes[list].first_child;

	return first >= 0 && reply->nodes[first].type == NODE_OBJECT;
}

static void text_object(struct strbuf *sb, const struct reply *reply, int object, size_t indent);

static void text_list(struct strbuf *sb, const struct reply *reply, int list, size_t indent)
{
	if (list_of_objects(reply, list)) {
		text_table(sb, reply, list, indent);
		return;
	}
	/* A list of scalars reads best on one line. */
	sb_pad(sb, indent);
	for (int c = reply->nodes[list].first_child; c >= 0; c = reply->nodes[c].next) {
		scalar_text(sb, &reply->nodes[c]);
		if (reply->nodes[c].next >= 0)
			sb_puts(sb, ", ");
	}
	sb_puts(sb, "\n");
}

static void text_object(struct strbuf *sb, const struct reply *reply, int object, size_t indent)
{
	size_t key_width = 0;

	for (int c = reply->nodes[object].first_child; c >= 0; c = reply->nodes[c].next)
		if (!is_container(&reply->nodes[c]) && reply->nodes[c].key != NULL &&
		    strlen(reply->nodes[c].key) > key_width)
			key_width = strlen(reply->nodes[c].key);

	for (int c = reply->nodes[object].first_child; c >= 0; c = reply->nodes[c].next) {
		const struct reply_node *node = &reply->nodes[c];
		const char *key = node->key != NULL ? node->key : "";

		if (node->document) {
			sb_puts(sb, node->value.str);
			continue;
		}
		if (!is_container(node)) {
			sb_pad(sb, indent);
			sb_puts(sb, key);
			sb_puts(sb, ":");
			sb_pad(sb, key_width - strlen(key) + 1);
			scalar_text(sb, node);
			sb_puts(sb, "\n");
			continue;
		}
		/* A reply that is one table needs no heading. */
		bool only_member =
		        object == 0 && reply->nodes[object].first_child == c && node->next < 0;
		if (!only_member) {
			sb_pad(sb, indent);
			sb_puts(sb, key);
			sb_puts(sb, ":\n");
		}
		size_t inner = only_member ? indent : indent + 2;
		if (node->type == NODE_OBJECT)
			text_object(sb, reply, c, inner);
		else if (node->first_child >= 0)
			text_list(sb, reply, c, inner);
	}
}

char *reply_render(const struct reply *reply, enum reply_format format, size_t *len)
{
	struct strbuf sb = {0};
	const char *error = reply_error_message(reply);

	if (format == REPLY_FORMAT_JSON) {
		if (error != NULL) {
			sb_puts(&sb, "{\"error\": ");
			json_string(&sb, error);
			sb_puts(&sb, "}");
		} else {
			json_value(&sb, reply, 0);
		}
		sb_puts(&sb, "\n");
	} else if (error != NULL) {
		sb_puts(&sb, error);
		sb_puts(&sb, "\n");
	} else {
		text_object(&sb, reply, 0, 0);
	}
	if (sb.failed) {
		free(sb.data);
		return NULL;
	}
	if (sb.data == NULL)
		sb.data = strdup("");
	if (len != NULL)
		*len = sb.data != NULL ? sb.len : 0;
	return sb.data;
}
