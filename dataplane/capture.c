/* Port capture: workers copy frames to a ring, a writer thread puts them in a pcapng file. */
#include "capture.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_version.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "port.h"

static RTE_LOG_REGISTER(capture_logtype, ferry.capture, INFO);
#define CAPTURE_LOG(level, fmt, ...)                                                               \
	rte_log(RTE_LOG_##level, capture_logtype, "capture: " fmt "\n", ##__VA_ARGS__)

/* pcapng (draft-ietf-opsawg-pcapng): blocks in the writer's byte order, which the section
 * header's magic declares; every block and option is padded to 4 bytes. */
#define PCAPNG_SHB_TYPE       0x0A0D0D0Au
#define PCAPNG_IDB_TYPE       0x00000001u
#define PCAPNG_EPB_TYPE       0x00000006u
#define PCAPNG_BYTE_ORDER     0x1A2B3C4Du
#define PCAPNG_LINKTYPE_ETH   1
#define PCAPNG_OPT_END        0
#define PCAPNG_SHB_HARDWARE   2
#define PCAPNG_SHB_OS         3
#define PCAPNG_SHB_USERAPPL   4
#define PCAPNG_IF_NAME        2
#define PCAPNG_IF_DESCRIPTION 3
#define PCAPNG_IF_TSRESOL     9
#define PCAPNG_IF_FILTER      11
#define PCAPNG_EPB_FLAGS      2
#define PCAPNG_EPB_QUEUE      6
#define PCAPNG_FLAG_INBOUND   1u
#define PCAPNG_FLAG_OUTBOUND  2u

/* Section header block, before its options: 24 bytes, host byte order. */
struct pcapng_section_header {
	uint32_t block_type;
	uint32_t block_length;
	uint32_t byte_order_magic;
	uint16_t major_version;
	uint16_t minor_version;
	int64_t section_length; /* -1: not given */
} __attribute__((packed));
_Static_assert(sizeof(struct pcapng_section_header) == 24, "pcapng SHB is 24 bytes");

/* Interface description block, before its options: 16 bytes, host byte order. */
struct pcapng_interface_header {
	uint32_t block_type;
	uint32_t block_length;
	uint16_t link_type;
	uint16_t reserved;
	uint32_t snaplen;
} __attribute__((packed));
_Static_assert(sizeof(struct pcapng_interface_header) == 16, "pcapng IDB is 16 bytes");

/* Enhanced packet block, before the frame: 28 bytes, host byte order. */
struct pcapng_packet_header {
	uint32_t block_type;
	uint32_t block_length;
	uint32_t interface_id;
	uint32_t timestamp_high; /* nanoseconds since the epoch (if_tsresol 9) */
	uint32_t timestamp_low;
	uint32_t captured_length;
	uint32_t original_length;
} __attribute__((packed));
_Static_assert(sizeof(struct pcapng_packet_header) == 28, "pcapng EPB header is 28 bytes");

/* What follows a frame in its block: padding, the flags and queue options, the end of options
 * and the block length again: at most 3 + 8 + 8 + 4 + 4 bytes. */
struct pcapng_packet_trailer {
	uint8_t bytes[3 + 8 + 8 + 4 + 4];
};

/* An option's header: 4 bytes, host byte order, then the value padded to 4 bytes. */
struct pcapng_option_header {
	uint16_t code;
	uint16_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct pcapng_option_header) == 4, "pcapng option header is 4 bytes");

/* What a worker notes beside each copy, in the copy's private area. */
struct capture_note {
	uint64_t tsc;
	uint32_t original_length;
	uint16_t queue;
	uint8_t interface;
	uint8_t direction;
};

_Static_assert(CAPTURE_MAX_WORKERS == PORT_MAX_WORKERS, "a capture counts every port worker");
_Static_assert(PORT_MAX <= UINT8_MAX + 1, "an interface number fits the note");

/* Frames a writer takes from the ring at a time. */
#define WRITER_BURST 64
/* How long the writer sleeps when the ring is empty. */
#define WRITER_IDLE_NS (1000 * 1000)

struct capture {
	struct capture_config config;
	struct port *ports[PORT_MAX]; /* while attached */
	char port_names[PORT_MAX][PORT_NAME_MAX];
	unsigned int nb_ports;
	bool attached;
	struct bpf_program filter;
	bool has_filter;
	struct rte_mempool *pool;
	struct rte_ring *ring;
	int fd;
	/* The TSC and the wall clock at the same moment: the writer turns TSC stamps into time. */
	uint64_t tsc0, wall0_ns, tsc_hz;
	uint64_t taken; /* frames claimed against config.count, by every worker (atomic) */
	int state;      /* enum capture_state (atomic) */
	bool stop;      /* asks the writer to finish (atomic) */
	pthread_t writer;
	bool writer_started;
	struct capture_writer_stats written; /* the writer's (atomic reads) */
	struct {
		struct capture_stats stats;
	} __rte_cache_aligned workers[CAPTURE_MAX_WORKERS];
};

static const char *const state_names[] = {
        [CAPTURE_RUNNING] = "running",
        [CAPTURE_COMPLETE] = "complete",
        [CAPTURE_STOPPED] = "stopped",
};

const char *capture_state_name(enum capture_state state)
{
	return state_names[state];
}

int capture_direction_parse(const char *name, enum capture_direction *direction)
{
	if (strcmp(name, "rx") == 0)
		*direction = CAPTURE_RX;
	else if (strcmp(name, "tx") == 0)
		*direction = CAPTURE_TX;
	else if (strcmp(name, "both") == 0)
		*direction = CAPTURE_BOTH;
	else
		return -EINVAL;
	return 0;
}

const char *capture_direction_name(enum capture_direction direction)
{
	return direction == CAPTURE_RX ? "rx" : direction == CAPTURE_TX ? "tx" : "both";
}

/* Appends an option (header, value, padding) to buf at *len; the caller sized buf. */
static void put_option(uint8_t *buf, size_t *len, uint16_t code, const void *value, uint16_t size)
{
	struct pcapng_option_header header = {.code = code, .length = size};

	memcpy(buf + *len, &header, sizeof(header));
	*len += sizeof(header);
	if (size > 0)
		memcpy(buf + *len, value, size);
	memset(buf + *len + size, 0, RTE_ALIGN(size, 4) - size);
	*len += RTE_ALIGN(size, 4);
}

/* Closes a block begun at buf: the end of options, then the length at both ends. */
static size_t end_block(uint8_t *buf, size_t len)
{
	put_option(buf, &len, PCAPNG_OPT_END, NULL, 0);
	uint32_t total = (uint32_t)(len + sizeof(uint32_t));
	memcpy(buf + sizeof(uint32_t), &total, sizeof(total));
	memcpy(buf + len, &total, sizeof(total));
	return total;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The section header and one interface block per captured port, named as ferry names it.
 * DPDK 22.11's rte_pcapng names interfaces dpdk:N, numbers them by RTE_ETH_FOREACH_DEV (which
 * skips ports with an owner: every ferry port) and turns TSC into time through a variable all
 * workers would write: so the file's blocks are written here. */
static int write_header(struct capture *capture)
{
	uint8_t buf[1024];
	size_t len = sizeof(struct pcapng_section_header);
	struct pcapng_section_header shb = {
	        .block_type = PCAPNG_SHB_TYPE,
	        .byte_order_magic = PCAPNG_BYTE_ORDER,
	        .major_version = 1,
	        .minor_version = 0,
	        .section_length = -1,
	};
	char text[128];

	memcpy(buf, &shb, sizeof(shb));
	snprintf(text, sizeof(text), "ferry %s", FERRY_VERSION);
	put_option(buf, &len, PCAPNG_SHB_USERAPPL, text, (uint16_t)strlen(text));
	snprintf(text, sizeof(text), "%s", rte_version());
	put_option(buf, &len, PCAPNG_SHB_HARDWARE, text, (uint16_t)strlen(text));
	put_option(buf, &len, PCAPNG_SHB_OS, "Linux", 5);
	int ret = write_all(capture->fd, buf, end_block(buf, len));

	for (unsigned int i = 0; ret == 0 && i < capture->nb_ports; i++) {
		const struct port *port = capture->ports[i];
		struct pcapng_interface_header idb = {
		        .block_type = PCAPNG_IDB_TYPE,
		        .link_type = PCAPNG_LINKTYPE_ETH,
		        .snaplen = capture->config.snaplen,
		};
		const uint8_t tsresol = 9; /* nanoseconds */

		len = sizeof(idb);
		memcpy(buf, &idb, sizeof(idb));
		put_option(buf, &len, PCAPNG_IF_NAME, capture->port_names[i],
		           (uint16_t)strlen(capture->port_names[i]));
		snprintf(text, sizeof(text), "%.100s", port->devargs);
		put_option(buf, &len, PCAPNG_IF_DESCRIPTION, text, (uint16_t)strlen(text));
		put_option(buf, &len, PCAPNG_IF_TSRESOL, &tsresol, 1);
		if (capture->has_filter) {
			/* The filter as a string: its first byte 0 says libpcap's syntax. */
			uint8_t filter[1 + CAPTURE_FILTER_MAX];
			size_t flen = strlen(capture->config.filter);
			filter[0] = 0;
			memcpy(filter + 1, capture->config.filter, flen);
			put_option(buf, &len, PCAPNG_IF_FILTER, filter, (uint16_t)(flen + 1));
		}
		ret = write_all(capture->fd, buf, end_block(buf, len));
	}
	return ret;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The trailer of a frame's block (padding, options, length); returns its size. */
static size_t packet_trailer(struct pcapng_packet_trailer *trailer, uint32_t captured,
                             const struct capture_note *note, uint32_t *block_length)
{
	uint8_t *buf = trailer->bytes;
	size_t pad = RTE_ALIGN(captured, 4) - captured, len = pad;
	uint32_t flags = note->direction == CAPTURE_RX ? PCAPNG_FLAG_INBOUND : PCAPNG_FLAG_OUTBOUND;
	uint32_t queue = note->queue;

	memset(buf, 0, pad);
	put_option(buf, &len, PCAPNG_EPB_FLAGS, &flags, sizeof(flags));
	put_option(buf, &len, PCAPNG_EPB_QUEUE, &queue, sizeof(queue));
	put_option(buf, &len, PCAPNG_OPT_END, NULL, 0);
	*block_length =
	        (uint32_t)(sizeof(struct pcapng_packet_header) + captured + len + sizeof(uint32_t));
	memcpy(buf + len, block_length, sizeof(*block_length));
	return len + sizeof(uint32_t);
}

/* Writes every byte the vector holds: writev may write less than asked (a signal, a full
 * disk), and the rest goes by write. Returns 0 or a negative errno. */
static int writev_all(int fd, const struct iovec *iov, unsigned int nb_iov)
{
	ssize_t done = nb_iov > 0 ? writev(fd, iov, (int)nb_iov) : 0;

	if (done < 0)
		return -errno;
	for (unsigned int i = 0; i < nb_iov; i++) {
		if ((size_t)done >= iov[i].iov_len) {
			done -= (ssize_t)iov[i].iov_len;
			continue;
		}
		int ret = write_all(fd, (const uint8_t *)iov[i].iov_base + done,
		                    iov[i].iov_len - (size_t)done);
		if (ret < 0)
			return ret;
		done = 0;
	}
	return 0;
}

/* Writes a burst of copies as enhanced packet blocks, in one writev while the vector holds
 * them (a long chained copy may need another). */
static void write_frames(struct capture *capture, struct rte_mbuf **frames, unsigned int n)
{
	struct pcapng_packet_header headers[WRITER_BURST];
	struct pcapng_packet_trailer trailers[WRITER_BURST];
	struct iovec iov[IOV_MAX];
	unsigned int nb_iov = 0;
	uint64_t bytes = 0;
	int ret = 0;

	for (unsigned int i = 0; i < n && ret == 0; i++) {
		struct rte_mbuf *m = frames[i];
		const struct capture_note *note = rte_mbuf_to_priv(m);
		uint64_t ns = capture->wall0_ns +
		              (uint64_t)((unsigned __int128)(note->tsc - capture->tsc0) *
		                         1000000000u / capture->tsc_hz);
		uint32_t block_length;
		size_t trailer = packet_trailer(&trailers[i], m->pkt_len, note, &block_length);

		if (nb_iov + m->nb_segs + 2u > IOV_MAX) {
			ret = writev_all(capture->fd, iov, nb_iov);
			nb_iov = 0;
		}
		headers[i] = (struct pcapng_packet_header){
		        .block_type = PCAPNG_EPB_TYPE,
		        .block_length = block_length,
		        .interface_id = note->interface,
		        .timestamp_high = (uint32_t)(ns >> 32),
		        .timestamp_low = (uint32_t)ns,
		        .captured_length = m->pkt_len,
		        .original_length = note->original_length,
		};
		iov[nb_iov++] = (struct iovec){&headers[i], sizeof(headers[i])};
		for (struct rte_mbuf *seg = m; seg != NULL; seg = seg->next)
			iov[nb_iov++] =
			        (struct iovec){rte_pktmbuf_mtod(seg, void *), seg->data_len};
		iov[nb_iov++] = (struct iovec){trailers[i].bytes, trailer};
		bytes += block_length;
	}
	if (ret == 0)
		ret = writev_all(capture->fd, iov, nb_iov);
	if (ret < 0) {
		if (__atomic_fetch_add(&capture->written.errors, 1, __ATOMIC_RELAXED) == 0)
			CAPTURE_LOG(ERR, "writing %s: %s", capture->config.path, strerror(-ret));
	} else {
		__atomic_fetch_add(&capture->written.frames, n, __ATOMIC_RELAXED);
		__atomic_fetch_add(&capture->written.bytes, bytes, __ATOMIC_RELAXED);
	}
	rte_pktmbuf_free_bulk(frames, n);
}

/* Takes what the ring holds to the file; returns how many frames. */
static unsigned int writer_drain(struct capture *capture)
{
	struct rte_mbuf *frames[WRITER_BURST];
	unsigned int n, total = 0;

	while ((n = rte_ring_sc_dequeue_burst(capture->ring, (void **)frames, WRITER_BURST, NULL)) >
	       0) {
		write_frames(capture, frames, n);
		total += n;
	}
	return total;
}

/* The writer: drains the ring, sleeping a millisecond when it is empty, until asked to stop or
 * until the count is taken and written. */
static void *writer_run(void *arg)
{
	struct capture *capture = arg;
	const struct timespec idle = {.tv_nsec = WRITER_IDLE_NS};

	while (!__atomic_load_n(&capture->stop, __ATOMIC_ACQUIRE)) {
		if (writer_drain(capture) > 0)
			continue;
		uint64_t count = capture->config.count;
		if (count > 0 && __atomic_load_n(&capture->taken, __ATOMIC_ACQUIRE) >= count) {
			/* Every frame claimed is in the ring or was dropped, or is being copied:
			 * the workers' counters say when none is left in flight. */
			struct capture_stats stats;
			capture_stats_sum(capture, &stats);
			if (stats.captured + stats.dropped_full + stats.dropped_nomem >= count) {
				writer_drain(capture);
				int running = CAPTURE_RUNNING;
				__atomic_compare_exchange_n(&capture->state, &running,
				                            CAPTURE_COMPLETE, false,
				                            __ATOMIC_RELEASE, __ATOMIC_RELAXED);
				break;
			}
		}
		nanosleep(&idle, NULL);
	}
	writer_drain(capture);
	return NULL;
}

/* Compiles the filter with libpcap, for Ethernet frames of up to the snap length. */
static int compile_filter(struct capture *capture, char error[CAPTURE_ERROR_MAX])
{
	pcap_t *pcap = pcap_open_dead(DLT_EN10MB, 65535);

	if (pcap == NULL) {
		snprintf(error, CAPTURE_ERROR_MAX, "libpcap: out of memory");
		return -ENOMEM;
	}
	int ret = 0;
	if (pcap_compile(pcap, &capture->filter, capture->config.filter, 1, PCAP_NETMASK_UNKNOWN) !=
	    0) {
		snprintf(error, CAPTURE_ERROR_MAX, "bad filter '%.64s': %.120s",
		         capture->config.filter, pcap_geterr(pcap));
		ret = -EINVAL;
	} else {
		capture->has_filter = true;
	}
	pcap_close(pcap);
	return ret;
}

void capture_finish(struct capture *capture)
{
	if (capture->writer_started) {
		__atomic_store_n(&capture->stop, true, __ATOMIC_RELEASE);
		pthread_join(capture->writer, NULL);
		capture->writer_started = false;
	}
	if (capture->fd >= 0) {
		close(capture->fd);
		capture->fd = -1;
	}
}

void capture_free(struct capture *capture)
{
	if (capture == NULL)
		return;
	capture_finish(capture);
	if (capture->ring != NULL) {
		struct rte_mbuf *m;
		while (rte_ring_sc_dequeue(capture->ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(capture->ring);
	}
	rte_mempool_free(capture->pool);
	if (capture->has_filter)
		pcap_freecode(&capture->filter);
	rte_free(capture);
}

int capture_open(struct capture **out, const struct capture_config *config,
                 struct port *const *ports, unsigned int nb_ports, int socket,
                 char error[CAPTURE_ERROR_MAX])
{
	char name[RTE_MEMPOOL_NAMESIZE];
	struct capture *capture;
	int ret;

	error[0] = '\0';
	if (nb_ports == 0 || nb_ports > PORT_MAX) {
		snprintf(error, CAPTURE_ERROR_MAX, "no port to capture");
		return -EINVAL;
	}
	capture = rte_zmalloc_socket("capture", sizeof(*capture), RTE_CACHE_LINE_SIZE, socket);
	if (capture == NULL) {
		snprintf(error, CAPTURE_ERROR_MAX, "out of memory");
		return -ENOMEM;
	}
	capture->config = *config;
	capture->fd = -1;
	if (capture->config.snaplen == 0)
		capture->config.snaplen = UINT16_MAX;
	if (capture->config.ring_size == 0)
		capture->config.ring_size = CAPTURE_DEFAULT_RING;
	memcpy(capture->ports, ports, nb_ports * sizeof(ports[0]));
	for (unsigned int i = 0; i < nb_ports; i++)
		snprintf(capture->port_names[i], PORT_NAME_MAX, "%s", ports[i]->name);
	capture->nb_ports = nb_ports;

	if (config->filter[0] != '\0' && (ret = compile_filter(capture, error)) < 0)
		goto fail;

	/* A ring of copies and buffers for them (plus what workers hold while copying); copies
	 * longer than a buffer chain, as rte_pktmbuf_copy makes them. */
	uint32_t ring_size = capture->config.ring_size;
	/* DPDK's names are global: the capture's address makes them unique while it lives. */
	snprintf(name, sizeof(name), "cap%" PRIxPTR, (uintptr_t)capture);
	capture->ring = rte_ring_create(name, ring_size, socket, RING_F_SC_DEQ | RING_F_EXACT_SZ);
	capture->pool = rte_pktmbuf_pool_create(name, ring_size + CAPTURE_MAX_WORKERS * PORT_BURST,
	                                        32, sizeof(struct capture_note),
	                                        RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (capture->ring == NULL || capture->pool == NULL) {
		snprintf(error, CAPTURE_ERROR_MAX, "no memory for %u frames in flight: %s",
		         ring_size, rte_strerror(rte_errno));
		ret = -ENOMEM;
		goto fail;
	}

	capture->fd = open(config->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (capture->fd < 0) {
		ret = -errno;
		snprintf(error, CAPTURE_ERROR_MAX, "cannot open %.128s: %s", config->path,
		         strerror(-ret));
		goto fail;
	}
	capture->tsc_hz = rte_get_tsc_hz();
	capture->tsc0 = rte_rdtsc();
	capture->wall0_ns = wall_ns();
	if ((ret = write_header(capture)) < 0) {
		snprintf(error, CAPTURE_ERROR_MAX, "writing %.128s: %s", config->path,
		         strerror(-ret));
		goto fail;
	}
	ret = pthread_create(&capture->writer, NULL, writer_run, capture);
	if (ret != 0) {
		ret = -ret;
		snprintf(error, CAPTURE_ERROR_MAX, "no writer thread: %s", strerror(-ret));
		goto fail;
	}
	pthread_setname_np(capture->writer, "ferry-capture");
	capture->writer_started = true;
	capture->state = CAPTURE_RUNNING;
	*out = capture;
	return 0;
fail:
	capture_free(capture);
	return ret;
}

void capture_attach(struct capture *capture)
{
	for (unsigned int i = 0; i < capture->nb_ports; i++) {
		capture->ports[i]->capture_index = (uint8_t)i;
		__atomic_store_n(&capture->ports[i]->capture, capture, __ATOMIC_RELEASE);
	}
	capture->attached = true;
}

void capture_detach(struct capture *capture)
{
	int running = CAPTURE_RUNNING;

	for (unsigned int i = 0; capture->attached && i < capture->nb_ports; i++)
		__atomic_store_n(&capture->ports[i]->capture, NULL, __ATOMIC_RELEASE);
	capture->attached = false;

	__atomic_compare_exchange_n(&capture->state, &running, CAPTURE_STOPPED, false,
	                            __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

/* Adds to a counter only this worker writes (the writer thread reads it): no locked add. */
static inline void count_add(uint64_t *counter, uint64_t n, int order)
{
	if (n > 0)
		__atomic_store_n(counter, *counter + n, order);
}

/* One chunk of at most PORT_BURST frames. */
static void capture_chunk(struct capture *capture, const struct port *port,
                          struct capture_stats *stats, uint16_t queue,
                          enum capture_direction direction, struct rte_mbuf *const *pkts,
                          uint16_t n, uint64_t tsc)
{
	const struct capture_config *config = &capture->config;
	const struct rte_mbuf *wanted[PORT_BURST];
	struct rte_mbuf *copies[PORT_BURST];
	unsigned int nb_wanted = 0, nb = 0, nomem = 0;

	for (uint16_t i = 0; i < n; i++) {
		const struct rte_mbuf *m = pkts[i];
		if (!capture->has_filter ||
		    bpf_filter(capture->filter.bf_insns, rte_pktmbuf_mtod(m, const u_char *),
		               m->pkt_len, m->data_len) != 0)
			wanted[nb_wanted++] = m;
	}
	count_add(&stats->filtered_out, n - nb_wanted, __ATOMIC_RELAXED);
	if (config->count > 0 && nb_wanted > 0) {
		/* The chunk claims its frames against the count at once, across workers. */
		uint64_t first = __atomic_fetch_add(&capture->taken, nb_wanted, __ATOMIC_ACQ_REL);
		nb_wanted = first >= config->count ? 0 : RTE_MIN(nb_wanted, config->count - first);
	}
	for (unsigned int i = 0; i < nb_wanted; i++) {
		const struct rte_mbuf *m = wanted[i];
		struct rte_mbuf *copy = rte_pktmbuf_copy(m, capture->pool, 0, config->snaplen);
		if (copy == NULL) {
			nomem++;
			continue;
		}
		struct capture_note *note = rte_mbuf_to_priv(copy);
		*note = (struct capture_note){
		        .tsc = tsc,
		        .original_length = m->pkt_len,
		        .queue = queue,
		        .interface = port->capture_index,
		        .direction = (uint8_t)direction,
		};
		copies[nb++] = copy;
	}
	unsigned int queued =
	        nb > 0 ? rte_ring_mp_enqueue_burst(capture->ring, (void **)copies, nb, NULL) : 0;
	if (queued < nb)
		rte_pktmbuf_free_bulk(&copies[queued], nb - queued);
	count_add(&stats->dropped_nomem, nomem, __ATOMIC_RELAXED);
	count_add(&stats->dropped_full, nb - queued, __ATOMIC_RELAXED);
	/* Counted last: the writer takes captured + dropped reaching the count as all done. */
	count_add(&stats->captured, queued, __ATOMIC_RELEASE);
}

void capture_burst(struct capture *capture, const struct port *port, unsigned int worker,
                   uint16_t queue, enum capture_direction direction, struct rte_mbuf *const *pkts,
                   uint16_t n)
{
	if (!(capture->config.direction & direction) ||
	    __atomic_load_n(&capture->state, __ATOMIC_RELAXED) != CAPTURE_RUNNING)
		return;
	const uint64_t tsc = rte_rdtsc();
	/* A transmit may hand over more than a burst (link emulation releases two at once). */
	for (uint16_t done = 0; done < n; done += PORT_BURST)
		capture_chunk(capture, port, &capture->workers[worker].stats, queue, direction,
		              &pkts[done], (uint16_t)RTE_MIN(n - done, PORT_BURST), tsc);
}

const struct capture_config *capture_config(const struct capture *capture)
{
	return &capture->config;
}

unsigned int capture_nb_ports(const struct capture *capture)
{
	return capture->nb_ports;
}

const char *capture_port_name(const struct capture *capture, unsigned int index)
{
	return capture->port_names[index];
}

enum capture_state capture_state(const struct capture *capture)
{
	return (enum capture_state)__atomic_load_n(&capture->state, __ATOMIC_ACQUIRE);
}

void capture_stats_sum(const struct capture *capture, struct capture_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int w = 0; w < CAPTURE_MAX_WORKERS; w++) {
		const struct capture_stats *s = &capture->workers[w].stats;
		out->captured += __atomic_load_n(&s->captured, __ATOMIC_ACQUIRE);
		out->filtered_out += __atomic_load_n(&s->filtered_out, __ATOMIC_RELAXED);
		out->dropped_full += __atomic_load_n(&s->dropped_full, __ATOMIC_RELAXED);
		out->dropped_nomem += __atomic_load_n(&s->dropped_nomem, __ATOMIC_RELAXED);
	}
}

void capture_writer_stats(const struct capture *capture, struct capture_writer_stats *out)
{
	out->frames = __atomic_load_n(&capture->written.frames, __ATOMIC_RELAXED);
	out->bytes = __atomic_load_n(&capture->written.bytes, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&capture->written.errors, __ATOMIC_RELAXED);
}
