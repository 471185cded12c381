/* Integration tests: a real ferryd with virtual ports, driven through ferryctl. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_MS 10000

static char *config_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *config_text(const char *fmt, ...)
{
	char *text;
	va_list ap;

	va_start(ap, fmt);
	cr_assert_geq(vasprintf(&text, fmt, ap), 0);
	va_end(ap);
	return text;
}

/* Polls a port's counter through ferryctl -j until it reaches want or the deadline passes. */
static uint64_t wait_counter(struct harness_ferryd *d, const char *port, const char *key,
                             uint64_t want)
{
	uint64_t value = 0;
	uint64_t deadline = harness_now_ms() + WAIT_MS;

	do {
		char *out;
		cr_assert_eq(harness_ctl(d, &out, NULL, "-j", "show", "port", port, "stats", NULL),
		             0);
		cr_assert(json_u64(out, key, &value), "no %s in %s", key, out);
		free(out);
		if (value >= want)
			break;
		usleep(20000);
	} while (harness_now_ms() < deadline);
	return value;
}

/* Reads the frames of a capture, optionally only the broadcast ones, into (length, bytes)
 * records. */
static size_t read_frames_where(const char *path, bool broadcast_only, unsigned char *buf,
                                size_t size, unsigned int *count)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline(path, errbuf);
	struct pcap_pkthdr *hdr;
	const unsigned char *data;
	size_t len = 0;
	static const unsigned char bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	cr_assert_not_null(p, "%s: %s", path, errbuf);
	*count = 0;
	while (pcap_next_ex(p, &hdr, &data) == 1) {
		if (broadcast_only && (hdr->caplen < 6 || memcmp(data, bcast, 6) != 0))
			continue;
		cr_assert_leq(len + sizeof(uint32_t) + hdr->caplen, size);
		memcpy(buf + len, &hdr->caplen, sizeof(uint32_t));
		memcpy(buf + len + sizeof(uint32_t), data, hdr->caplen);
		len += sizeof(uint32_t) + hdr->caplen;
		(*count)++;
	}
	pcap_close(p);
	return len;
}

static uint64_t json_field(const char *json, const char *key)
{
	uint64_t v = 0;
	cr_assert(json_u64(json, key, &v), "no %s in %s", key, json);
	return v;
}

Test(ferryd, replayed_pcap_moves_counters_and_is_switched_unchanged, .timeout = 60)
{
	struct harness_ferryd d;
	char out_pcap[256];
	char *config;

	/* p0 replays a real capture of two hosts (6 frames, 400 bytes); p1 writes what it gets
	 * to a file; p2 is a sink. All three are VM ports of one port group. */
	snprintf(out_pcap, sizeof(out_pcap), "/tmp/ferry-test-out-%d.pcap", getpid());
	config = config_text("portgroup add pg\n"
	                     "port add p0 net_pcap0,rx_pcap=%s role vnic portgroup pg\n"
	                     "port add p1 net_pcap1,tx_pcap=%s role vnic portgroup pg\n"
	                     "port add p2 net_null0,no-rx=1 role vnic portgroup pg\n",
	                     harness_pcap("arkime--cloudshark-arp.pcap"), out_pcap);
	cr_assert_eq(harness_ferryd_start(&d, config), 0);
	free(config);

	cr_assert_eq(wait_counter(&d, "p0", "rx_packets", 6), 6);
	/* Both hosts are learned on p0: only the first frame, a broadcast, leaves; the five
	 * unicast frames between them are dropped as destined to their own port. */
	char *out;
	cr_assert_eq(harness_ctl(&d, &out, NULL, "-j", "show", "port", "p0", "stats", NULL), 0);
	cr_assert_eq(json_field(out, "rx_bytes"), 400);
	cr_assert_eq(json_field(out, "ipackets"), 6, "the PMD's own counter agrees");
	cr_assert_eq(json_field(out, "rx_forwarded"), 1);
	cr_assert_eq(json_field(out, "same_port"), 5);
	free(out);
	cr_assert_eq(wait_counter(&d, "p1", "tx_packets", 1), 1);
	cr_assert_eq(wait_counter(&d, "p2", "tx_packets", 1), 1);
	cr_assert_eq(harness_ctl(&d, &out, NULL, "show", "mac", NULL), 0);
	cr_assert(strstr(out, "00:1A:6B:6C:0C:CC") && strstr(out, "00:1D:09:F0:92:AB"), "%s", out);
	free(out);

	/* The pcap PMD flushes its file when the port closes. */
	cr_assert_eq(harness_ferryd_stop(&d), 0);
	static unsigned char in[8192], sent[8192];
	unsigned int nb_in, nb_sent;
	size_t in_len = read_frames_where(harness_pcap("arkime--cloudshark-arp.pcap"), true, in,
	                                  sizeof(in), &nb_in);
	size_t sent_len = read_frames_where(out_pcap, false, sent, sizeof(sent), &nb_sent);
	cr_assert_eq(nb_sent, nb_in);
	cr_assert_eq(sent_len, in_len);
	cr_assert_eq(memcmp(in, sent, in_len), 0, "frames must leave exactly as they came in");
	unlink(out_pcap);
}

Test(ferryd, clear_port_stats_zeroes_counters, .timeout = 60)
{
	struct harness_ferryd d;
	char *config = config_text("portgroup add pg\n"
	                           "port add p0 net_pcap0,rx_pcap=%s role vnic portgroup pg\n"
	                           "port add p1 net_null0,no-rx=1 role vnic portgroup pg\n",
	                           harness_pcap("zeek--nmap-vsn.pcap"));

	cr_assert_eq(harness_ferryd_start(&d, config), 0);
	free(config);
	cr_assert_eq(wait_counter(&d, "p0", "rx_packets", 547), 547);
	char *out;
	cr_assert_eq(harness_ctl(&d, &out, NULL, "-j", "show", "port", "p1", "stats", NULL), 0);
	cr_assert_gt(json_field(out, "tx_packets"), 500, "the ARP sweep's broadcasts");
	free(out);
	cr_assert_eq(harness_ctl(&d, NULL, NULL, "clear", "port", "p1", "stats", NULL), 0);
	cr_assert_eq(harness_ctl(&d, &out, NULL, "-j", "show", "port", "p1", "stats", NULL), 0);
	cr_assert_eq(json_field(out, "tx_packets"), 0);
	free(out);
	cr_assert_eq(harness_ferryd_stop(&d), 0);
}

Test(ferryd, show_ports_lists_name_driver_devargs_mac_link_mtu, .timeout = 60)
{
	struct harness_ferryd d;

	cr_assert_eq(harness_ferryd_start(&d, "port add ring0 net_ring0 mtu 9000\n"
	                                      "port add sink net_null0,no-rx=1\n"),
	             0);
	char *out, *err;
	cr_assert_eq(harness_ctl(&d, &out, &err, "show", "ports", NULL), 0, "%s", err);
	cr_assert(strstr(out, "NAME") && strstr(out, "DRIVER") && strstr(out, "MAC") &&
	                  strstr(out, "LINK") && strstr(out, "MTU") && strstr(out, "DEVARGS"),
	          "%s", out);
	cr_assert(strstr(out, "net_ring") && strstr(out, "ring0") && strstr(out, "9000"), "%s",
	          out);
	cr_assert(strstr(out, "net_null0,no-rx=1"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(harness_ctl(&d, &out, NULL, "-j", "show", "ports", NULL), 0);
	cr_assert(strncmp(out, "{\"ports\": [{\"name\": \"ring0\", \"driver\": \"net_ring\"", 46) ==
	                  0,
	          "%s", out);
	free(out);
	cr_assert_eq(harness_ferryd_stop(&d), 0);
}

Test(ferryd, port_add_and_del_at_run_time_with_clear_errors, .timeout = 60)
{
	struct harness_ferryd d;
	char *out, *err;

	cr_assert_eq(harness_ferryd_start(&d, NULL), 0);
	cr_assert_eq(harness_ctl(&d, &out, &err, "port", "add", "a", "net_null0,no-rx=1", NULL), 0,
	             "%s", err);
	free(out);
	free(err);
	/* The same name twice, a device that does not exist, an MTU out of range. */
	cr_assert_eq(harness_ctl(&d, NULL, &err, "port", "add", "a", "net_null1", NULL), 1);
	cr_assert(strstr(err, "port 'a' exists already"), "%s", err);
	free(err);
	cr_assert_eq(harness_ctl(&d, NULL, &err, "port", "add", "b", "net_nosuchpmd0", NULL), 1);
	cr_assert(strstr(err, "cannot add port 'b'"), "%s", err);
	cr_assert(strstr(err, "no DPDK driver or bus knows 'net_nosuchpmd0'"), "%s", err);
	free(err);
	/* A driver's own cause comes through, not the -1 every virtual driver returns. */
	cr_assert_eq(harness_ctl(&d, NULL, &err, "port", "add", "b",
	                         "net_af_packet9,iface=ferrynosuch0", NULL),
	             1);
	cr_assert(strstr(err, "No such device"), "%s", err);
	free(err);
	/* A jumbo port gets jumbo buffers, the others keep theirs. */
	cr_assert_eq(
	        harness_ctl(&d, NULL, &err, "port", "add", "j", "net_null3", "mtu", "9000", NULL),
	        0, "%s", err);
	free(err);
	cr_assert_eq(harness_ctl(&d, &out, NULL, "-j", "show", "pools", NULL), 0);
	cr_assert(strstr(out, "\"data_room\": 2176") != NULL, "%s", out);
	cr_assert(strstr(out, "\"data_room\": 9216") != NULL, "%s", out);
	free(out);
	cr_assert_eq(harness_ctl(&d, NULL, NULL, "port", "del", "j", NULL), 0);
	cr_assert_eq(
	        harness_ctl(&d, NULL, &err, "port", "add", "c", "net_null2", "mtu", "10", NULL), 1);
	cr_assert(strstr(err, "mtu: '10' is not a number"), "%s", err);
	free(err);
	cr_assert_eq(harness_ctl(&d, NULL, &err, "port", "del", "zzz", NULL), 1);
	cr_assert(strstr(err, "no port named 'zzz'"), "%s", err);
	free(err);
	/* Deleting frees the device: the same vdev can be added again. */
	cr_assert_eq(harness_ctl(&d, NULL, NULL, "port", "del", "a", NULL), 0);
	cr_assert_eq(harness_ctl(&d, NULL, &err, "port", "add", "a2", "net_null0,no-rx=1", NULL), 0,
	             "%s", err);
	free(err);
	cr_assert_eq(harness_ctl(&d, &out, NULL, "show", "ports", NULL), 0);
	cr_assert(strstr(out, "a2") != NULL && strstr(out, "net_null2") == NULL, "%s", out);
	free(out);
	cr_assert_eq(harness_ferryd_stop(&d), 0);
}

Test(ferryd, show_loop_and_version_and_log_level, .timeout = 60)
{
	struct harness_ferryd d;
	char *out, *err;
	uint64_t v;

	cr_assert_eq(harness_ferryd_start(&d, NULL), 0);
	cr_assert_eq(harness_ctl(&d, &out, NULL, "-j", "show", "loop", NULL), 0);
	const char *keys[] = {"iterations", "busy_cycles", "idle_cycles", "sleep_cycles",
	                      "max_sleep_us"};
	for (unsigned int i = 0; i < 5; i++)
		cr_assert(json_u64(out, keys[i], &v), "no %s in %s", keys[i], out);
	cr_assert(strstr(out, "\"cycles_per_packet\": ") != NULL, "%s", out);
	free(out);
	cr_assert_eq(harness_ctl(&d, &out, NULL, "show", "version", NULL), 0);
	cr_assert(strstr(out, "version:") && strstr(out, "DPDK 22.11"), "%s", out);
	free(out);
	cr_assert_eq(harness_ctl(&d, &out, &err, "log", "level", "ferry.*", "debug", NULL), 0, "%s",
	             err);
	free(out);
	free(err);
	cr_assert_eq(harness_ctl(&d, NULL, &err, "log", "level", "ferry.*", "loud", NULL), 1);
	cr_assert(strstr(err, "unknown level 'loud'"), "%s", err);
	free(err);
	cr_assert_eq(harness_ctl(&d, &out, NULL, "loop", "max-sleep", "250", NULL), 0);
	free(out);
	cr_assert_eq(harness_ctl(&d, &out, NULL, "-j", "show", "loop", NULL), 0);
	cr_assert(json_u64(out, "max_sleep_us", &v));
	cr_assert_eq(v, 250);
	free(out);
	cr_assert_eq(harness_ferryd_stop(&d), 0);
}

Test(ferryctl, exit_codes_say_who_failed, .timeout = 60)
{
	struct harness_ferryd d;
	char *out, *err;

	cr_assert_eq(harness_ferryd_start(&d, NULL), 0);
	cr_assert_eq(harness_ctl(&d, &out, &err, "show", "version", NULL), 0);
	cr_assert_str_eq(err, "");
	free(out);
	free(err);
	cr_assert_eq(harness_ctl(&d, &out, &err, "no", "such", "command", NULL), 1);
	cr_assert_str_eq(out, "");
	cr_assert(strstr(err, "unknown command 'no'"), "%s", err);
	free(out);
	free(err);
	cr_assert_eq(harness_ctl(&d, NULL, &err, "-j", "bogus", NULL), 1);
	cr_assert_str_eq(err, "{\"error\": \"unknown command 'bogus' (try 'help')\"}\n");
	free(err);
	cr_assert_eq(harness_ferryd_stop(&d), 0);
	cr_assert_eq(harness_ctl(&d, NULL, &err, "show", "version", NULL), 2);
	cr_assert(strstr(err, "cannot reach ferryd"), "%s", err);
	free(err);
}

Test(ferryctl, interactive_mode_reads_commands_from_stdin, .timeout = 60)
{
	struct harness_ferryd d;
	char cmd[1024];

	cr_assert_eq(harness_ferryd_start(&d, NULL), 0);
	snprintf(cmd, sizeof(cmd), "printf 'show version\\nbogus\\nshow loop\\n' | %s -s %s 2>&1",
	         getenv("FERRYCTL"), d.socket);
	FILE *p = popen(cmd, "r");
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	pclose(p);
	cr_assert(strstr(buf, "version:"), "%s", buf);
	cr_assert(strstr(buf, "unknown command 'bogus'"), "%s", buf);
	cr_assert(strstr(buf, "iterations:"), "the session goes on after an error: %s", buf);
	cr_assert_eq(harness_ferryd_stop(&d), 0);
}

Test(ferryd, sigterm_stops_cleanly_and_removes_the_socket, .timeout = 60)
{
	struct harness_ferryd d;

	cr_assert_eq(harness_ferryd_start(&d, "port add p0 net_ring0\n"), 0);
	char socket_path[sizeof(d.socket)];
	snprintf(socket_path, sizeof(socket_path), "%s", d.socket);
	cr_assert_eq(access(socket_path, F_OK), 0);
	struct stat st;
	cr_assert_eq(stat(socket_path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0660, "the socket is 0660, not %04o", st.st_mode & 07777);
	cr_assert_eq(harness_ferryd_stop(&d), 0, "exit status 0 after SIGTERM");
	cr_assert_neq(access(socket_path, F_OK), 0, "socket removed");
}

Test(ferryd, the_socket_directory_is_closed_to_others, .timeout = 60)
{
	char dir[] = "/tmp/ferry-test-sockdir-XXXXXX", cmd[1024];
	struct stat st;

	/* A directory an earlier run (or an administrator) left open to everyone. */
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chmod(dir, 0777), 0);
	/* Start it, wait (with a deadline) for its socket, then stop it. */
	snprintf(cmd, sizeof(cmd),
	         "%s -s %s/ferryd.sock -- --no-huge --no-shconf -m 128 --no-pci --no-telemetry "
	         "--lcores='0@(0-1)' --log-level='*:error' >/dev/null 2>&1 & pid=$!; "
	         "for i in $(seq 400); do [ -S %s/ferryd.sock ] && break; sleep 0.05; done; "
	         "kill -TERM $pid; wait $pid",
	         getenv("FERRYD"), dir, dir);
	int status = system(cmd);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ferryd ran until SIGTERM");
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(st.st_mode & 0007, 0, "others are shut out: %04o", st.st_mode & 07777);
	cr_assert_eq(st.st_mode & 0770, 0770, "the owner and group keep theirs");
	cr_assert_eq(rmdir(dir), 0, "ferryd removed its socket");
}

Test(ferryd, failing_startup_line_names_file_line_and_reason, .timeout = 60)
{
	struct harness_ferryd d;

	int status = harness_ferryd_run_to_exit(&d,
	                                        "# comment\n"
	                                        "port add p0 net_null0,no-rx=1\n"
	                                        "\n"
	                                        "port add p1 net_null1 mtu huge\n"
	                                        "port add p2 net_null2\n",
	                                        20000);
	cr_assert_neq(status, 0);
	cr_assert_neq(status, -1, "ferryd must exit by itself");
	FILE *f = fopen(d.log, "r");
	char log[16384];
	size_t n = fread(log, 1, sizeof(log) - 1, f);
	log[n] = '\0';
	fclose(f);
	cr_assert(strstr(log, "startup.conf:4: mtu: 'huge' is not a number"), "%s", log);
	cr_assert(strstr(log, "net_null2") == NULL, "nothing after the failing line runs: %s", log);
	harness_ferryd_discard(&d);
}

Test(ferryd, a_second_daemon_on_the_same_socket_is_refused, .timeout = 60)
{
	struct harness_ferryd first;

	cr_assert_eq(harness_ferryd_start(&first, NULL), 0);
	/* Point a second daemon at the first one's socket. */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	         "%s -s %s -- --no-huge --no-shconf -m 128 --no-pci --lcores='0@(0-1)' "
	         "--log-level='*:error' >/dev/null 2>&1",
	         getenv("FERRYD"), first.socket);
	int status = system(cmd);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	cr_assert_eq(harness_ctl(&first, NULL, NULL, "show", "version", NULL), 0,
	             "the first daemon still serves");
	cr_assert_eq(harness_ferryd_stop(&first), 0);
}

Test(ferryctl, words_with_blanks_and_quotes_arrive_as_one_word, .timeout = 60)
{
	struct harness_ferryd d;
	char *out, *err;

	cr_assert_eq(harness_ferryd_start(&d, NULL), 0);
	cr_assert_eq(harness_ctl(&d, &out, &err, "port", "add", "my \"odd\" port\\",
	                         "net_null0,no-rx=1", NULL),
	             0, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(harness_ctl(&d, &out, NULL, "-j", "show", "ports", NULL), 0);
	cr_assert(strstr(out, "\"name\": \"my \\\"odd\\\" port\\\\\"") != NULL, "%s", out);
	free(out);
	cr_assert_eq(harness_ferryd_stop(&d), 0);
}

/* Runs a ferryctl command (words up to a NULL) that must succeed; returns its stdout. */
#define ok(d, ...) ctl_ok(d, __VA_ARGS__, NULL)
/* Runs a ferryctl command that must fail with message on stderr. */
#define refused(d, message, ...) ctl_refused(d, message, __VA_ARGS__, NULL)

static int ctl_words(struct harness_ferryd *d, char **out, char **err, va_list ap)
{
	const char *w[10] = {NULL};
	for (int i = 0; i < 9; i++)
		if ((w[i] = va_arg(ap, const char *)) == NULL)
			break;
	return harness_ctl(d, out, err, w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], NULL);
}

static char *ctl_ok(struct harness_ferryd *d, ...)
{
	char *out, *err;
	va_list ap;
	va_start(ap, d);
	int status = ctl_words(d, &out, &err, ap);
	va_end(ap);
	cr_assert_eq(status, 0, "command failed: %s", err);
	free(err);
	return out;
}

static void ctl_refused(struct harness_ferryd *d, const char *message, ...)
{
	char *err;
	va_list ap;
	va_start(ap, message);
	int status = ctl_words(d, NULL, &err, ap);
	va_end(ap);
	cr_assert_eq(status, 1, "a command that must fail with '%s' did not", message);
	cr_assert(strstr(err, message) != NULL, "expected '%s' in: %s", message, err);
	free(err);
}

Test(vswitch_cli, vswitches_portgroups_roles_and_the_mac_table, .timeout = 60)
{
	struct harness_ferryd d;
	char *out;

	cr_assert_eq(harness_ferryd_start(&d, NULL), 0);
	free(ok(&d, "vswitch", "add", "vSwitch1"));
	refused(&d, "exists already", "vswitch", "add", "vSwitch1");
	free(ok(&d, "portgroup", "add", "vMotion", "vswitch", "vSwitch1", "vlan", "20"));
	free(ok(&d, "portgroup", "add", "VM Network"));
	free(ok(&d, "portgroup", "add", "Web", "vlan", "10"));
	refused(&d, "not a number from 0 to 4094", "portgroup", "add", "x", "vlan", "4095");
	refused(&d, "exists already", "portgroup", "add", "Web");

	/* Roles are checked before any device is opened. */
	refused(&d, "needs a portgroup", "port", "add", "v1", "net_null0,no-rx=1", "role", "vnic");
	refused(&d, "give it no portgroup", "port", "add", "u1", "net_null0,no-rx=1", "role",
	        "uplink", "portgroup", "Web");
	refused(&d, "unknown role", "port", "add", "v1", "net_null0,no-rx=1", "role", "trunk");
	refused(&d, "no port group named", "port", "add", "v1", "net_null0,no-rx=1", "role", "vnic",
	        "portgroup", "Nope");
	free(ok(&d, "port", "add", "up0", "net_null0,no-rx=1", "role", "uplink"));
	char *err;
	cr_assert_eq(harness_ctl(&d, NULL, &err, "port", "add", "vm1", "net_null1,no-rx=1", "role",
	                         "vnic", "portgroup", "VM Network", NULL),
	             0, "%s", err);
	free(err);
	cr_assert_eq(harness_ctl(&d, NULL, &err, "port", "add", "vmk1", "net_null2,no-rx=1", "role",
	                         "vmk", "portgroup", "vMotion", NULL),
	             0, "%s", err);
	free(err);

	out = ok(&d, "show", "ports");
	cr_assert(strstr(out, "ROLE") && strstr(out, "uplink") && strstr(out, "vSwitch1") &&
	                  strstr(out, "vMotion"),
	          "%s", out);
	free(out);
	out = ok(&d, "-j", "show", "vswitches");
	cr_assert(strstr(out, "\"name\": \"vSwitch1\", \"ports\": 1, \"uplinks\": 0, "
	                      "\"portgroups\": 1") != NULL,
	          "%s", out);
	free(out);
	refused(&d, "still has ports", "vswitch", "del", "vSwitch1");
	refused(&d, "still has 1 ports", "portgroup", "del", "VM Network");
	refused(&d, "is on vSwitch1", "port", "set", "vm1", "portgroup", "vMotion");
	free(ok(&d, "port", "set", "vm1", "portgroup", "Web"));
	free(ok(&d, "portgroup", "del", "VM Network"));
	out = ok(&d, "show", "portgroups");
	cr_assert(strstr(out, "VM Network") == NULL && strstr(out, "Web") != NULL, "%s", out);
	free(out);

	/* Static entries, filters, flushes. */
	free(ok(&d, "mac", "add", "02:00:00:00:00:01", "port", "vm1", "vlan", "10"));
	free(ok(&d, "mac", "add", "02:00:00:00:00:02", "port", "up0", "vlan", "10"));
	refused(&d, "only unicast", "mac", "add", "01:00:5e:00:00:01", "port", "vm1");
	refused(&d, "not a MAC address", "mac", "add", "02:00:00:00:00", "port", "vm1");
	out = ok(&d, "show", "mac", "port", "vm1");
	cr_assert(strstr(out, "02:00:00:00:00:01") && strstr(out, "static") &&
	                  !strstr(out, "02:00:00:00:00:02"),
	          "%s", out);
	free(out);
	out = ok(&d, "-j", "show", "mac", "stats", "vswitch", "vSwitch0");
	uint64_t v;
	cr_assert(json_u64(out, "static", &v) && v == 2, "%s", out);
	free(out);
	out = ok(&d, "-j", "mac", "flush");
	cr_assert(json_u64(out, "flushed", &v) && v == 0, "statics survive: %s", out);
	free(out);
	out = ok(&d, "-j", "mac", "flush", "port", "up0");
	cr_assert(json_u64(out, "flushed", &v) && v == 1, "%s", out);
	free(out);
	free(ok(&d, "mac", "del", "02:00:00:00:00:01", "vlan", "10"));
	refused(&d, "no entry", "mac", "del", "02:00:00:00:00:01", "vlan", "10");
	refused(&d, "0 (off) or 10 to 3600", "mac", "aging", "5");
	free(ok(&d, "mac", "aging", "0"));
	free(ok(&d, "mac", "limit", "1000000", "vswitch", "vSwitch1"));
	out = ok(&d, "-j", "show", "mac", "stats", "vswitch", "vSwitch1");
	cr_assert(json_u64(out, "max", &v) && v == 1000000, "%s", out);
	free(out);
	out = ok(&d, "-j", "show", "errors");
	cr_assert_str_eq(out, "{\"errors\": []}\n");
	free(out);
	cr_assert_eq(harness_ferryd_stop(&d), 0);
}

/* The RARP self-announcement, as the physical network sees it on a tagged uplink. */
Test(announce, rarp_frames_leave_the_uplink_tagged_on_schedule, .timeout = 60)
{
	struct harness_ferryd d;
	char out_pcap[128], *config;

	snprintf(out_pcap, sizeof(out_pcap), "/tmp/ferry-test-announce-%d.pcap", getpid());
	config = config_text("portgroup add web vlan 10\n"
	                     "port add up0 net_pcap_up0,tx_pcap=%s role uplink\n"
	                     "vm create web01 mem 16 mac 00:50:56:00:00:2a ip 10.0.0.42/24 "
	                     "portgroup web workload uniform,rate=10\n",
	                     out_pcap);
	cr_assert_eq(harness_ferryd_start(&d, config), 0);
	free(config);
	char *err;
	cr_assert_eq(harness_ctl(&d, NULL, &err, "vm", "announce", "web01", NULL), 0, "%s", err);
	free(err);
	/* Five frames, the last 50 + 150 + 250 + 350 ms after the first. */
	uint64_t deadline = harness_now_ms() + 10000, sent = 0;
	while (harness_now_ms() < deadline) {
		char *out;
		cr_assert_eq(
		        harness_ctl(&d, &out, NULL, "-j", "show", "port", "up0", "stats", NULL), 0);
		cr_assert(json_u64(out, "tx_packets", &sent));
		free(out);
		if (sent >= 6) /* the VM's gratuitous ARP at power-on, then 5 RARP */
			break;
		usleep(50000);
	}
	cr_assert_eq(sent, 6);
	cr_assert_eq(harness_ferryd_stop(&d), 0);

	static const uint8_t mac[6] = {0x00, 0x50, 0x56, 0x00, 0x00, 0x2a};
	struct harness_rarp rarp;
	cr_assert_eq(harness_read_rarp(out_pcap, mac, 10, &rarp), 0);
	cr_assert_eq(rarp.frames, 5);
	cr_assert_eq(rarp.strays, 0,
	             "each is 60 bytes and a VLAN 10 tag, broadcast, from the VM's MAC, opcode 3, "
	             "the VM as sender and target, addresses 0");
	/* Timers never fire early, but each frame then waits for the switch's next poll (up to
	 * the worker's 1 ms sleep, longer on a loaded machine) before the pcap port stamps it:
	 * allow 10 ms either way of the schedule, more on the late side. */
	const double gaps[] = {0.050, 0.150, 0.250, 0.350};
	for (int i = 0; i < 4; i++) {
		double gap = rarp.times[i + 1] - rarp.times[i];
		cr_assert(gap >= gaps[i] - 0.010 && gap < gaps[i] + 0.250, "gap %d: %.3f s", i,
		          gap);
	}
	cr_assert_eq(harness_tshark_count(out_pcap, "arp.opcode == 3 && vlan.id == 10"), 5,
	             "tshark dissects five RARP requests on VLAN 10");
	unlink(out_pcap);
}
