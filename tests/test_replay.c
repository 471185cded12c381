/* pcap replay tests: each case folder (tests/replay/<case>) holds a ferryd config, in-<port>.pcap
 * inputs and expect-<port>.pcap expectations. ferryd runs with net_pcap ports, replays, stops, and
 * what each port sent is compared frame by frame with what it should have sent. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_MS    15000
#define MAX_PORTS  16
#define MAX_FRAMES 4096

struct replay_port {
	char name[32];
	char input[512];  /* in-<port>.pcap, or "" */
	char output[512]; /* where ferryd writes what it sends */
	unsigned int nb_input;
	bool held; /* added with receive off */
};

struct replay {
	char dir[256];
	char out_dir[64];
	struct replay_port ports[MAX_PORTS];
	unsigned int nb_ports;
	struct harness_ferryd ferryd;
};

static const char *replay_root(void)
{
	const char *root = getenv("FERRY_REPLAY");
	return root != NULL ? root : "tests/replay";
}

/* Frames in a capture as libpcap reads them; -1 if it can't be opened. */
static int count_frames(const char *path)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *hdr;
	const unsigned char *data;
	pcap_t *p = pcap_open_offline(path, errbuf);
	int n = 0;

	if (p == NULL)
		return -1;
	while (pcap_next_ex(p, &hdr, &data) == 1)
		n++;
	pcap_close(p);
	return n;
}

/* Replaces "@pcap@" on a "port add <name> @pcap@ ..." line with net_pcap devargs for it; with
 * hold, a port with a capture starts with receive off (run_case lets it in later). */
static void expand_line(struct replay *r, const char *line, bool hold, char *out, size_t size)
{
	const char *at = strstr(line, "@pcap@");
	char name[32];

	if (at == NULL || sscanf(line, "port add %31s", name) != 1) {
		snprintf(out, size, "%s", line);
		return;
	}
	cr_assert_lt(r->nb_ports, MAX_PORTS);
	struct replay_port *port = &r->ports[r->nb_ports++];
	snprintf(port->name, sizeof(port->name), "%s", name);
	snprintf(port->output, sizeof(port->output), "%s/%s.pcap", r->out_dir, name);
	char input[sizeof(port->input)];
	snprintf(input, sizeof(input), "%s/in-%s.pcap", r->dir, name);
	memcpy(port->input, input, sizeof(input));
	char devargs[1200];
	if (access(port->input, R_OK) == 0) {
		int n = count_frames(port->input);
		cr_assert_geq(n, 0, "%s unreadable", port->input);
		port->nb_input = (unsigned int)n;
		snprintf(devargs, sizeof(devargs), "net_pcap_%s,rx_pcap=%s,tx_pcap=%s", name,
		         port->input, port->output);
	} else {
		port->input[0] = '\0';
		snprintf(devargs, sizeof(devargs), "net_pcap_%s,tx_pcap=%s", name, port->output);
	}
	const char *rest = at + strlen("@pcap@");
	port->held = hold && port->input[0] != '\0';
	snprintf(out, size, "%.*s%s%.*s%s\n", (int)(at - line), line, devargs,
	         (int)strcspn(rest, "\n"), rest, port->held ? " receive off" : "");
}

static uint64_t port_stat(struct replay *r, const char *port, const char *key)
{
	char *out;
	uint64_t value = 0;

	cr_assert_eq(harness_ctl(&r->ferryd, &out, NULL, "-j", "show", "port", port, "stats", NULL),
	             0);
	cr_assert(json_u64(out, key, &value), "no %s in %s", key, out);
	free(out);
	return value;
}

/* Waits until a port with an input has received all of it. */
static void wait_input_consumed(struct replay *r, const struct replay_port *port)
{
	uint64_t deadline = harness_now_ms() + WAIT_MS, rx = 0;

	if (port->input[0] == '\0')
		return;
	while ((rx = port_stat(r, port->name, "rx_packets")) < port->nb_input &&
	       harness_now_ms() < deadline)
		usleep(10000);
	cr_assert_eq(rx, port->nb_input, "%s received %lu of %u frames", port->name,
	             (unsigned long)rx, port->nb_input);
}

/* Waits until every port with an input has received all of it. */
static void wait_inputs_consumed(struct replay *r)
{
	for (unsigned int i = 0; i < r->nb_ports; i++)
		wait_input_consumed(r, &r->ports[i]);
}

/* Runs a whitespace-separated command through ferryctl. */
static void run_step(struct replay *r, char *line)
{
	const char *argv[24];
	int argc = 0;
	char *err = NULL;

	for (char *tok = strtok(line, " \t\n"); tok != NULL && argc < 20;
	     tok = strtok(NULL, " \t\n"))
		argv[argc++] = tok;
	if (argc == 0 || argv[0][0] == '#')
		return;
	argv[argc] = NULL;
	/* harness_ctl takes a NULL-terminated list: pass up to 20 words. */
	int status = harness_ctl(&r->ferryd, NULL, &err, argv[0], argv[1], argv[2], argv[3],
	                         argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], argv[10],
	                         argv[11], argv[12], argv[13], argv[14], argv[15], argv[16],
	                         argv[17], argv[18], argv[19], NULL);
	cr_assert_eq(status, 0, "step '%s' failed: %s", argv[0], err);
	free(err);
}

static void check_counters(struct replay *r)
{
	char path[600], line[256];

	snprintf(path, sizeof(path), "%s/expect-counters", r->dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char kind[16], a[64], b[64];
		unsigned long want;
		if (sscanf(line, "port %63s %63s %lu", a, b, &want) == 3) {
			cr_assert_eq(port_stat(r, a, b), want, "port %s %s", a, b);
		} else if (sscanf(line, "%15s %63s %lu", kind, a, &want) == 3 &&
		           strcmp(kind, "mac") == 0) {
			char *out;
			uint64_t value = 0;
			cr_assert_eq(harness_ctl(&r->ferryd, &out, NULL, "-j", "show", "mac",
			                         "stats", NULL),
			             0);
			cr_assert(json_u64(out, a, &value), "no %s in %s", a, out);
			cr_assert_eq(value, want, "mac %s: %s", a, out);
			free(out);
		}
	}
	fclose(f);
}

/* Every frame a port received was forwarded or dropped for a counted reason, and no buffer
 * is left behind. */
static void check_accounting(struct replay *r)
{
	for (unsigned int i = 0; i < r->nb_ports; i++) {
		const char *name = r->ports[i].name;
		uint64_t rx = port_stat(r, name, "rx_packets");
		uint64_t forwarded = port_stat(r, name, "rx_forwarded");
		uint64_t drops = port_stat(r, name, "rx_drops");
		cr_assert_eq(rx, forwarded + drops, "%s: rx %lu != forwarded %lu + drops %lu", name,
		             (unsigned long)rx, (unsigned long)forwarded, (unsigned long)drops);
	}
	char *out;
	uint64_t in_use = 1;
	cr_assert_eq(harness_ctl(&r->ferryd, &out, NULL, "-j", "show", "pools", NULL), 0);
	cr_assert(json_u64(out, "in_use", &in_use), "%s", out);
	cr_assert_eq(in_use, 0, "mbufs leaked: %s", out);
	free(out);
}

static void hex_dump(const char *label, const unsigned char *data, unsigned int len)
{
	fprintf(stderr, "%s (%u bytes):", label, len);
	for (unsigned int i = 0; i < len; i++)
		fprintf(stderr, "%s%02x", i % 16 == 0 ? "\n  " : " ", data[i]);
	fprintf(stderr, "\n");
}

/* Compares two captures frame by frame; on the first difference prints both frames. */
static void compare_captures(const char *port, const char *got_path, const char *want_path)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_t *got = pcap_open_offline(got_path, errbuf);
	pcap_t *want = access(want_path, R_OK) == 0 ? pcap_open_offline(want_path, errbuf) : NULL;
	unsigned int index = 0;

	cr_assert_not_null(got, "%s: no output capture %s: %s", port, got_path, errbuf);
	for (;;) {
		struct pcap_pkthdr *gh = NULL, *wh = NULL;
		const unsigned char *gd = NULL, *wd = NULL;
		bool have_got = pcap_next_ex(got, &gh, &gd) == 1;
		bool have_want = want != NULL && pcap_next_ex(want, &wh, &wd) == 1;
		if (!have_got && !have_want)
			break;
		index++;
		if (have_got && have_want && gh->caplen == wh->caplen &&
		    memcmp(gd, wd, gh->caplen) == 0)
			continue;
		fprintf(stderr, "port %s, frame %u differs:\n", port, index);
		if (have_want)
			hex_dump("  expected", wd, wh->caplen);
		else
			fprintf(stderr, "  expected: no more frames\n");
		if (have_got)
			hex_dump("  sent", gd, gh->caplen);
		else
			fprintf(stderr, "  sent: no more frames\n");
		cr_assert_fail("port %s: frame %u differs from %s", port, index, want_path);
	}
	pcap_close(got);
	if (want != NULL)
		pcap_close(want);
}

static void run_case(const char *name)
{
	static struct replay r;
	char path[600], line[1024], expanded[2048];
	char *config = NULL;
	size_t config_len = 0;

	memset(&r, 0, sizeof(r));
	snprintf(r.dir, sizeof(r.dir), "%s/%s", replay_root(), name);
	snprintf(r.out_dir, sizeof(r.out_dir), "/tmp/ferry-replay-XXXXXX");
	cr_assert_not_null(mkdtemp(r.out_dir));

	snprintf(path, sizeof(path), "%s/ferryd.conf", r.dir);
	FILE *in = fopen(path, "r");
	cr_assert_not_null(in, "%s: %s", path, strerror(errno));
	FILE *conf = open_memstream(&config, &config_len);
	while (fgets(line, sizeof(line), in) != NULL) {
		expand_line(&r, line, true, expanded, sizeof(expanded));
		fputs(expanded, conf);
	}
	fclose(in);
	fclose(conf);
	cr_assert_eq(harness_ferryd_start(&r.ferryd, config), 0, "case %s", name);
	free(config);
	/* Every port is there before any frame moves; then each capture goes in whole, in the
	 * order of the ports' lines: the cases' order (a MAC learned on one port, then used on
	 * the next) is the same whether one worker switches or two at once. */
	for (unsigned int i = 0; i < r.nb_ports; i++) {
		if (!r.ports[i].held)
			continue;
		snprintf(line, sizeof(line), "port set %s receive on", r.ports[i].name);
		run_step(&r, line);
		wait_input_consumed(&r, &r.ports[i]);
	}

	snprintf(path, sizeof(path), "%s/steps", r.dir);
	FILE *steps = fopen(path, "r");
	if (steps != NULL) {
		while (fgets(line, sizeof(line), steps) != NULL) {
			expand_line(&r, line, false, expanded, sizeof(expanded));
			run_step(&r, expanded);
		}
		fclose(steps);
		wait_inputs_consumed(&r);
	}
	check_counters(&r);
	check_accounting(&r);
	cr_assert_eq(harness_ferryd_stop(&r.ferryd), 0);

	for (unsigned int i = 0; i < r.nb_ports; i++) {
		char want[600];
		snprintf(want, sizeof(want), "%s/expect-%s.pcap", r.dir, r.ports[i].name);
		compare_captures(r.ports[i].name, r.ports[i].output, want);
		unlink(r.ports[i].output);
	}
	rmdir(r.out_dir);
}

#define REPLAY_CASE(id, dir)                                                                       \
	Test(replay, id, .timeout = 120)                                                           \
	{                                                                                          \
		run_case(dir);                                                                     \
	}

REPLAY_CASE(learn_then_unicast, "learn-then-unicast")
REPLAY_CASE(flood_within_portgroup, "flood-within-portgroup")
REPLAY_CASE(vlan_push_pop, "vlan-push-pop")
REPLAY_CASE(no_uplink_to_uplink, "no-uplink-to-uplink")
REPLAY_CASE(mac_move_by_rarp, "mac-move-by-rarp")
REPLAY_CASE(aging, "aging")
REPLAY_CASE(full_table_fair_eviction, "full-table-fair-eviction")
REPLAY_CASE(malformed_dropped_and_counted, "malformed-dropped-and-counted")
REPLAY_CASE(one_flow_in_order, "one-flow-in-order")

/* Every real capture shared with the project, replayed into an uplink and a VM port of a switch
 * with two uplinks and two VM ports: nothing crashes, every frame is forwarded or dropped for a
 * counted reason, no buffer leaks, and an unreadable capture is refused with a clear error. */
Test(real_captures, every_frame_forwarded_or_counted, .timeout = 300)
{
	const char *dir = getenv("FERRY_SHARED_PCAPS");
	cr_assert_not_null(dir, "FERRY_SHARED_PCAPS is not set");
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "%s: %s (the real captures of pcaps/real)", dir, strerror(errno));
	unsigned int nb_files = 0, nb_refused = 0;
	struct dirent *entry;

	while ((entry = readdir(d)) != NULL) {
		if (strstr(entry->d_name, ".pcap") == NULL)
			continue;
		static struct replay r;
		char capture[400], line[2048];
		memset(&r, 0, sizeof(r));
		snprintf(capture, sizeof(capture), "%s/%s", dir, entry->d_name);
		snprintf(r.out_dir, sizeof(r.out_dir), "/tmp/ferry-real-XXXXXX");
		cr_assert_not_null(mkdtemp(r.out_dir));
		snprintf(line, sizeof(line),
		         "portgroup add native\n"
		         "portgroup add v123 vlan 123\n"
		         "port add up2 net_pcap_up2,tx_pcap=%s/up2.pcap role uplink\n"
		         "port add vnic2 net_pcap_vnic2,tx_pcap=%s/vnic2.pcap role vnic portgroup "
		         "v123\n",
		         r.out_dir, r.out_dir);
		cr_assert_eq(harness_ferryd_start(&r.ferryd, line), 0, "%s", entry->d_name);
		int frames = count_frames(capture);
		const char *names[] = {"up1", "vnic1"};
		for (int i = 0; i < 2; i++) {
			char devargs[1400], *err = NULL;
			snprintf(devargs, sizeof(devargs),
			         "net_pcap_%s,rx_pcap=%s,tx_pcap=%s/%s.pcap", names[i], capture,
			         r.out_dir, names[i]);
			int status = harness_ctl(&r.ferryd, NULL, &err, "port", "add", names[i],
			                         devargs, "role", i == 0 ? "uplink" : "vnic",
			                         i == 0 ? NULL : "portgroup", "native", NULL);
			if (frames < 0) {
				/* libpcap can't read it: the port is refused, ferryd goes on. */
				cr_assert_eq(status, 1, "%s: an unreadable capture must be refused",
				             entry->d_name);
				cr_assert(strstr(err, "cannot add port") != NULL, "%s", err);
				free(err);
				continue;
			}
			cr_assert_eq(status, 0, "%s: %s", entry->d_name, err);
			free(err);
			struct replay_port *port = &r.ports[r.nb_ports++];
			snprintf(port->name, sizeof(port->name), "%s", names[i]);
			snprintf(port->input, sizeof(port->input), "%s", capture);
			port->nb_input = (unsigned int)frames;
		}
		nb_refused += frames < 0;
		wait_inputs_consumed(&r);
		r.ports[r.nb_ports++] = (struct replay_port){.name = "up2"};
		r.ports[r.nb_ports++] = (struct replay_port){.name = "vnic2"};
		check_accounting(&r);
		cr_assert_eq(harness_ferryd_stop(&r.ferryd), 0, "%s", entry->d_name);
		const char *outputs[] = {"up1", "vnic1", "up2", "vnic2"};
		for (int i = 0; i < 4; i++) {
			snprintf(line, sizeof(line), "%s/%s.pcap", r.out_dir, outputs[i]);
			unlink(line);
		}
		rmdir(r.out_dir);
		nb_files++;
	}
	closedir(d);
	cr_assert_geq(nb_files, 20, "only %u captures found in %s", nb_files, dir);
	cr_assert_geq(nb_refused, 1, "the damaged capture must have been refused");
}
