/* The VM model: memory of 4-KiB pages with a KVM-style dirty log, a vCPU state blob, and a
 * backend behind one ops table (synthetic now, KVM micro-VMs later). The migration engine
 * touches a VM only through this API. */
#ifndef FERRY_VM_MACHINE_H
#define FERRY_VM_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_PAGE_SIZE     4096u
#define VM_NAME_MAX      32
#define VM_STATE_MAX     1280         /* largest vCPU state blob of any backend */
#define VM_MAX_MEMORY_MB (64u * 1024) /* sparse: only written pages cost memory */

struct machine;
struct vm_workload;

/* Post-copy as a backend that takes its vCPU's faults itself (userfaultfd) must hear it. */
enum machine_remote_event {
	MACHINE_REMOTE_BEGIN,   /* pages are elsewhere from now on, before the vCPU runs */
	MACHINE_REMOTE_ARRIVED, /* the page the vCPU waits on is here */
	MACHINE_REMOTE_END,     /* every page is here, or the copy is dropped */
};

enum machine_run_state {
	MACHINE_RUNNING,
	MACHINE_PAUSED,
};

/* What a backend provides. */
struct machine_ops {
	const char *name;
	/* Prepares the backend's state for a VM whose memory exists; config is the backend's
	 * own (for synthetic: struct vm_workload). */
	int (*init)(struct machine *vm, const void *config);
	/* Frees what init made. */
	void (*fini)(struct machine *vm);
	/* Runs the vm for as long as now_ns allows; returns the pages it wrote. */
	uint64_t (*run)(struct machine *vm, uint64_t now_ns);
	/* Writes the vCPU state into buf (at most VM_STATE_MAX bytes); returns its length. */
	size_t (*save_state)(const struct machine *vm, void *buf);
	/* Loads a vCPU state saved by the same backend; -EINVAL if it is not one. */
	int (*load_state)(struct machine *vm, const void *buf, size_t len);
	/* The workload's step counter, as the vCPU keeps it. */
	uint64_t (*step)(const struct machine *vm);
	/* Runs exactly n steps, whatever the clock says (or fewer if one stalls on a page that is
	 * elsewhere); 0 or a negative errno. */
	int (*steps)(struct machine *vm, uint64_t n);
	/* The workload the vCPU runs (after a state load, the one that came with it). */
	const struct vm_workload *(*workload)(const struct machine *vm);
	/* Optional: adds what the hypervisor logged since (KVM's dirty log) to the machine's,
	 * before the machine's log is read; NULL for a backend that writes through it. */
	void (*sync_dirty_log)(struct machine *vm);
	/* Optional: stops the vCPU where it runs apart from the worker (its thread), returning
	 * once it is out of the guest; NULL for a backend that runs only in run. */
	void (*pause)(struct machine *vm);
	/* Optional: post-copy's events, for a backend whose vCPU touches memory without asking
	 * machine_access (page is the one arrived); 0, or -ENOTSUP at BEGIN if it cannot serve
	 * absent pages. */
	int (*remote)(struct machine *vm, enum machine_remote_event event, uint64_t page);
	/* The memory is a shared file (a memfd) the backend may map a second time, as a
	 * hypervisor does to give its vCPU a view of its own (the hugetlb backing excepted). */
	bool shared_memory;
};

/* Where a VM's memory comes from. */
enum machine_backing {
	MACHINE_BACKING_ANONYMOUS = 0, /* sparse anonymous memory; transparent hugepages where
	                                * populated ahead */
	MACHINE_BACKING_HUGETLB = 1,   /* 2 MiB pages of the host's hugetlb pool, reserved whole
	                                * at creation (as QEMU's hugetlbfs memory backend), given a
	                                * page frame only where written */
};

struct machine_stats {
	uint64_t pages_written; /* page writes, all told */
	uint64_t pages_touched; /* distinct pages ever written */
	uint64_t dirty_rate;    /* page writes per second, over the last second */
	uint64_t remote_faults; /* post-copy: accesses that found their page elsewhere */
	uint64_t stall_ns;      /* post-copy: time the vCPU waited on such pages, all told */
};

/* Post-copy: the vCPU touched a page whose contents are still on the other host. Called once
 * per stall, on the worker; whoever serves it (the migration engine here; a KVM backend would
 * take the same fault from userfaultfd) brings the page and calls machine_remote_arrived. */
typedef void machine_fault_fn(void *ctx, uint64_t page, uint64_t now_ns);

/* Pages whose contents are elsewhere while a VM runs (post-copy), and the vCPU that waits. */
struct machine_remote {
	uint64_t *absent; /* one bit per page not here yet; NULL: every page is here */
	uint64_t nb_absent;
	machine_fault_fn *fault;
	void *fault_ctx;
	uint64_t stalled_page; /* the page the vCPU waits on, or UINT64_MAX */
	uint64_t stall_start_ns;
};

struct machine {
	char name[VM_NAME_MAX];
	uint64_t nb_pages;
	uint8_t *memory; /* nb_pages * VM_PAGE_SIZE, mmap'ed sparse */
	int memory_fd;   /* the memfd behind memory (ops->shared_memory), or -1 */
	enum machine_backing backing;
	uint64_t *dirty;   /* one bit per page, set by writes, read-and-cleared */
	uint64_t *touched; /* one bit per page ever written: the rest is zero */
	enum machine_run_state state;
	uint32_t throttle_percent; /* slows the vm down (auto-converge) */
	const struct machine_ops *ops;
	void *backend; /* the backend's private state */
	struct machine_stats stats;
	uint64_t rate_window_ns, rate_window_writes;
	struct machine_remote remote;
};

/* Number of 64-bit words in a bitmap of the VM's pages. */
static inline uint64_t machine_bitmap_words(const struct machine *vm)
{
	return (vm->nb_pages + 63) / 64;
}

/* Creates a VM of memory_mb MiB (sparse), paused, with its memory's backing, a backend and the
 * backend's configuration. Returns 0 or a negative errno (-ENOMEM also when the hugetlb pool
 * cannot reserve the VM's size). */
int machine_create(struct machine *vm, const char *name, uint64_t memory_mb,
                   enum machine_backing backing, const struct machine_ops *ops, const void *config);

/* "anonymous" or "hugetlb". */
const char *machine_backing_name(enum machine_backing backing);

/* Frees the VM's memory and backend state. */
void machine_destroy(struct machine *vm);

/* Starts or stops the vm. */
void machine_resume(struct machine *vm);
void machine_pause(struct machine *vm);

/* Runs the vm if it is running (the backend decides how much); returns the pages written. */
uint64_t machine_run(struct machine *vm, uint64_t now_ns);

/* The backend's step counter, exact steps and workload (see struct machine_ops). */
uint64_t machine_step(const struct machine *vm);
int machine_steps(struct machine *vm, uint64_t n);
const struct vm_workload *machine_workload(const struct machine *vm);

/* Writes 8 bytes into vm memory at a page and offset, logging the page dirty. Backends use
 * this, so the dirty log sees every write. */
void machine_write64(struct machine *vm, uint64_t page, uint32_t offset, uint64_t value);

/* Copies the dirty log into out (machine_bitmap_words(vm) words) and clears it, as
 * KVM_GET_DIRTY_LOG does; returns the number of dirty pages. */
uint64_t machine_dirty_log_read_and_clear(struct machine *vm, uint64_t *out);

/* The same, adding the log to what out holds (a mid-round read that the round's end must not
 * lose). */
void machine_dirty_log_merge_and_clear(struct machine *vm, uint64_t *out);

/* A page of vm memory. */
static inline uint8_t *machine_page(const struct machine *vm, uint64_t page)
{
	return vm->memory + page * VM_PAGE_SIZE;
}

/* True if the page is all zeros (it never needs to cross the wire as data). */
bool machine_page_is_zero(const struct machine *vm, uint64_t page);

/* Stores a page that arrived from elsewhere (a migration), marking it touched but not dirty. */
void machine_page_load(struct machine *vm, uint64_t page, const void *data);

/* Stores part of a page that arrived from elsewhere (a fragment), marking it touched but not
 * dirty; data may already be in place (a migration opened it there). The caller has checked that
 * offset + len stays inside the page. */
void machine_page_load_part(struct machine *vm, uint64_t page, uint32_t offset, const void *data,
                            uint32_t len);

/* Makes a page all zeros (a zero-page marker arrived), without touching untouched pages. */
void machine_page_load_zero(struct machine *vm, uint64_t page);

/* True if the page was ever written (the others are zeros without being read). */
bool machine_page_touched(const struct machine *vm, uint64_t page);

#define VM_REGION_PAGES 512 /* 2 MiB: a transparent hugepage */

/* The number of 2 MiB regions of the vm's memory (the last may be short). */
static inline uint64_t machine_regions(const struct machine *vm)
{
	return (vm->nb_pages + VM_REGION_PAGES - 1) / VM_REGION_PAGES;
}

/* True if any page of the region was ever written. */
bool machine_region_touched(const struct machine *vm, uint64_t region);

/* Backs a region with memory before anything is written to it: a hugetlb page, or a transparent
 * hugepage where the kernel allows (MADV_HUGEPAGE), populated writable (MADV_POPULATE_WRITE). Its contents stay
 * zero and untouched; the pages written into it later do not fault. Safe to call from another
 * thread while the vm's memory is written. Returns 0 or a negative errno. */
int machine_region_populate(struct machine *vm, uint64_t region);

/* The host wrote into a page (a device's write, as the VM's TCP buffers): the dirty log says so,
 * as for the vCPU's own writes. */
void machine_dirty(struct machine *vm, uint64_t page);

/* Post-copy begins: the pages set in absent (machine_bitmap_words words) are elsewhere until
 * machine_remote_arrived says otherwise; an access to one stalls the vCPU and calls fault.
 * Returns 0, -ENOMEM, or the backend's -ENOTSUP. */
int machine_remote_begin(struct machine *vm, const uint64_t *absent, machine_fault_fn *fault,
                         void *ctx);

/* A page's contents are here now; a vCPU stalled on it runs again. */
void machine_remote_arrived(struct machine *vm, uint64_t page, uint64_t now_ns);

/* True if the page is elsewhere (post-copy, not arrived yet). */
bool machine_page_absent(const struct machine *vm, uint64_t page);

/* What a backend asks before its vCPU touches a page: true if it may; false if the page is
 * elsewhere, in which case the vCPU stalls (its step is not taken, to be taken again once the
 * page arrives) and the fault is reported, once per stall. */
bool machine_access(struct machine *vm, uint64_t page, uint64_t now_ns);

/* True while the vCPU waits on a page. */
static inline bool machine_stalled(const struct machine *vm)
{
	return vm->remote.stalled_page != UINT64_MAX;
}

/* Post-copy is over (every page arrived, or the copy is dropped): forgets the absent pages. */
void machine_remote_end(struct machine *vm);

/* A 64-bit hash of the whole memory (untouched pages count as zeros without being read). */
uint64_t machine_memory_hash(const struct machine *vm);

/* One page's part of that hash (0 for a page of zeros). The memory's hash is the sum of its
 * pages', so a post-copy destination builds it page by page as they arrive, in any order. */
uint64_t machine_page_hash(const struct machine *vm, uint64_t page);

/* The vCPU state blob and its loading, through the backend. */
size_t machine_save_state(const struct machine *vm, void *buf);
int machine_load_state(struct machine *vm, const void *buf, size_t len);

#endif
