/* Test helpers: start a real ferryd, drive it through ferryctl, wait for conditions. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pcap/pcap.h>

#define START_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS  10000
#define CTL_TIMEOUT_MS   10000

static const char *env_or(const char *name, const char *fallback)
{
	const char *value = getenv(name);
	return value != NULL && value[0] != '\0' ? value : fallback;
}

uint64_t harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *harness_pcap(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", env_or("FERRY_PCAPS", "pcaps"), name);
	return path;
}

static void dump_log(const struct harness_ferryd *ferryd)
{
	char line[512];
	FILE *f = fopen(ferryd->log, "r");

	if (f == NULL)
		return;
	fprintf(stderr, "---- ferryd log (%s) ----\n", ferryd->log);
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	fprintf(stderr, "---- end of log ----\n");
	fclose(f);
}

static pid_t spawn_ferryd(struct harness_ferryd *ferryd, const char *config,
                          const char *const *options)
{
	char config_path[256];

	snprintf(ferryd->dir, sizeof(ferryd->dir), "/tmp/ferry-test-XXXXXX");
	if (mkdtemp(ferryd->dir) == NULL)
		return -1;
	snprintf(ferryd->socket, sizeof(ferryd->socket), "%s/ferryd.sock", ferryd->dir);
	snprintf(ferryd->log, sizeof(ferryd->log), "%s/ferryd.log", ferryd->dir);
	snprintf(config_path, sizeof(config_path), "%s/startup.conf", ferryd->dir);
	if (config != NULL) {
		FILE *f = fopen(config_path, "w");
		if (f == NULL)
			return -1;
		fputs(config, f);
		fclose(f);
	}

	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* A failed assertion ends the test process at once: the daemon must not outlive it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int log = open(ferryd->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(log, STDOUT_FILENO);
	dup2(log, STDERR_FILENO);
	const char *binary = env_or("FERRYD", "ferryd");
	const char *argv[32];
	int argc = 0;
	argv[argc++] = binary;
	argv[argc++] = "-s";
	argv[argc++] = ferryd->socket;
	if (config != NULL) {
		argv[argc++] = "-c";
		argv[argc++] = config_path;
	}
	for (int i = 0; options != NULL && options[i] != NULL && i < 8; i++)
		argv[argc++] = options[i];
	/* No hugepages, no shared files, bounded memory and floating lcores: tests run in
	 * parallel on any machine. FERRY_TEST_WORKERS=2 gives ferryd a second forwarding
	 * worker (two lcores, both floating). */
	bool two_workers = strcmp(env_or("FERRY_TEST_WORKERS", "1"), "2") == 0;
	const char *eal[] = {"--",
	                     "--no-huge",
	                     "--no-shconf",
	                     "-m",
	                     "128",
	                     "--no-telemetry",
	                     "--no-pci",
	                     two_workers ? "--lcores=(0-1)@(0-1)" : "--lcores=0@(0-1)",
	                     "--log-level=*:notice",
	                     "--log-level=ferry.*:info"};
	for (unsigned int i = 0; i < sizeof(eal) / sizeof(eal[0]); i++)
		argv[argc++] = eal[i];
	argv[argc] = NULL;
	execv(binary, (char *const *)argv);
	fprintf(stderr, "cannot exec %s: %s\n", binary, strerror(errno));
	_exit(127);
}

int harness_connect(const struct harness_ferryd *ferryd)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", ferryd->socket);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

int harness_ferryd_start(struct harness_ferryd *ferryd, const char *config)
{
	return harness_ferryd_start_with(ferryd, config, NULL);
}

int harness_ferryd_start_with(struct harness_ferryd *ferryd, const char *config,
                              const char *const *options)
{
	ferryd->pid = spawn_ferryd(ferryd, config, options);
	if (ferryd->pid < 0)
		return -1;
	uint64_t deadline = harness_now_ms() + START_TIMEOUT_MS;
	while (harness_now_ms() < deadline) {
		int status;
		if (waitpid(ferryd->pid, &status, WNOHANG) == ferryd->pid) {
			fprintf(stderr, "ferryd exited during start-up (status %d)\n", status);
			dump_log(ferryd);
			ferryd->pid = -1;
			return -1;
		}
		int fd = harness_connect(ferryd);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		usleep(10000);
	}
	fprintf(stderr, "ferryd did not open its socket within %d ms\n", START_TIMEOUT_MS);
	dump_log(ferryd);
	kill(ferryd->pid, SIGKILL);
	waitpid(ferryd->pid, NULL, 0);
	ferryd->pid = -1;
	return -1;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
	uint64_t deadline = harness_now_ms() + (uint64_t)timeout_ms;
	int status;

	while (harness_now_ms() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void remove_dir(const char *dir)
{
	char path[256];
	const char *files[] = {"startup.conf", "ferryd.log", "ferryd.sock"};

	for (unsigned int i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

void harness_ferryd_discard(struct harness_ferryd *ferryd)
{
	remove_dir(ferryd->dir);
}

int harness_ferryd_run_to_exit(struct harness_ferryd *ferryd, const char *config, int timeout_ms)
{
	ferryd->pid = spawn_ferryd(ferryd, config, NULL);
	if (ferryd->pid < 0)
		return -1;
	int status = wait_exit(ferryd->pid, timeout_ms);
	ferryd->pid = -1;
	return status;
}

int harness_ferryd_stop(struct harness_ferryd *ferryd)
{
	if (ferryd->pid <= 0)
		return -1;
	kill(ferryd->pid, SIGTERM);
	int status = wait_exit(ferryd->pid, STOP_TIMEOUT_MS);
	if (status != 0)
		dump_log(ferryd);
	ferryd->pid = -1;
	/* Keep the directory when the daemon failed to clean up its socket: the test says so. */
	if (access(ferryd->socket, F_OK) != 0)
		remove_dir(ferryd->dir);
	return status;
}

/* Reads two pipes to their ends. */
static void drain_pipes(int out_fd, int err_fd, char **out, char **err)
{
	char *bufs[2] = {NULL, NULL};
	size_t lens[2] = {0, 0};
	struct pollfd pfds[2] = {{.fd = out_fd, .events = POLLIN},
	                         {.fd = err_fd, .events = POLLIN}};
	uint64_t deadline = harness_now_ms() + CTL_TIMEOUT_MS;

	while ((pfds[0].fd >= 0 || pfds[1].fd >= 0) && harness_now_ms() < deadline) {
		if (poll(pfds, 2, 100) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (pfds[i].fd < 0 || pfds[i].revents == 0)
				continue;
			char chunk[4096];
			ssize_t n = read(pfds[i].fd, chunk, sizeof(chunk));
			if (n <= 0) {
				close(pfds[i].fd);
				pfds[i].fd = -1;
				continue;
			}
			bufs[i] = realloc(bufs[i], lens[i] + (size_t)n + 1);
			memcpy(bufs[i] + lens[i], chunk, (size_t)n);
			lens[i] += (size_t)n;
			bufs[i][lens[i]] = '\0';
		}
	}
	for (int i = 0; i < 2; i++) {
		if (pfds[i].fd >= 0)
			close(pfds[i].fd);
		if (bufs[i] == NULL)
			bufs[i] = strdup("");
	}
	if (out != NULL)
		*out = bufs[0];
	else
		free(bufs[0]);
	if (err != NULL)
		*err = bufs[1];
	else
		free(bufs[1]);
}

int harness_ctl(const struct harness_ferryd *ferryd, char **out, char **err, ...)
{
	const char *argv[64];
	int argc = 0;
	va_list ap;
	int out_pipe[2], err_pipe[2];

	argv[argc++] = env_or("FERRYCTL", "ferryctl");
	argv[argc++] = "-s";
	argv[argc++] = ferryd->socket;
	va_start(ap, err);
	const char *arg;
	while ((arg = va_arg(ap, const char *)) != NULL && argc < 63)
		argv[argc++] = arg;
	va_end(ap);
	argv[argc] = NULL;

	if (pipe(out_pipe) < 0 || pipe(err_pipe) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out_pipe[1], STDOUT_FILENO);
		dup2(err_pipe[1], STDERR_FILENO);
		close(out_pipe[0]);
		close(err_pipe[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out_pipe[1]);
	close(err_pipe[1]);
	drain_pipes(out_pipe[0], err_pipe[0], out, err);
	return wait_exit(pid, CTL_TIMEOUT_MS);
}

int harness_read_answer(int fd, char **body, int timeout_ms)
{
	char header[64];
	size_t n = 0;
	uint64_t deadline = harness_now_ms() + (uint64_t)timeout_ms;

	if (body != NULL)
		*body = NULL;
	/* Byte by byte up to the newline, so nothing of the body is read ahead. */
	while (n + 1 < sizeof(header)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int left = (int)(deadline - harness_now_ms());
		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			return -1;
		if (read(fd, &header[n], 1) != 1)
			return -1;
		if (header[n++] == '\n')
			break;
	}
	header[n] = '\0';
	char status[8];
	size_t len;
	if (sscanf(header, "%7s %zu", status, &len) != 2)
		return -1;
	char *text = malloc(len + 1);
	size_t got = 0;
	while (got < len) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int left = (int)(deadline - harness_now_ms());
		ssize_t r;
		if (left <= 0 || poll(&pfd, 1, left) <= 0 ||
		    (r = read(fd, text + got, len - got)) <= 0) {
			free(text);
			return -1;
		}
		got += (size_t)r;
	}
	text[len] = '\0';
	if (body != NULL)
		*body = text;
	else
		free(text);
	return strcmp(status, "OK") == 0 ? 1 : 0;
}

int harness_call(int fd, const char *line, char **body, int timeout_ms)
{
	size_t len = strlen(line);

	if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1)
		return -1;
	return harness_read_answer(fd, body, timeout_ms);
}

static bool rarp_is_announce(const struct pcap_pkthdr *hdr, const uint8_t *f, const uint8_t mac[6],
                             uint16_t vlan)
{
	static const uint8_t rarp_head[8] = {0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x03};
	const uint8_t *rarp = f + 18;

	return hdr->caplen == 64 && hdr->len == 64 &&
	       memcmp(f, "\xff\xff\xff\xff\xff\xff", 6) == 0 && memcmp(f + 6, mac, 6) == 0 &&
	       (((f[14] & 0x0f) << 8) | f[15]) == vlan &&
	       memcmp(rarp, rarp_head, sizeof(rarp_head)) == 0 && memcmp(rarp + 8, mac, 6) == 0 &&
	       memcmp(rarp + 14, "\0\0\0\0", 4) == 0 && memcmp(rarp + 18, mac, 6) == 0 &&
	       memcmp(rarp + 24, "\0\0\0\0", 4) == 0;
}

int harness_read_rarp(const char *path, const uint8_t mac[6], uint16_t vlan,
                      struct harness_rarp *out)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_t *p =
	        pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	struct pcap_pkthdr *hdr;
	const uint8_t *f;

	memset(out, 0, sizeof(*out));
	if (p == NULL) {
		fprintf(stderr, "harness: %s\n", errbuf);
		return -EIO;
	}
	while (pcap_next_ex(p, &hdr, &f) == 1) {
		if (hdr->caplen < 18 || f[12] != 0x81 || f[13] != 0x00 || f[16] != 0x80 ||
		    f[17] != 0x35)
			continue;
		if (!rarp_is_announce(hdr, f, mac, vlan))
			out->strays++;
		if (out->frames < sizeof(out->times) / sizeof(out->times[0]))
			out->times[out->frames] =
			        (double)hdr->ts.tv_sec + (double)hdr->ts.tv_usec / 1e9;
		out->frames++;
	}
	pcap_close(p);
	return 0;
}

int harness_tshark_count(const char *path, const char *filter)
{
	char cmd[1024];
	int count = -1;

	snprintf(cmd, sizeof(cmd), "tshark -r '%s' -Y '%s' 2>/dev/null | wc -l", path, filter);
	FILE *f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &count) != 1)
		count = -1;
	return pclose(f) == 0 ? count : -1;
}
