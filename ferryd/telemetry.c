/* ferryd's DPDK telemetry endpoints (/ferry/...): each one a CLI command's JSON answer, as
 * ferryctl -j prints it, turned into telemetry data. */
#include "telemetry.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_log.h>
#include <rte_telemetry.h>

#include "cli/client.h"
#include "cli/json.h"

/* DPDK 22.11's telemetry callbacks take no argument, so they find the CLI through a link in
 * EAL's runtime folder (beside the telemetry socket itself), made at registration. */
#define TELEMETRY_LINK "ferry_cli.sock"
/* A CLI answer telemetry can carry (its own buffer is 16 KB). */
#define ANSWER_MAX  (256 * 1024)
#define NESTING_MAX 8

static int link_path(char *path, size_t size)
{
	int n = snprintf(path, size, "%s/%s", rte_eal_get_runtime_dir(), TELEMETRY_LINK);

	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* Runs a command through ferryd's CLI in JSON; the answer (malloc'ed) or NULL. */
static char *cli_call(const char *line)
{
	struct client *client = NULL;
	char path[PATH_MAX], why[128], *body = NULL;

	if (link_path(path, sizeof(path)) < 0 ||
	    client_open_unix(&client, path, why, sizeof(why)) < 0)
		return NULL;
	if (client_call(client, "output json", &body) == CLIENT_OK) {
		free(body);
		/* A refused command answers {"error": ...}: answer() says null for it. */
		if (client_call(client, line, &body) == CLIENT_LOST)
			body = NULL;
	} else {
		free(body);
		body = NULL;
	}
	client_close(client);
	return body;
}

/* A telemetry name from a JSON key: letters, digits, '_' and '/' only. */
static void tel_name(char *out, size_t size, const char *in)
{
	size_t i = 0;

	for (; in[i] != '\0' && i + 1 < size; i++)
		out[i] = isalnum((unsigned char)in[i]) || in[i] == '/' ? in[i] : '_';
	out[i] = '\0';
}

static const char *object_to_dict(const char *p, struct rte_tel_data *d, int depth);

/* A list of objects becomes a dict keyed by each one's name (or id, or place). */
static const char *objects_to_dict(const char *p, struct rte_tel_data *d, int depth)
{
	unsigned int index = 0;

	rte_tel_data_start_dict(d);
	while (p != NULL && *p == '{') {
		char key[RTE_TEL_MAX_STRING_LEN], name[RTE_TEL_MAX_STRING_LEN];
		const char *end = json_skip(p);
		if (end == NULL)
			return NULL;
		/* The name is the element's own member: look only inside its text. */
		char *element = strndup(p, (size_t)(end - p));
		if (element == NULL)
			return NULL;
		if (!json_string(element, "name", name, sizeof(name)) &&
		    !json_string(element, "vswitch", name, sizeof(name)) &&
		    !json_string(element, "id", name, sizeof(name))) {
			uint64_t id;
			if (json_u64(element, "id", &id))
				snprintf(name, sizeof(name), "%" PRIu64, id);
			else
				snprintf(name, sizeof(name), "%u", index);
		}
		free(element);
		tel_name(key, sizeof(key), name);
		struct rte_tel_data *sub = rte_tel_data_alloc();
		if (sub == NULL)
			return NULL;
		if (object_to_dict(p, sub, depth + 1) == NULL ||
		    rte_tel_data_add_dict_container(d, key, sub, 0) < 0)
			rte_tel_data_free(sub);
		p = json_skip_space(end);
		if (*p == ',')
			p = json_skip_space(p + 1);
		index++;
	}
	return p;
}

/* A JSON array at p (at its bracket) added to d under key: strings and numbers as telemetry
 * arrays, objects as a dict. Returns what follows, or NULL. */
static const char *add_array(const char *p, struct rte_tel_data *d, const char *key, int depth)
{
	const char *end = json_skip(p);
	struct rte_tel_data *sub;

	if (end == NULL)
		return NULL;
	p = json_skip_space(p + 1);
	sub = rte_tel_data_alloc();
	if (sub == NULL)
		return end;
	if (*p == '{') {
		objects_to_dict(p, sub, depth);
	} else if (*p == '"' || *p == ']') {
		rte_tel_data_start_array(sub, RTE_TEL_STRING_VAL);
		char value[RTE_TEL_MAX_STRING_LEN];
		while (*p == '"' && (p = json_string_at(p, value, sizeof(value))) != NULL) {
			rte_tel_data_add_array_string(sub, value);
			p = json_skip_space(p);
			if (*p == ',')
				p = json_skip_space(p + 1);
		}
	} else {
		rte_tel_data_start_array(sub, RTE_TEL_U64_VAL);
		while (p != NULL && *p != ']' && *p != '\0') {
			rte_tel_data_add_array_u64(sub, strtoull(p, NULL, 10));
			p = json_skip(p);
			p = p != NULL ? json_skip_space(p) : NULL;
			if (p != NULL && *p == ',')
				p = json_skip_space(p + 1);
		}
	}
	if (rte_tel_data_add_dict_container(d, key, sub, 0) < 0)
		rte_tel_data_free(sub);
	return end;
}

/* A JSON object at p (at its brace) into d, a new dict. Returns what follows, or NULL. */
static const char *object_to_dict(const char *p, struct rte_tel_data *d, int depth)
{
	if (depth >= NESTING_MAX || *(p = json_skip_space(p)) != '{')
		return NULL;
	rte_tel_data_start_dict(d);
	p = json_skip_space(p + 1);
	while (*p != '}') {
		char raw[RTE_TEL_MAX_STRING_LEN], key[RTE_TEL_MAX_STRING_LEN];
		char value[RTE_TEL_MAX_STRING_LEN];
		if ((p = json_string_at(p, raw, sizeof(raw))) == NULL)
			return NULL;
		tel_name(key, sizeof(key), raw);
		p = json_skip_space(p);
		if (*p++ != ':')
			return NULL;
		p = json_skip_space(p);
		if (*p == '"') {
			p = json_string_at(p, value, sizeof(value));
			if (p != NULL)
				rte_tel_data_add_dict_string(d, key, value);
		} else if (*p == '{') {
			struct rte_tel_data *sub = rte_tel_data_alloc();
			const char *end = json_skip(p);
			if (sub != NULL && (object_to_dict(p, sub, depth + 1) == NULL ||
			                    rte_tel_data_add_dict_container(d, key, sub, 0) < 0))
				rte_tel_data_free(sub);
			p = end;
		} else if (*p == '[') {
			p = add_array(p, d, key, depth + 1);
		} else {
			const char *end = json_skip(p);
			if (end == NULL)
				return NULL;
			size_t len = RTE_MIN((size_t)(end - p), sizeof(value) - 1);
			memcpy(value, p, len);
			value[len] = '\0';
			/* Integers as numbers; anything else (decimals, true) as its text. */
			if (isdigit((unsigned char)value[0]) && strspn(value, "0123456789") == len)
				rte_tel_data_add_dict_u64(d, key, strtoull(value, NULL, 10));
			else if (value[0] == '-' && len > 1 && len < 10 &&
			         strspn(value + 1, "0123456789") == len - 1)
				rte_tel_data_add_dict_int(d, key, atoi(value));
			else if (strcmp(value, "null") != 0)
				rte_tel_data_add_dict_string(d, key, value);
			p = end;
		}
		if (p == NULL)
			return NULL;
		p = json_skip_space(p);
		if (*p == ',')
			p = json_skip_space(p + 1);
		else if (*p != '}')
			return NULL;
	}
	return p + 1;
}

/* Answers an endpoint with a command's JSON; the command may take the endpoint's parameter. */
static int answer(const char *line, struct rte_tel_data *d)
{
	char *body = cli_call(line);

	if (body == NULL)
		return -EIO;
	/* A failed command (no such port, say) answers {"error": ...}: telemetry says null. */
	if (strncmp(body, "{\"error\":", 9) == 0) {
		free(body);
		return -EINVAL;
	}
	int ret = object_to_dict(body, d, 0) != NULL ? 0 : -EINVAL;
	free(body);
	return ret;
}

/* The endpoints that take no parameter, each a command's answer: X(function, path, command,
 * help). DPDK 22.11's callbacks take no argument, so each is a function of its own. */
#define PLAIN_ENDPOINTS(X)                                                                         \
	X(ep_ports, "/ferry/ports", "show ports", "ferry's ports, as show ports")                  \
	X(ep_fdb_stats, "/ferry/fdb/stats", "show mac stats",                                      \
	  "every MAC table's counters, as show mac stats")                                         \
	X(ep_vms, "/ferry/vms", "vm list", "the VMs of this host, as vm list")                     \
	X(ep_migrations, "/ferry/migrations", "migrate status", "migrations, as migrate status")   \
	X(ep_loop, "/ferry/loop", "show loop", "the forwarding workers, as show loop")             \
	X(ep_capture, "/ferry/capture", "show capture", "the port capture, as show capture")

#define PLAIN_ENDPOINT_FUNCTION(function, path, command, help)                                     \
	static int function(const char *cmd, const char *params, struct rte_tel_data *d)           \
	{                                                                                          \
		(void)cmd, (void)params;                                                           \
		return answer(command, d);                                                         \
	}
PLAIN_ENDPOINTS(PLAIN_ENDPOINT_FUNCTION)
#undef PLAIN_ENDPOINT_FUNCTION

static int ep_port_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	char line[96];

	(void)cmd;
	/* A port name is one word: nothing else gets into the command line. */
	if (params == NULL || params[0] == '\0' || strlen(params) > 32 ||
	    strspn(params, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
	            strlen(params))
		return -EINVAL;
	snprintf(line, sizeof(line), "show port %s stats", params);
	return answer(line, d);
}

int telemetry_endpoints_register(const char *cli_socket)
{
	static const struct {
		const char *path;
		telemetry_cb fn;
		const char *help;
	} endpoints[] = {
#define PLAIN_ENDPOINT_ENTRY(function, path, command, help) {path, function, help},
	        PLAIN_ENDPOINTS(PLAIN_ENDPOINT_ENTRY)
#undef PLAIN_ENDPOINT_ENTRY
	                {"/ferry/port/stats", ep_port_stats,
	                 "a port's counters, as show port <name> stats. Parameter: port name"},
	};
	char path[PATH_MAX], target[PATH_MAX];
	int ret = link_path(path, sizeof(path));

	if (ret < 0)
		return ret;
	if (cli_socket[0] == '/')
		snprintf(target, sizeof(target), "%s", cli_socket);
	else if (realpath(".", target) == NULL ||
	         strlen(target) + 1 + strlen(cli_socket) >= sizeof(target))
		return -ENAMETOOLONG;
	else
		strcat(strcat(target, "/"), cli_socket);
	unlink(path);
	if (symlink(target, path) < 0) {
		ret = -errno;
		RTE_LOG(ERR, USER1, "telemetry: cannot link %s: %s\n", path, strerror(errno));
		return ret;
	}
	for (size_t i = 0; i < RTE_DIM(endpoints); i++) {
		ret = rte_telemetry_register_cmd(endpoints[i].path, endpoints[i].fn,
		                                 endpoints[i].help);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void telemetry_endpoints_unregister(void)
{
	char path[PATH_MAX];

	/* DPDK keeps the endpoints; without the link they answer an error. */
	if (link_path(path, sizeof(path)) == 0)
		unlink(path);
}
