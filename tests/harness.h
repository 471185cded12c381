/* Test helpers: start a real ferryd, drive it through ferryctl, wait for conditions. */
#ifndef FERRY_TESTS_HARNESS_H
#define FERRY_TESTS_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/json.h"

struct harness_ferryd {
	pid_t pid;
	char dir[64];     /* a private temporary directory, removed by harness_ferryd_stop */
	char socket[100]; /* its CLI socket (fits sun_path) */
	char log[192];    /* its stdout and stderr */
};

/* Path of a file under the source tree's pcaps/ folder. */
const char *harness_pcap(const char *name);

/* Starts ferryd with --no-huge --no-shconf and bounded memory, with the given start-up file
 * text (NULL for none), and waits until its socket answers. Returns 0, or -1 with ferryd's log
 * printed. */
int harness_ferryd_start(struct harness_ferryd *ferryd, const char *config);

/* As harness_ferryd_start, with extra ferryd options (a NULL-terminated list, up to 8). */
int harness_ferryd_start_with(struct harness_ferryd *ferryd, const char *config,
                              const char *const *options);

/* As harness_ferryd_start, but only spawns ferryd and returns its exit status once it ends
 * (used for start-ups that must fail). The log is kept in ferryd->log. */
int harness_ferryd_run_to_exit(struct harness_ferryd *ferryd, const char *config, int timeout_ms);

/* Removes the folder of a daemon that ended (its log, start-up file and socket). */
void harness_ferryd_discard(struct harness_ferryd *ferryd);

/* Sends SIGTERM, waits for the exit, returns its exit status (or -1 on timeout/kill). */
int harness_ferryd_stop(struct harness_ferryd *ferryd);

/* Runs ferryctl -s <socket> with the given arguments (NULL-terminated list); captures stdout
 * into *out and stderr into *err (either may be NULL; free them). Returns the exit code. */
int harness_ctl(const struct harness_ferryd *ferryd, char **out, char **err, ...);

/* Monotonic milliseconds. */
uint64_t harness_now_ms(void);

/* The RARP frames of a capture, as the announce tests read them. */
struct harness_rarp {
	unsigned int frames; /* ethertype 0x8035 behind an 802.1Q tag */
	unsigned int strays; /* of those, any that is not a 64-byte broadcast RARP request (opcode
	                       * 3) on vlan with mac as sender and target and addresses 0 */
	double times[16];    /* their timestamps, seconds (the first 16) */
};

/* Reads a capture's tagged RARP frames and checks each against an announce of mac on vlan.
 * Returns 0 or -EIO if the capture does not open. */
int harness_read_rarp(const char *path, const uint8_t mac[6], uint16_t vlan,
                      struct harness_rarp *out);

/* How many frames of a capture tshark's display filter matches; -1 if tshark fails. */
int harness_tshark_count(const char *path, const char *filter);

/* Connects a raw client to the socket; returns the fd or -1. */
int harness_connect(const struct harness_ferryd *ferryd);

/* Sends a line on a raw connection and reads one framed answer ("OK n" / "ERR n" + n bytes)
 * within timeout_ms. Returns 1 for OK, 0 for ERR, -1 on failure; *body (may be NULL) gets the
 * answer's text. */
int harness_call(int fd, const char *line, char **body, int timeout_ms);

/* Reads one framed answer (after raw writes). Same returns as harness_call. */
int harness_read_answer(int fd, char **body, int timeout_ms);

#endif
