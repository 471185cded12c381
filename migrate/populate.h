/* A destination's memory made ready ahead of the stream, private to migrate/: a helper thread
 * backs the regions the source says hold written pages with memory (hugepages where the kernel
 * allows) before their pages arrive, so the receive path copies into memory that is there
 * instead of faulting it in page by page. Regions the source never wrote stay unpopulated. */
#ifndef FERRY_MIGRATE_POPULATE_H
#define FERRY_MIGRATE_POPULATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct machine;

struct populate {
	struct machine *vm;
	uint64_t nb_regions;
	uint64_t *dense;     /* bit r: the source wrote in region r (written by the worker) */
	uint64_t *announced; /* bit r: the source has said whether it wrote in region r */
	uint64_t populated;  /* regions populated, for the session's figures */
	pthread_t thread;
	bool started;
	bool stop; /* atomic: the worker asks the helper to end */
};

/* Prepares for a vm's regions; nothing runs yet. Returns 0 or -ENOMEM. A zeroed struct (never
 * prepared) is safe to fini and refuses regions. */
int populate_init(struct populate *p, struct machine *vm);

/* Takes what a REGIONS message says of count regions from first (bitmap LSB first) and starts
 * the helper on the first one. The caller has checked the range. Returns 0, -EINVAL when not
 * prepared (or finished), or a negative errno (the helper could not start: the stream then
 * faults pages in as before). */
int populate_regions(struct populate *p, uint64_t first, uint32_t count, const uint8_t *bitmap);

/* Stops the helper and waits for it (before the vm's memory goes or changes hands), and frees
 * what init took; `populated` keeps its count. Safe on a populate never started, and twice. */
void populate_fini(struct populate *p);

#endif
