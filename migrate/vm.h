/* The VM model: memory of 4-KiB pages with a KVM-style dirty log, a vCPU state blob, and a
 * backend behind one ops table (synthetic now, KVM micro-VMs later). The migration engine
 * touches a VM only through this API. */
#ifndef FERRY_MIGRATE_VM_H
#define FERRY_MIGRATE_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_PAGE_SIZE     4096u
#define VM_NAME_MAX      32
#define VM_STATE_MAX     256          /* largest vCPU state blob of any backend */
#define VM_MAX_MEMORY_MB (64u * 1024) /* sparse: only written pages cost memory */

struct vm;

enum vm_run_state {
	VM_RUNNING,
	VM_PAUSED,
};

/* What a backend provides. */
struct vm_ops {
	const char *name;
	/* Prepares the backend's state for a VM whose memory exists; config is the backend's
	 * own (for synthetic: struct vm_workload). */
	int (*init)(struct vm *vm, const void *config);
	/* Frees what init made. */
	void (*fini)(struct vm *vm);
	/* Runs the guest for as long as now_ns allows; returns the pages it wrote. */
	uint64_t (*run)(struct vm *vm, uint64_t now_ns);
	/* Writes the vCPU state into buf (at most VM_STATE_MAX bytes); returns its length. */
	size_t (*save_state)(const struct vm *vm, void *buf);
	/* Loads a vCPU state saved by the same backend; -EINVAL if it is not one. */
	int (*load_state)(struct vm *vm, const void *buf, size_t len);
};

struct vm_stats {
	uint64_t pages_written; /* page writes, all told */
	uint64_t pages_touched; /* distinct pages ever written */
	uint64_t dirty_rate;    /* page writes per second, over the last second */
};

struct vm {
	char name[VM_NAME_MAX];
	uint64_t nb_pages;
	uint8_t *memory;   /* nb_pages * VM_PAGE_SIZE, mmap'ed sparse */
	uint64_t *dirty;   /* one bit per page, set by writes, read-and-cleared */
	uint64_t *touched; /* one bit per page ever written: the rest is zero */
	enum vm_run_state state;
	uint32_t throttle_percent; /* slows the guest down (auto-converge) */
	const struct vm_ops *ops;
	void *backend; /* the backend's private state */
	struct vm_stats stats;
	uint64_t rate_window_ns, rate_window_writes;
};

/* Number of 64-bit words in a bitmap of the VM's pages. */
static inline uint64_t vm_bitmap_words(const struct vm *vm)
{
	return (vm->nb_pages + 63) / 64;
}

/* Creates a VM of memory_mb MiB (sparse), paused, with a backend and its configuration.
 * Returns 0 or a negative errno. */
int vm_create(struct vm *vm, const char *name, uint64_t memory_mb, const struct vm_ops *ops,
              const void *config);

/* Frees the VM's memory and backend state. */
void vm_destroy(struct vm *vm);

/* Starts or stops the guest. */
void vm_resume(struct vm *vm);
void vm_pause(struct vm *vm);

/* Runs the guest if it is running (the backend decides how much); returns the pages written. */
uint64_t vm_run(struct vm *vm, uint64_t now_ns);

/* Writes 8 bytes into guest memory at a page and offset, logging the page dirty. Backends use
 * this, so the dirty log sees every write. */
void vm_write64(struct vm *vm, uint64_t page, uint32_t offset, uint64_t value);

/* Copies the dirty log into out (vm_bitmap_words(vm) words) and clears it, as
 * KVM_GET_DIRTY_LOG does; returns the number of dirty pages. */
uint64_t vm_dirty_log_read_and_clear(struct vm *vm, uint64_t *out);

/* A page of guest memory. */
static inline uint8_t *vm_page(const struct vm *vm, uint64_t page)
{
	return vm->memory + page * VM_PAGE_SIZE;
}

/* True if the page is all zeros (it never needs to cross the wire as data). */
bool vm_page_is_zero(const struct vm *vm, uint64_t page);

/* Stores a page that arrived from elsewhere (a migration), marking it touched but not dirty. */
void vm_page_load(struct vm *vm, uint64_t page, const void *data);

/* Stores part of a page that arrived from elsewhere (a fragment), marking it touched but not
 * dirty. The caller has checked that offset + len stays inside the page. */
void vm_page_load_part(struct vm *vm, uint64_t page, uint32_t offset, const void *data,
                       uint32_t len);

/* Makes a page all zeros (a zero-page marker arrived), without touching untouched pages. */
void vm_page_load_zero(struct vm *vm, uint64_t page);

/* True if the page was ever written (the others are zeros without being read). */
bool vm_page_touched(const struct vm *vm, uint64_t page);

/* A 64-bit hash of the whole memory (untouched pages count as zeros without being read). */
uint64_t vm_memory_hash(const struct vm *vm);

/* The vCPU state blob and its loading, through the backend. */
size_t vm_save_state(const struct vm *vm, void *buf);
int vm_load_state(struct vm *vm, const void *buf, size_t len);

#endif
