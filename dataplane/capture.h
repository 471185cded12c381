/* Port capture: the frames ports receive and send, copied by the workers to a pcapng file. */
#ifndef FERRY_DATAPLANE_CAPTURE_H
#define FERRY_DATAPLANE_CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>

struct port;

#define CAPTURE_PATH_MAX     256
#define CAPTURE_FILTER_MAX   256
#define CAPTURE_ERROR_MAX    256
#define CAPTURE_MAX_WORKERS  8 /* as PORT_MAX_WORKERS */
#define CAPTURE_DEFAULT_RING 4096

/* Which frames of a port: those it receives, those it sends, or both. */
enum capture_direction {
	CAPTURE_RX = 1,
	CAPTURE_TX = 2,
	CAPTURE_BOTH = CAPTURE_RX | CAPTURE_TX,
};

struct capture_config {
	char path[CAPTURE_PATH_MAX];
	char filter[CAPTURE_FILTER_MAX]; /* a libpcap (tcpdump) filter; "" takes every frame */
	enum capture_direction direction;
	uint32_t snaplen;   /* bytes kept of each frame; 0 keeps them whole */
	uint64_t count;     /* frames to capture before the capture completes; 0: no limit */
	uint32_t ring_size; /* frames on their way to the file; 0: CAPTURE_DEFAULT_RING */
};

/* What one worker counted; capture_stats_sum adds them up. */
struct capture_stats {
	uint64_t captured;      /* copied and on their way to the file */
	uint64_t filtered_out;  /* did not match the filter */
	uint64_t dropped_full;  /* the ring to the writer was full */
	uint64_t dropped_nomem; /* no buffer to copy into */
};

/* What the file writer counted. */
struct capture_writer_stats {
	uint64_t frames;
	uint64_t bytes;
	uint64_t errors; /* writes that failed (the file system full, say) */
};

enum capture_state {
	CAPTURE_RUNNING,  /* copying frames */
	CAPTURE_COMPLETE, /* took its count of frames; every one is in the file */
	CAPTURE_STOPPED,  /* stopped by capture_stop */
};

struct capture;

/* Opens a capture of ports[0..nb_ports) to config->path: checks and compiles the filter, writes
 * the pcapng header (one interface block per DPDK port, named as ferry names the port), makes
 * the buffers and the ring, and starts the writer thread. Nothing is captured until
 * capture_attach. Returns 0 or a negative errno with the reason in error. */
int capture_open(struct capture **out, const struct capture_config *config,
                 struct port *const *ports, unsigned int nb_ports, int socket,
                 char error[CAPTURE_ERROR_MAX]);

/* Makes the ports' workers copy their frames from now on. */
void capture_attach(struct capture *capture);

/* Makes the ports stop copying frames and marks the capture stopped (unless complete). The
 * workers may still be inside capture_burst until they next go round their loop: park them
 * before capture_finish. */
void capture_detach(struct capture *capture);

/* Writes what is still on its way and closes the file (detached, with no worker inside it); the
 * counters stay readable. */
void capture_finish(struct capture *capture);

/* Finishes the capture if need be and frees it. */
void capture_free(struct capture *capture);

/* Called by a worker with a burst a port received (CAPTURE_RX) or is about to send (CAPTURE_TX)
 * on a queue: copies the frames the capture wants to its ring, never waiting for the writer. */
void capture_burst(struct capture *capture, const struct port *port, unsigned int worker,
                   uint16_t queue, enum capture_direction direction, struct rte_mbuf *const *pkts,
                   uint16_t n);

/* The configuration the capture was opened with. */
const struct capture_config *capture_config(const struct capture *capture);

/* How many ports the capture takes, and their names (kept after the ports go). */
unsigned int capture_nb_ports(const struct capture *capture);
const char *capture_port_name(const struct capture *capture, unsigned int index);

/* Running, complete (its count taken and written) or stopped. */
enum capture_state capture_state(const struct capture *capture);

/* Adds every worker's counters into out (zeroed first). */
void capture_stats_sum(const struct capture *capture, struct capture_stats *out);

/* What the writer has put in the file so far. */
void capture_writer_stats(const struct capture *capture, struct capture_writer_stats *out);

/* "running", "complete" or "stopped". */
const char *capture_state_name(enum capture_state state);

/* Parses "rx", "tx" or "both"; -EINVAL otherwise. */
int capture_direction_parse(const char *name, enum capture_direction *direction);

/* "rx", "tx" or "both". */
const char *capture_direction_name(enum capture_direction direction);

#endif
