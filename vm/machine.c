/* The VM model: memory of 4-KiB pages with a KVM-style dirty log, a vCPU state blob, and a
 * backend behind one ops table (synthetic now, KVM micro-VMs later). The migration engine
 * touches a VM only through this API. */
#include "machine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NS_PER_SECOND 1000000000ull
#define HUGEPAGE_SIZE (VM_REGION_PAGES * VM_PAGE_SIZE)

/* The mapping's length: the pages, rounded up to whole hugepages when backed by them. */
static size_t mapping_length(const struct machine *vm)
{
	size_t len = vm->nb_pages * VM_PAGE_SIZE;

	if (vm->backing == MACHINE_BACKING_HUGETLB)
		len = (len + HUGEPAGE_SIZE - 1) / HUGEPAGE_SIZE * HUGEPAGE_SIZE;
	return len;
}

const char *machine_backing_name(enum machine_backing backing)
{
	return backing == MACHINE_BACKING_HUGETLB ? "hugetlb" : "anonymous";
}

int machine_create(struct machine *vm, const char *name, uint64_t memory_mb,
                   enum machine_backing backing, const struct machine_ops *ops, const void *config)
{
	memset(vm, 0, sizeof(*vm));
	vm->memory_fd = -1;
	if (memory_mb == 0 || memory_mb > VM_MAX_MEMORY_MB || ops == NULL ||
	    (backing != MACHINE_BACKING_ANONYMOUS && backing != MACHINE_BACKING_HUGETLB))
		return -EINVAL;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->nb_pages = memory_mb * 1024 * 1024 / VM_PAGE_SIZE;
	vm->ops = ops;
	vm->state = MACHINE_PAUSED;
	vm->remote.stalled_page = UINT64_MAX;
	vm->backing = backing;
	/* Sparse either way: the kernel gives a page frame only to pages the vm writes. Anonymous
	 * memory is not even reserved; a hugetlb mapping reserves its pool pages now, so a VM the
	 * pool cannot hold fails here and not with SIGBUS on a write later. A memfd is as sparse
	 * (a file of holes) and can be mapped twice. */
	int flags = backing == MACHINE_BACKING_HUGETLB
	                    ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB
	                    : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	if (ops->shared_memory && backing == MACHINE_BACKING_ANONYMOUS) {
		vm->memory_fd = memfd_create(vm->name, MFD_CLOEXEC);
		if (vm->memory_fd < 0 || ftruncate(vm->memory_fd, (off_t)mapping_length(vm)) < 0) {
			int ret = -errno;
			vm->ops = NULL; /* its init did not run */
			machine_destroy(vm);
			return ret;
		}
		flags = MAP_SHARED | MAP_NORESERVE;
	}
	vm->memory =
	        mmap(NULL, mapping_length(vm), PROT_READ | PROT_WRITE, flags, vm->memory_fd, 0);
	if (vm->memory == MAP_FAILED) {
		vm->memory = NULL;
		vm->ops = NULL;
		machine_destroy(vm);
		return -ENOMEM;
	}
	vm->dirty = calloc(machine_bitmap_words(vm), sizeof(uint64_t));
	vm->touched = calloc(machine_bitmap_words(vm), sizeof(uint64_t));
	if (vm->dirty == NULL || vm->touched == NULL) {
		vm->ops = NULL;
		machine_destroy(vm);
		return -ENOMEM;
	}
	int ret = ops->init(vm, config);
	if (ret < 0) {
		vm->ops = NULL;
		machine_destroy(vm);
	}
	return ret;
}

void machine_destroy(struct machine *vm)
{
	if (vm->ops != NULL)
		vm->ops->fini(vm);
	if (vm->memory != NULL)
		munmap(vm->memory, mapping_length(vm));
	if (vm->memory_fd >= 0)
		close(vm->memory_fd);
	free(vm->dirty);
	free(vm->touched);
	free(vm->remote.absent);
	memset(vm, 0, sizeof(*vm));
	vm->memory_fd = -1;
}

void machine_resume(struct machine *vm)
{
	vm->state = MACHINE_RUNNING;
}

void machine_pause(struct machine *vm)
{
	vm->state = MACHINE_PAUSED;
	if (vm->ops->pause != NULL)
		vm->ops->pause(vm);
}

uint64_t machine_run(struct machine *vm, uint64_t now_ns)
{
	if (vm->state != MACHINE_RUNNING)
		return 0;
	uint64_t written = vm->ops->run(vm, now_ns);
	/* The dirty rate over whole seconds, as QEMU reports it. */
	vm->rate_window_writes += written;
	if (vm->rate_window_ns == 0)
		vm->rate_window_ns = now_ns;
	if (now_ns - vm->rate_window_ns >= NS_PER_SECOND) {
		vm->stats.dirty_rate =
		        vm->rate_window_writes * NS_PER_SECOND / (now_ns - vm->rate_window_ns);
		vm->rate_window_ns = now_ns;
		vm->rate_window_writes = 0;
	}
	return written;
}

uint64_t machine_step(const struct machine *vm)
{
	return vm->ops->step(vm);
}

int machine_steps(struct machine *vm, uint64_t n)
{
	return vm->ops->steps(vm, n);
}

const struct vm_workload *machine_workload(const struct machine *vm)
{
	return vm->ops->workload(vm);
}

static inline void bit_set(uint64_t *bitmap, uint64_t bit)
{
	bitmap[bit / 64] |= 1ull << (bit % 64);
}

static inline bool bit_test(const uint64_t *bitmap, uint64_t bit)
{
	return (bitmap[bit / 64] >> (bit % 64)) & 1;
}

void machine_dirty(struct machine *vm, uint64_t page)
{
	bit_set(vm->dirty, page);
	if (!bit_test(vm->touched, page)) {
		bit_set(vm->touched, page);
		vm->stats.pages_touched++;
	}
	vm->stats.pages_written++;
}

void machine_write64(struct machine *vm, uint64_t page, uint32_t offset, uint64_t value)
{
	memcpy(machine_page(vm, page) + (offset & (VM_PAGE_SIZE - 8)), &value, sizeof(value));
	bit_set(vm->dirty, page);
	if (!bit_test(vm->touched, page)) {
		bit_set(vm->touched, page);
		vm->stats.pages_touched++;
	}
	vm->stats.pages_written++;
}

int machine_remote_begin(struct machine *vm, const uint64_t *absent, machine_fault_fn *fault,
                         void *ctx)
{
	size_t bytes = machine_bitmap_words(vm) * sizeof(uint64_t);

	machine_remote_end(vm);
	vm->remote.absent = malloc(bytes);
	if (vm->remote.absent == NULL)
		return -ENOMEM;
	memcpy(vm->remote.absent, absent, bytes);
	/* Bits past the last page mean nothing. */
	if (vm->nb_pages % 64 != 0)
		vm->remote.absent[vm->nb_pages / 64] &= (1ull << (vm->nb_pages % 64)) - 1;
	vm->remote.nb_absent = 0;
	for (uint64_t w = 0; w < machine_bitmap_words(vm); w++)
		vm->remote.nb_absent += (uint64_t)__builtin_popcountll(vm->remote.absent[w]);
	vm->remote.fault = fault;
	vm->remote.fault_ctx = ctx;
	int ret = vm->ops->remote != NULL ? vm->ops->remote(vm, MACHINE_REMOTE_BEGIN, 0) : 0;
	if (ret < 0)
		machine_remote_end(vm);
	return ret;
}

bool machine_page_absent(const struct machine *vm, uint64_t page)
{
	return vm->remote.absent != NULL && bit_test(vm->remote.absent, page);
}

void machine_remote_arrived(struct machine *vm, uint64_t page, uint64_t now_ns)
{
	if (!machine_page_absent(vm, page))
		return;
	vm->remote.absent[page / 64] &= ~(1ull << (page % 64));
	vm->remote.nb_absent--;
	if (vm->remote.stalled_page == page) {
		vm->stats.stall_ns += now_ns - vm->remote.stall_start_ns;
		vm->remote.stalled_page = UINT64_MAX;
		if (vm->ops->remote != NULL)
			vm->ops->remote(vm, MACHINE_REMOTE_ARRIVED, page);
	}
}

bool machine_access(struct machine *vm, uint64_t page, uint64_t now_ns)
{
	if (!machine_page_absent(vm, page))
		return true;
	if (vm->remote.stalled_page != page) {
		vm->remote.stalled_page = page;
		vm->remote.stall_start_ns = now_ns;
		vm->stats.remote_faults++;
		if (vm->remote.fault != NULL)
			vm->remote.fault(vm->remote.fault_ctx, page, now_ns);
	}
	return false;
}

void machine_remote_end(struct machine *vm)
{
	if (vm->remote.absent != NULL && vm->ops != NULL && vm->ops->remote != NULL)
		vm->ops->remote(vm, MACHINE_REMOTE_END, 0);
	free(vm->remote.absent);
	vm->remote = (struct machine_remote){.stalled_page = UINT64_MAX};
}

uint64_t machine_dirty_log_read_and_clear(struct machine *vm, uint64_t *out)
{
	uint64_t count = 0;

	if (vm->ops->sync_dirty_log != NULL)
		vm->ops->sync_dirty_log(vm);

	for (uint64_t w = 0; w < machine_bitmap_words(vm); w++) {
		out[w] = vm->dirty[w];
		vm->dirty[w] = 0;
		count += (uint64_t)__builtin_popcountll(out[w]);
	}
	return count;
}

void machine_dirty_log_merge_and_clear(struct machine *vm, uint64_t *out)
{
	if (vm->ops->sync_dirty_log != NULL)
		vm->ops->sync_dirty_log(vm);
	for (uint64_t w = 0; w < machine_bitmap_words(vm); w++) {
		out[w] |= vm->dirty[w];
		vm->dirty[w] = 0;
	}
}

bool machine_page_is_zero(const struct machine *vm, uint64_t page)
{
	if (!bit_test(vm->touched, page))
		return true;
	const uint64_t *words = (const uint64_t *)machine_page(vm, page);
	for (unsigned int i = 0; i < VM_PAGE_SIZE / sizeof(uint64_t); i++)
		if (words[i] != 0)
			return false;
	return true;
}

void machine_page_load(struct machine *vm, uint64_t page, const void *data)
{
	memcpy(machine_page(vm, page), data, VM_PAGE_SIZE);
	if (!bit_test(vm->touched, page)) {
		bit_set(vm->touched, page);
		vm->stats.pages_touched++;
	}
}

void machine_page_load_part(struct machine *vm, uint64_t page, uint32_t offset, const void *data,
                            uint32_t len)
{
	uint8_t *at = machine_page(vm, page) + offset;

	/* A migration may have opened the data in place already. */
	if (at != (const uint8_t *)data)
		memcpy(at, data, len);
	if (!bit_test(vm->touched, page)) {
		bit_set(vm->touched, page);
		vm->stats.pages_touched++;
	}
}

void machine_page_load_zero(struct machine *vm, uint64_t page)
{
	if (bit_test(vm->touched, page))
		memset(machine_page(vm, page), 0, VM_PAGE_SIZE);
}

bool machine_page_touched(const struct machine *vm, uint64_t page)
{
	return bit_test(vm->touched, page);
}

bool machine_region_touched(const struct machine *vm, uint64_t region)
{
	uint64_t first = region * VM_REGION_PAGES, end = first + VM_REGION_PAGES;

	if (end > vm->nb_pages)
		end = vm->nb_pages;
	/* Regions are whole bitmap words (512 pages = 8 words), except a short last one. */
	for (uint64_t page = first; page < end; page += 64)
		if (vm->touched[page / 64] != 0)
			return true;
	return false;
}

int machine_region_populate(struct machine *vm, uint64_t region)
{
	uint64_t first = region * VM_REGION_PAGES;
	uint64_t pages =
	        vm->nb_pages - first < VM_REGION_PAGES ? vm->nb_pages - first : VM_REGION_PAGES;
	uint8_t *start = machine_page(vm, first);
	size_t len = pages * VM_PAGE_SIZE;

	if (region >= machine_regions(vm))
		return -EINVAL;
	if (vm->backing == MACHINE_BACKING_HUGETLB)
		len = HUGEPAGE_SIZE; /* the mapping ends on a whole hugepage */
	else
		(void)madvise(start, len, MADV_HUGEPAGE); /* a hint the kernel may refuse */
	return madvise(start, len, MADV_POPULATE_WRITE) == 0 ? 0 : -errno;
}

/* FNV-1a over 64-bit words, folded per page with the page number: cheap, and enough to tell two
 * memories apart in a test or a `verify on` migration. */
uint64_t machine_page_hash(const struct machine *vm, uint64_t page)
{
	if (!bit_test(vm->touched, page))
		return 0;
	const uint64_t *words = (const uint64_t *)machine_page(vm, page);
	uint64_t h = 0xcbf29ce484222325ull ^ (page + 1);
	bool zero = true;
	for (unsigned int i = 0; i < VM_PAGE_SIZE / sizeof(uint64_t); i++) {
		h = (h ^ words[i]) * 0x100000001b3ull;
		zero &= words[i] == 0;
	}
	/* A touched page that went back to zeros hashes as an untouched one. */
	if (zero)
		return 0;
	/* Mixed to the full width (splitmix64's finaliser), so that sums of pages' hashes do not
	 * cancel in the low bits. */
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

uint64_t machine_memory_hash(const struct machine *vm)
{
	uint64_t hash = 0;

	for (uint64_t page = 0; page < vm->nb_pages; page++)
		hash += machine_page_hash(vm, page);
	return hash;
}

size_t machine_save_state(const struct machine *vm, void *buf)
{
	return vm->ops->save_state(vm, buf);
}

int machine_load_state(struct machine *vm, const void *buf, size_t len)
{
	return vm->ops->load_state(vm, buf, len);
}
