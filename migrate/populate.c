/* A destination's memory made ready ahead of the stream: a helper thread populates the regions
 * the source wrote, in order, just ahead of round 0's pages. */
#include "populate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vm/machine.h"

static bool bit_get(const uint64_t *bitmap, uint64_t bit)
{
	return (__atomic_load_n(&bitmap[bit / 64], __ATOMIC_ACQUIRE) >> (bit % 64)) & 1;
}

static void bit_put(uint64_t *bitmap, uint64_t bit)
{
	__atomic_fetch_or(&bitmap[bit / 64], 1ull << (bit % 64), __ATOMIC_RELEASE);
}

/* Region by region in the stream's order; one the source has not spoken of yet is waited for
 * (REGIONS messages may arrive out of order), a moment at a time, until asked to stop. */
static void *populate_run(void *arg)
{
	struct populate *p = arg;
	const struct timespec wait = {.tv_nsec = 200000};

	for (uint64_t r = 0; r < p->nb_regions; r++) {
		while (!bit_get(p->announced, r)) {
			if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
				return NULL;
			nanosleep(&wait, NULL);
		}
		if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
			return NULL;
		if (bit_get(p->dense, r) && machine_region_populate(p->vm, r) == 0)
			__atomic_fetch_add(&p->populated, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

int populate_init(struct populate *p, struct machine *vm)
{
	memset(p, 0, sizeof(*p));
	p->vm = vm;
	p->nb_regions = machine_regions(vm);
	p->dense = calloc((p->nb_regions + 63) / 64, sizeof(uint64_t));
	p->announced = calloc((p->nb_regions + 63) / 64, sizeof(uint64_t));
	if (p->dense == NULL || p->announced == NULL) {
		populate_fini(p);
		return -ENOMEM;
	}
	return 0;
}

int populate_regions(struct populate *p, uint64_t first, uint32_t count, const uint8_t *bitmap)
{
	if (p->dense == NULL)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		if ((bitmap[i / 8] >> (i % 8)) & 1)
			bit_put(p->dense, first + i);
		bit_put(p->announced, first + i);
	}
	if (p->started)
		return 0;
	int ret = pthread_create(&p->thread, NULL, populate_run, p);
	if (ret != 0)
		return -ret;
	p->started = true;
	return 0;
}

void populate_fini(struct populate *p)
{
	if (p->started) {
		__atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
		pthread_join(p->thread, NULL);
		p->started = false;
	}
	free(p->dense);
	free(p->announced);
	p->dense = p->announced = NULL;
}
