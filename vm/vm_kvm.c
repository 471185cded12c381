/* The KVM backend: ferry's guest on one vCPU of a thread of its own, granted its steps by the
 * worker, its memory's writes read from KVM's dirty log and merged with the host's own. */
#include "vm_kvm.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include <rte_common.h>
#include <rte_log.h>

#include "vm/guest/guest.h"

static RTE_LOG_REGISTER(vm_kvm_logtype, ferry.kvm, INFO);
#define KVM_LOG(level, fmt, ...)                                                                   \
	rte_log(RTE_LOG_##level, vm_kvm_logtype, "kvm: " fmt "\n", ##__VA_ARGS__)

/* The MSRs a guest's kernel sets and the state carries (EFER and the segment bases are in
 * the special registers; the TSC stays the host's). */
static const uint32_t kvm_msr_list[VM_KVM_MSRS] = {
        0x174,      /* IA32_SYSENTER_CS */
        0x175,      /* IA32_SYSENTER_ESP */
        0x176,      /* IA32_SYSENTER_EIP */
        0xc0000081, /* STAR */
        0xc0000082, /* LSTAR */
        0xc0000084, /* SYSCALL_MASK */
        0xc0000102, /* KERNEL_GS_BASE */
        0x277,      /* IA32_PAT */
};

#define XSTATE_LEGACY 3ull /* XSTATE_BV's x87 and SSE bits */

/* KVM_GET_MSRS' and KVM_SET_MSRS' argument for the list, in 64-bit words: its header and
 * entries. */
#define MSR_WORDS                                                                                  \
	((sizeof(struct kvm_msrs) + VM_KVM_MSRS * sizeof(struct kvm_msr_entry)) / sizeof(uint64_t))

/* Where KVM puts the TSS it needs for real mode on VMX: three pages in the hole. */
#define KVM_TSS_ADDRESS 0xfffbd000ull

/* The worker grants the vCPU thread a budget of steps through the guest's mailbox; the thread
 * runs the guest until it reached it (or the worker lowered it to stop it), then waits. The
 * worker never waits on the guest except to stop it, which takes at most one step. */
struct kvm_backend {
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	bool manual_protect; /* KVM_CLEAR_DIRTY_LOG re-protects what GET_DIRTY_LOG reported */
	bool has_xcrs;       /* the host has XSAVE, and KVM its XCR0 */
	uint64_t guest_page;
	struct vm_workload workload;
	struct vm_pacing pacing;
	uint64_t *log; /* KVM's dirty bitmap, read into here */
	bool no_dirty_log;
	struct vm_kvm_log_stats log_stats; /* the worker's */
	uint64_t counted;                  /* steps reported as written so far (the worker's) */
	uint64_t last_sync_ns;             /* the worker's last read of KVM's log after a run */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the vCPU thread: a grant, or the end */
	pthread_cond_t idle; /* the worker: the vCPU left the guest */
	bool granted;        /* the vCPU runs the guest to its budget (lock; read atomically) */
	bool quit;           /* the thread ends (lock) */
	bool failed;         /* the vCPU stopped on something the guest never does (lock) */
	uint64_t exits;      /* the thread's, read atomically */
	/* Post-copy: KVM's slots map the memory's memfd a second time (the view), and only the
	 * view is registered with userfaultfd, so the host's own accesses (pages arriving in
	 * fragments, the mailbox, TCP) never fault and a page is mapped for the vCPU once whole.
	 * The worker reads the faults; the vCPU thread waits in them. */
	uint8_t *view;    /* the vCPU's view of the memory (the memory itself on hugetlb) */
	int uffd;         /* -1: no post-copy for this VM */
	bool registered;  /* the view is registered (read atomically) */
	bool postcopy;    /* pages may be elsewhere (the worker's; lock to change) */
	uint64_t last_ns; /* the worker's clock at its last run, for faults read while waiting */
	struct vm_kvm_fault_stats fault_stats;
};

static struct guest_mailbox *mailbox(const struct machine *vm)
{
	const struct kvm_backend *k = vm->backend;

	return (struct guest_mailbox *)(machine_page(vm, k->guest_page) + GUEST_MAILBOX);
}

uint64_t vm_kvm_guest_pages(uint64_t nb_pages)
{
	return 1 + 2 + (nb_pages + VM_KVM_HOLE_PAGES - 1) / VM_KVM_HOLE_PAGES; /* a GiB each */
}

/* The guest-physical address of a byte of guest memory (the hole skipped). */
static uint64_t guest_physical(uint64_t address)
{
	uint64_t hole = VM_KVM_HOLE_PAGE * VM_PAGE_SIZE;

	return address < hole ? address : address + VM_KVM_HOLE_PAGES * VM_PAGE_SIZE;
}

/* A memory slot's pages of the machine: [first, end), false if the VM has no such slot (slot 1
 * is the memory past the hole). */
static bool slot_pages(const struct machine *vm, unsigned int slot, uint64_t *first, uint64_t *end)
{
	*first = slot == 0 ? 0 : VM_KVM_HOLE_PAGE;
	*end = slot == 0 ? RTE_MIN(vm->nb_pages, VM_KVM_HOLE_PAGE) : vm->nb_pages;
	return *end > *first;
}

/* A flat segment (long mode ignores the data segments' base and limit, not their presence). */
static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code)
{
	return (struct kvm_segment){
	        .base = 0,
	        .limit = 0xffffffffu,
	        .selector = selector,
	        .type = type,
	        .present = 1,
	        .db = code ? 0 : 1,
	        .l = code ? 1 : 0,
	        .s = 1,
	        .g = 1,
	};
}

/* The guest at its entry: long mode over the identity map, interrupts off, the stack at the top
 * of its page. */
static int vcpu_reset(struct kvm_backend *k)
{
	struct kvm_sregs sregs;
	uint64_t image = k->guest_page * VM_PAGE_SIZE;

	if (ioctl(k->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = flat_segment(0x08, 0xb, true); /* code: execute, read, accessed */
	sregs.ds = sregs.es = sregs.ss = sregs.fs = sregs.gs = flat_segment(0x10, 0x3, false);
	sregs.cr3 = guest_physical(image + VM_PAGE_SIZE); /* the PML4, after the image */
	sregs.cr4 = 0x20;                                 /* PAE */
	sregs.cr0 = 0x80000011u;                          /* PG, PE, ET */
	sregs.efer = 0x500;                               /* LME, LMA */
	if (ioctl(k->vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	struct kvm_regs regs = {.rip = image, .rsp = image + GUEST_STACK_TOP, .rflags = 0x2};
	if (ioctl(k->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

/* The page tables after the image: a PML4, a PDPT, and one directory of 2 MiB pages per GiB,
 * guest memory mapped linear over the hole. Accessed and dirty bits are set already, so the
 * walk never writes them (a write the dirty log would report on every round). */
static void write_page_tables(struct machine *vm, const struct kvm_backend *k)
{
	uint64_t tables = k->guest_page + 1, gib = vm_kvm_guest_pages(vm->nb_pages) - 3;
	uint64_t *pml4 = (uint64_t *)machine_page(vm, tables);
	uint64_t *pdpt = (uint64_t *)machine_page(vm, tables + 1);

	/* Present, writable, accessed. */
	pml4[0] = guest_physical((tables + 1) * VM_PAGE_SIZE) | 0x23;
	for (uint64_t g = 0; g < gib; g++) {
		uint64_t *directory = (uint64_t *)machine_page(vm, tables + 2 + g);
		pdpt[g] = guest_physical((tables + 2 + g) * VM_PAGE_SIZE) | 0x23;
		for (uint64_t i = 0; i < 512; i++) /* 2 MiB, accessed, dirty */
			directory[i] = guest_physical(g << 30 | i << 21) | 0xe3;
	}
	for (uint64_t p = 0; p < 2 + gib; p++)
		machine_dirty(vm, tables + p);
}

/* The vCPU's CPUID: what KVM supports here, as QEMU's "-cpu host" gives (without it KVM takes
 * every feature bit as reserved, long mode included). */
static int set_cpuid(struct kvm_backend *k)
{
	unsigned int entries = 64;
	struct kvm_cpuid2 *cpuid = NULL;
	int ret;

	for (;;) {
		free(cpuid);
		cpuid = calloc(1, sizeof(*cpuid) + entries * sizeof(struct kvm_cpuid_entry2));
		if (cpuid == NULL)
			return -ENOMEM;
		cpuid->nent = entries;
		ret = ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid);
		if (ret == 0 || errno != E2BIG || entries >= 1024)
			break;
		entries *= 2;
	}
	if (ret == 0)
		ret = ioctl(k->vcpu_fd, KVM_SET_CPUID2, cpuid);
	free(cpuid);
	return ret < 0 ? -1 : 0;
}

/* KVM's VM with the machine's memory in its slots, dirty logging on, and one vCPU. */
static int kvm_open(struct machine *vm, struct kvm_backend *k)
{
	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		int ret = -errno;
		KVM_LOG(ERR, "%s: /dev/kvm: %s", vm->name, strerror(errno));
		return ret;
	}
	int version = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		KVM_LOG(ERR, "%s: KVM API version %d, not %d", vm->name, version, KVM_API_VERSION);
		return -ENOTSUP;
	}
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0)
		goto fail;
	/* With manual protection, reading the log does not write-protect every page again at
	 * once: the clear does, for the pages reported (and a huge VM's log is read in one go
	 * without stalling its vCPU on every page at the same time). */
	int manual = ioctl(k->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	if (manual > 0 && (manual & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)) {
		struct kvm_enable_cap cap = {.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
		                             .args = {KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE}};
		k->manual_protect = ioctl(k->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
	}
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDRESS) < 0)
		goto fail;
	if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) <= 0) {
		KVM_LOG(ERR, "%s: this KVM has no XSAVE state to carry the FPU in", vm->name);
		return -ENOTSUP;
	}
	k->has_xcrs = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	uint64_t first, end;
	for (unsigned int slot = 0; slot < 2 && slot_pages(vm, slot, &first, &end); slot++) {
		struct kvm_userspace_memory_region region = {
		        .slot = slot,
		        .flags = k->no_dirty_log ? 0 : KVM_MEM_LOG_DIRTY_PAGES,
		        .guest_phys_addr = guest_physical(first * VM_PAGE_SIZE),
		        .memory_size = (end - first) * VM_PAGE_SIZE,
		        .userspace_addr = (uint64_t)(uintptr_t)(k->view + first * VM_PAGE_SIZE),
		};
		if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
			goto fail;
	}
	k->vcpu_fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, 0);
	if (k->vcpu_fd < 0)
		goto fail;
	if (set_cpuid(k) < 0)
		goto fail;
	int size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run))
		goto fail;
	k->run_size = (size_t)size;
	k->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, k->vcpu_fd, 0);
	if (k->run == MAP_FAILED) {
		k->run = NULL;
		goto fail;
	}
	return vcpu_reset(k);
fail:;
	int ret = -errno;
	KVM_LOG(ERR, "%s: KVM refused the VM: %s", vm->name, strerror(errno));
	return ret;
}

static struct uffdio_range view_range(const struct machine *vm, const struct kvm_backend *k)
{
	return (struct uffdio_range){.start = (uint64_t)(uintptr_t)k->view,
	                             .len = vm->nb_pages * VM_PAGE_SIZE};
}

/* Registers the view for missing and minor faults: every first access of the vCPU to a page is
 * reported, whether or not the page is in the file. */
static int view_register(const struct machine *vm, struct kvm_backend *k)
{
	struct uffdio_register reg = {
	        .range = view_range(vm, k),
	        .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR,
	};

	if (ioctl(k->uffd, UFFDIO_REGISTER, &reg) < 0 ||
	    !(reg.ioctls & (1ull << _UFFDIO_CONTINUE))) {
		KVM_LOG(ERR, "%s: userfaultfd refused its memory: %s", vm->name, strerror(errno));
		return -ENOTSUP;
	}
	__atomic_store_n(&k->registered, true, __ATOMIC_RELEASE);
	return 0;
}

/* Unregisters the view, which wakes a vCPU in a fault: it faults again, as on any memory. */
static void view_unregister(const struct machine *vm, struct kvm_backend *k)
{
	struct uffdio_range range = view_range(vm, k);

	if (!__atomic_load_n(&k->registered, __ATOMIC_ACQUIRE))
		return;
	if (ioctl(k->uffd, UFFDIO_UNREGISTER, &range) < 0)
		KVM_LOG(ERR, "%s: userfaultfd kept its memory: %s", vm->name, strerror(errno));
	__atomic_store_n(&k->registered, false, __ATOMIC_RELEASE);
}

/* The vCPU thread's part: enters the guest until it says on its port that its step counter
 * reached the budget (which the worker may lower to stop it). Returns false if the vCPU
 * failed. */
static bool enter_guest(struct machine *vm, struct kvm_backend *k)
{
	volatile struct guest_mailbox *box = mailbox(vm);

	while (box->step < box->budget) {
		if (ioctl(k->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			KVM_LOG(ERR, "%s: KVM_RUN: %s", vm->name, strerror(errno));
			return false;
		}
		__atomic_fetch_add(&k->exits, 1, __ATOMIC_RELAXED);
		const struct kvm_run *run = k->run;
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == GUEST_PORT_DONE &&
		    run->io.direction == KVM_EXIT_IO_OUT)
			continue;
		if (run->exit_reason == KVM_EXIT_INTR)
			continue;
		KVM_LOG(ERR, "%s: the vCPU stopped (exit %u, suberror %u) at step %lu", vm->name,
		        run->exit_reason,
		        run->exit_reason == KVM_EXIT_INTERNAL_ERROR ? run->internal.suberror : 0,
		        (unsigned long)box->step);
		return false;
	}
	return true;
}

static void *vcpu_thread(void *arg)
{
	struct machine *vm = arg;
	struct kvm_backend *k = vm->backend;

	pthread_mutex_lock(&k->lock);
	for (;;) {
		while (!k->granted && !k->quit)
			pthread_cond_wait(&k->wake, &k->lock);
		if (k->quit)
			break;
		/* Not in post-copy, the view needs no userfaultfd (it was registered in case the VM
		 * arrives in post-copy): this thread's own faults are the kernel's again. */
		if (!k->postcopy)
			view_unregister(vm, k);
		pthread_mutex_unlock(&k->lock);
		bool ok = enter_guest(vm, k);
		pthread_mutex_lock(&k->lock);
		if (!ok)
			k->failed = true;
		__atomic_store_n(&k->granted, false, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&k->idle);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* The vCPU's view of the memory, and a userfaultfd for it where post-copy can work: the memory
 * is a memfd (not hugetlb, whose 2 MiB pages cannot be mapped a 4 KiB page at a time) and the
 * kernel reports minor faults on shared memory (a page that is in the file but not yet mapped
 * in the view: one that arrived, or an older copy that must wait). */
static int open_view(struct machine *vm, struct kvm_backend *k)
{
	k->uffd = -1;
	if (vm->memory_fd < 0) {
		k->view = vm->memory;
		return 0;
	}
	k->view = mmap(NULL, vm->nb_pages * VM_PAGE_SIZE, PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_NORESERVE, vm->memory_fd, 0);
	if (k->view == MAP_FAILED) {
		k->view = NULL;
		return -ENOMEM;
	}
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_MINOR_SHMEM};
	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0 ||
	    !(api.features & UFFD_FEATURE_MINOR_SHMEM)) {
		KVM_LOG(INFO,
		        "%s: no userfaultfd with minor faults on shared memory (%s): "
		        "pre-copy only",
		        vm->name, fd < 0 ? strerror(errno) : "not offered");
		if (fd >= 0)
			close(fd);
		return 0;
	}
	k->uffd = fd;
	/* Registered now, while nothing else holds the process's memory map: during a migration
	 * the destination's populating threads hold it for milliseconds at a time, and post-copy
	 * begins inside the pause. A vCPU about to run without post-copy unregisters first. */
	if (view_register(vm, k) < 0) {
		close(fd);
		k->uffd = -1;
	}
	return 0;
}

/* Maps a page that is here for the vCPU and wakes it. A page never written has no place in the
 * file yet: reading it through the host's mapping gives it one (of zeros). */
static void map_for_vcpu(struct machine *vm, struct kvm_backend *k, uint64_t page)
{
	struct uffdio_continue cont = {
	        .range = {.start = (uint64_t)(uintptr_t)(k->view + page * VM_PAGE_SIZE),
	                  .len = VM_PAGE_SIZE},
	};

	for (int attempt = 0; attempt < 2; attempt++) {
		if (ioctl(k->uffd, UFFDIO_CONTINUE, &cont) == 0)
			return;
		if (errno == EEXIST) /* mapped already (a fault reported twice): wake it */
			break;
		if (errno != EFAULT || attempt == 1) {
			KVM_LOG(ERR, "%s: page %lu cannot be mapped for the vCPU: %s", vm->name,
			        (unsigned long)page, strerror(errno));
			break;
		}
		(void)*(volatile uint8_t *)machine_page(vm, page);
	}
	struct uffdio_range wake = cont.range;
	(void)ioctl(k->uffd, UFFDIO_WAKE, &wake);
}

/* The worker's side of the vCPU's faults: a page that is here is mapped at once; one that is
 * elsewhere stalls the vCPU (machine_access asks for it), to be mapped when it arrives.
 * Returns true if the vCPU waits on a page that is elsewhere. */
static bool serve_faults(struct machine *vm, struct kvm_backend *k, uint64_t now_ns)
{
	struct uffd_msg msgs[8];
	ssize_t len;

	if (!k->postcopy)
		return false;
	while ((len = read(k->uffd, msgs, sizeof(msgs))) > 0) {
		for (size_t i = 0; i < (size_t)len / sizeof(msgs[0]); i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			uint64_t address = msgs[i].arg.pagefault.address,
			         start = (uint64_t)(uintptr_t)k->view;
			if (address < start || address >= start + vm->nb_pages * VM_PAGE_SIZE)
				continue;
			uint64_t page = (address - start) / VM_PAGE_SIZE;
			k->fault_stats.faults++;
			if (machine_access(vm, page, now_ns)) {
				k->fault_stats.resolved++;
				map_for_vcpu(vm, k, page);
			}
		}
	}
	return machine_stalled(vm);
}

/* Post-copy's events (struct machine_ops' remote). */
static int kvm_remote(struct machine *vm, enum machine_remote_event event, uint64_t page)
{
	struct kvm_backend *k = vm->backend;

	switch (event) {
	case MACHINE_REMOTE_BEGIN:
		/* Where the VM arrives its view is registered since its creation and its vCPU
		 * never ran, so nothing of the view is mapped and every access is reported. */
		if (k->uffd < 0 || (!__atomic_load_n(&k->registered, __ATOMIC_ACQUIRE) &&
		                    view_register(vm, k) < 0))
			return -ENOTSUP;
		pthread_mutex_lock(&k->lock);
		k->postcopy = true;
		pthread_mutex_unlock(&k->lock);
		return 0;
	case MACHINE_REMOTE_ARRIVED:
		if (k->postcopy)
			map_for_vcpu(vm, k, page);
		return 0;
	case MACHINE_REMOTE_END:
		pthread_mutex_lock(&k->lock);
		k->postcopy = false;
		pthread_mutex_unlock(&k->lock);
		view_unregister(vm, k);
		return 0;
	}
	return -EINVAL;
}

bool vm_kvm_postcopy_capable(const struct machine *vm)
{
	return ((const struct kvm_backend *)vm->backend)->uffd >= 0;
}

struct vm_kvm_fault_stats vm_kvm_fault_stats(const struct machine *vm)
{
	return ((const struct kvm_backend *)vm->backend)->fault_stats;
}

static bool vcpu_busy(const struct kvm_backend *k)
{
	return __atomic_load_n(&k->granted, __ATOMIC_ACQUIRE);
}

/* Gives the idle vCPU steps to run; false if it is busy or failed. */
static bool grant(struct machine *vm, struct kvm_backend *k, uint64_t steps)
{
	volatile struct guest_mailbox *box = mailbox(vm);
	bool given = false;

	pthread_mutex_lock(&k->lock);
	if (!k->granted && !k->failed) {
		box->budget = box->step + steps;
		machine_dirty(vm, k->guest_page);
		k->granted = true;
		given = true;
		pthread_cond_signal(&k->wake);
	}
	pthread_mutex_unlock(&k->lock);
	return given;
}

/* Waits until the vCPU is out of the guest (the lock held). In post-copy the vCPU may be in a
 * fault only this thread serves: the faults are served while waiting, and a vCPU that waits on
 * a page still elsewhere is left in it (it takes its step once the page comes). Returns 0,
 * -EAGAIN if the vCPU waits on such a page, or -EIO if it failed. */
static int wait_idle_locked(struct machine *vm, struct kvm_backend *k)
{
	while (k->granted) {
		if (!k->postcopy) {
			pthread_cond_wait(&k->idle, &k->lock);
			continue;
		}
		pthread_mutex_unlock(&k->lock);
		bool stalled = serve_faults(vm, k, k->last_ns);
		pthread_mutex_lock(&k->lock);
		if (stalled && k->granted)
			return -EAGAIN;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 200000; /* the next look at the faults */
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&k->idle, &k->lock, &until);
	}
	return k->failed ? -EIO : 0;
}

/* Waits until the vCPU is out of the guest; with stop, lowers its budget first, so the guest
 * leaves after the step it is taking. Returns as wait_idle_locked does. */
static int vcpu_wait(struct machine *vm, struct kvm_backend *k, bool stop)
{
	pthread_mutex_lock(&k->lock);
	if (stop && k->granted) {
		mailbox(vm)->budget = 0;
		machine_dirty(vm, k->guest_page);
	}
	int ret = wait_idle_locked(vm, k);
	pthread_mutex_unlock(&k->lock);
	/* A lowered budget says nothing of the guest: it is its step counter again, as when a
	 * grant runs out, so two VMs at one step hold the same page. */
	if (stop && ret != -EAGAIN && !machine_page_absent(vm, k->guest_page) &&
	    mailbox(vm)->budget != mailbox(vm)->step) {
		mailbox(vm)->budget = mailbox(vm)->step;
		machine_dirty(vm, k->guest_page);
	}
	return ret;
}

static void kvm_close(const struct machine *vm, struct kvm_backend *k)
{
	if (k->thread_started) {
		pthread_mutex_lock(&k->lock);
		k->quit = true;
		pthread_cond_signal(&k->wake);
		pthread_mutex_unlock(&k->lock);
		pthread_join(k->thread, NULL);
	}
	pthread_cond_destroy(&k->idle);
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->lock);
	if (k->run != NULL)
		munmap(k->run, k->run_size);
	if (k->vcpu_fd >= 0)
		close(k->vcpu_fd);
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	if (k->uffd >= 0)
		close(k->uffd);
	if (k->view != NULL && k->view != vm->memory)
		munmap(k->view, vm->nb_pages * VM_PAGE_SIZE);
	free(k->log);
	free(k);
}

static void kvm_fini(struct machine *vm)
{
	struct kvm_backend *k = vm->backend;

	/* A vCPU in a fault for a page that will not come now goes on, to leave. */
	kvm_remote(vm, MACHINE_REMOTE_END, 0);
	if (k->thread_started)
		vcpu_wait(vm, k, true);
	kvm_close(vm, k);
	vm->backend = NULL;
}

static int kvm_init(struct machine *vm, const void *config)
{
	const struct vm_kvm_config *c = config;
	struct kvm_backend *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return -ENOMEM;
	k->kvm_fd = k->vm_fd = k->vcpu_fd = k->uffd = -1;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->wake, NULL);
	pthread_cond_init(&k->idle, NULL);
	k->workload = c->workload;
	k->guest_page = c->guest_page;
	k->no_dirty_log = c->no_dirty_log;
	if (k->workload.working_set_pages == 0 || k->workload.working_set_pages > c->guest_page)
		k->workload.working_set_pages = c->guest_page;
	if (k->workload.max_steps_per_run == 0)
		k->workload.max_steps_per_run = VM_KVM_DEFAULT_STEPS_PER_RUN;
	if (c->guest_page == 0 || c->guest_page + vm_kvm_guest_pages(vm->nb_pages) > vm->nb_pages ||
	    vm->nb_pages * VM_PAGE_SIZE > (uint64_t)VM_KVM_MAX_MEMORY_MB << 20 ||
	    (unsigned int)k->workload.pattern > VM_PATTERN_SEQUENTIAL ||
	    k->workload.fill_percent > 100) {
		KVM_LOG(ERR,
		        "%s: a KVM VM needs at most %u MiB and its guest's page above the "
		        "working set",
		        vm->name, VM_KVM_MAX_MEMORY_MB);
		kvm_close(vm, k);
		return -EINVAL;
	}
	k->log = calloc(machine_bitmap_words(vm), sizeof(uint64_t));
	int ret = k->log == NULL ? -ENOMEM : open_view(vm, k);
	if (ret == 0)
		ret = kvm_open(vm, k);
	if (ret < 0) {
		kvm_close(vm, k);
		return ret;
	}
	vm->backend = k;
	vm_workload_fill(vm, &k->workload);
	/* The guest's image and its mailbox: the host writes them, so the dirty log says so. */
	uint8_t *page = machine_page(vm, k->guest_page);
	memcpy(page, vm_kvm_guest_image, vm_kvm_guest_image_size);
	*mailbox(vm) = (struct guest_mailbox){
	        .magic = GUEST_MAILBOX_MAGIC,
	        .pattern = (uint32_t)k->workload.pattern,
	        .seed = k->workload.seed,
	        .working_set_pages = k->workload.working_set_pages,
	};
	machine_dirty(vm, k->guest_page);
	write_page_tables(vm, k);
	ret = pthread_create(&k->thread, NULL, vcpu_thread, vm);
	if (ret != 0) {
		KVM_LOG(ERR, "%s: no thread for its vCPU: %s", vm->name, strerror(ret));
		kvm_close(vm, k);
		vm->backend = NULL;
		return -ret;
	}
	k->thread_started = true;
	char name[16];
	snprintf(name, sizeof(name), "vcpu-%.10s", vm->name);
	pthread_setname_np(k->thread, name);
	return 0;
}

/* What the guest wrote since the last read, from KVM's log into the machine's, where the
 * host's own writes already are: while the guest runs (so the machine's touched pages are
 * current), after exact steps, and whenever the machine's log is read. */
static void sync_dirty_log(struct machine *vm)
{
	struct kvm_backend *k = vm->backend;
	struct timespec start, end;

	if (k->no_dirty_log)
		return;
	clock_gettime(CLOCK_MONOTONIC, &start);
	/* Each slot's log lands at its pages' place in one bitmap (the hole starts on a word). */
	uint64_t first, end_page;
	for (unsigned int slot = 0; slot < 2 && slot_pages(vm, slot, &first, &end_page); slot++) {
		struct kvm_dirty_log log = {.slot = slot, .dirty_bitmap = k->log + first / 64};
		if (ioctl(k->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			KVM_LOG(ERR, "%s: the dirty log cannot be read: %s", vm->name,
			        strerror(errno));
			return;
		}
		struct kvm_clear_dirty_log clear = {.slot = slot,
		                                    .first_page = 0,
		                                    .num_pages = (uint32_t)(end_page - first),
		                                    .dirty_bitmap = k->log + first / 64};
		if (k->manual_protect && ioctl(k->vm_fd, KVM_CLEAR_DIRTY_LOG, &clear) < 0)
			KVM_LOG(ERR, "%s: the dirty log cannot be cleared: %s", vm->name,
			        strerror(errno));
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	k->log_stats.reads++;
	k->log_stats.read_ns += (uint64_t)((end.tv_sec - start.tv_sec) * 1000000000ll +
	                                   (end.tv_nsec - start.tv_nsec));
	for (uint64_t w = 0; w < machine_bitmap_words(vm); w++) {
		uint64_t bits = k->log[w];
		if (bits == 0)
			continue;
		vm->dirty[w] |= bits;
		vm->stats.pages_touched += (uint64_t)__builtin_popcountll(bits & ~vm->touched[w]);
		vm->touched[w] |= bits;
	}
}

/* The steps the guest took since last counted, as page writes. */
static uint64_t count_steps(struct machine *vm, struct kvm_backend *k)
{
	/* The counter's word is aligned in the page (the mailbox is packed for its layout). */
	const uint64_t *word =
	        (const uint64_t *)(const void *)((const uint8_t *)mailbox(vm) +
	                                         offsetof(struct guest_mailbox, step));
	if (machine_page_absent(vm, k->guest_page))
		return 0; /* post-copy: the counter's page is not here yet */
	uint64_t step = __atomic_load_n(word, __ATOMIC_ACQUIRE);
	uint64_t taken = step - k->counted;

	k->counted = step;
	vm->stats.pages_written += taken;
	return taken;
}

/* Once a millisecond at most while the guest runs: its writes into the machine's log, so the
 * touched pages and the dirty rate the engine reads are current. */
#define KVM_SYNC_NS 1000000ull

static uint64_t kvm_run_op(struct machine *vm, uint64_t now_ns)
{
	struct kvm_backend *k = vm->backend;

	k->last_ns = now_ns;
	serve_faults(vm, k, now_ns);
	/* Post-copy: the host reads and writes the guest's mailbox, so until its page is here the
	 * vCPU is granted nothing (the host's access stalls, as the vCPU's would). */
	if (!machine_access(vm, k->guest_page, now_ns))
		return 0;
	uint64_t taken = count_steps(vm, k);
	if (taken != 0 && now_ns - k->last_sync_ns >= KVM_SYNC_NS) {
		k->last_sync_ns = now_ns;
		sync_dirty_log(vm);
	}
	if (!vcpu_busy(k)) {
		uint64_t steps = vm_pacing_steps(&k->pacing, vm, &k->workload, now_ns);
		if (steps != 0)
			grant(vm, k, steps);
	}
	return taken;
}

static void kvm_pause(struct machine *vm)
{
	vcpu_wait(vm, vm->backend, true);
	count_steps(vm, vm->backend);
}

int vm_kvm_steps(struct machine *vm, uint64_t n)
{
	struct kvm_backend *k = vm->backend;
	if (machine_page_absent(vm, k->guest_page))
		return -EAGAIN; /* post-copy: its mailbox is not here yet */
	int ret = vcpu_wait(vm, k, false);

	/* Nobody lowers this grant's budget: the guest runs all of it. */
	if (ret == 0 && n != 0)
		ret = grant(vm, k, n) ? vcpu_wait(vm, k, false) : -EIO;
	count_steps(vm, k);
	sync_dirty_log(vm);
	return ret;
}

uint64_t vm_kvm_step(const struct machine *vm)
{
	return mailbox(vm)->step;
}

static const struct vm_workload *kvm_workload(const struct machine *vm)
{
	return &((const struct kvm_backend *)vm->backend)->workload;
}

uint64_t vm_kvm_exits(const struct machine *vm)
{
	return __atomic_load_n(&((const struct kvm_backend *)vm->backend)->exits, __ATOMIC_RELAXED);
}

struct vm_kvm_log_stats vm_kvm_log_stats(const struct machine *vm)
{
	return ((const struct kvm_backend *)vm->backend)->log_stats;
}

static size_t kvm_save_state(const struct machine *vm, void *buf)
{
	struct kvm_backend *k = vm->backend;

	/* A paused VM's vCPU is out of the guest already; a running one's is read between two
	 * grants. */
	if (k->postcopy) {
		KVM_LOG(ERR, "%s: its memory is still arriving (post-copy)", vm->name);
		return 0;
	}
	pthread_mutex_lock(&k->lock);
	while (k->granted)
		pthread_cond_wait(&k->idle, &k->lock);
	pthread_mutex_unlock(&k->lock);
	const struct guest_mailbox *box = mailbox(vm);
	struct vm_kvm_state st = {
	        .magic = VM_KVM_STATE_MAGIC,
	        .version = VM_KVM_STATE_VERSION,
	        .size = sizeof(st),
	        .guest_page = k->guest_page,
	        .rate = k->workload.rate,
	        .max_steps_per_run = k->workload.max_steps_per_run,
	        .flags = k->workload.idle ? VM_SYNTHETIC_IDLE : 0,
	        .pattern = box->pattern,
	        .seed = box->seed,
	        .working_set_pages = box->working_set_pages,
	        .step = box->step,
	};
	/* KVM's structures read aligned, then placed in the packed state. */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs = {0};
	uint64_t msr_words[MSR_WORDS] = {0};
	struct kvm_msrs *msrs = (struct kvm_msrs *)msr_words;
	msrs->nmsrs = VM_KVM_MSRS;
	for (unsigned int i = 0; i < VM_KVM_MSRS; i++)
		msrs->entries[i].index = kvm_msr_list[i];
	if (ioctl(k->vcpu_fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(k->vcpu_fd, KVM_GET_SREGS, &sregs) < 0 ||
	    ioctl(k->vcpu_fd, KVM_GET_XSAVE, &xsave) < 0 ||
	    (k->has_xcrs && ioctl(k->vcpu_fd, KVM_GET_XCRS, &xcrs) < 0) ||
	    ioctl(k->vcpu_fd, KVM_GET_MSRS, msrs) != VM_KVM_MSRS) {
		KVM_LOG(ERR, "%s: the vCPU state cannot be read: %s", vm->name, strerror(errno));
		return 0;
	}
	uint64_t in_use;
	memcpy(&in_use, (const uint8_t *)xsave.region + 512, sizeof(in_use));
	if (in_use & ~XSTATE_LEGACY) {
		KVM_LOG(ERR,
		        "%s: its vCPU uses state past SSE (XSTATE_BV %#lx), which is not carried",
		        vm->name, (unsigned long)in_use);
		return 0;
	}
	for (unsigned int i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
		if (xcrs.xcrs[i].xcr == 0)
			st.xcr0 = xcrs.xcrs[i].value;
	for (unsigned int i = 0; i < VM_KVM_MSRS; i++)
		st.msrs[i] = (struct vm_kvm_msr){.index = msrs->entries[i].index,
		                                 .value = msrs->entries[i].data};
	memcpy(buf, &st, sizeof(st));
	memcpy((uint8_t *)buf + offsetof(struct vm_kvm_state, regs), &regs, sizeof(regs));
	memcpy((uint8_t *)buf + offsetof(struct vm_kvm_state, sregs), &sregs, sizeof(sregs));
	/* The legacy region holds x87 and SSE whether or not XSTATE_BV marks them in use (KVM
	 * writes their initial values where it does not), and whether it does depends on when the
	 * host last saved the FPU, not on the guest: both marked, two equal vCPUs save equal
	 * states. */
	in_use |= XSTATE_LEGACY;
	memcpy((uint8_t *)xsave.region + 512, &in_use, sizeof(in_use));
	memcpy((uint8_t *)buf + offsetof(struct vm_kvm_state, xsave), xsave.region,
	       VM_KVM_XSAVE_BYTES);
	return sizeof(st);
}

static int kvm_load_state(struct machine *vm, const void *buf, size_t len)
{
	struct kvm_backend *k = vm->backend;
	struct vm_kvm_state st;

	if (len != sizeof(st))
		return -EINVAL;
	if (vcpu_wait(vm, k, true) < 0)
		KVM_LOG(INFO, "%s: a vCPU that had failed takes a new state", vm->name);
	memcpy(&st, buf, sizeof(st));
	if (st.magic != VM_KVM_STATE_MAGIC || st.version != VM_KVM_STATE_VERSION ||
	    st.size != sizeof(st) || st.guest_page != k->guest_page || st.max_steps_per_run == 0 ||
	    (st.flags & ~VM_SYNTHETIC_IDLE) != 0) {
		KVM_LOG(ERR, "%s: not a KVM vCPU state of version %u for this layout", vm->name,
		        VM_KVM_STATE_VERSION);
		return -EINVAL;
	}
	/* The workload's parameters are in the guest's memory, and in the state: they agree where
	 * the memory came first (in post-copy the mailbox's page may come later). */
	const struct guest_mailbox *box = mailbox(vm);
	if (st.pattern > VM_PATTERN_SEQUENTIAL || st.working_set_pages == 0 ||
	    st.working_set_pages > k->guest_page) {
		KVM_LOG(ERR, "%s: the state names no workload the guest can run", vm->name);
		return -EINVAL;
	}
	if (!machine_page_absent(vm, k->guest_page) &&
	    (box->magic != GUEST_MAILBOX_MAGIC || box->pattern != st.pattern ||
	     box->seed != st.seed || box->working_set_pages != st.working_set_pages ||
	     box->step != st.step)) {
		KVM_LOG(ERR, "%s: the guest's memory and the vCPU state are not of one VM",
		        vm->name);
		return -EINVAL;
	}
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave = {0};
	memcpy(&regs, (const uint8_t *)buf + offsetof(struct vm_kvm_state, regs), sizeof(regs));
	memcpy(&sregs, (const uint8_t *)buf + offsetof(struct vm_kvm_state, sregs), sizeof(sregs));
	memcpy(xsave.region, (const uint8_t *)buf + offsetof(struct vm_kvm_state, xsave),
	       VM_KVM_XSAVE_BYTES);
	uint64_t in_use;
	memcpy(&in_use, (const uint8_t *)xsave.region + 512, sizeof(in_use));
	uint64_t msr_words[MSR_WORDS] = {0};
	struct kvm_msrs *msrs = (struct kvm_msrs *)msr_words;
	bool msrs_known = true;
	msrs->nmsrs = VM_KVM_MSRS;
	for (unsigned int i = 0; i < VM_KVM_MSRS; i++) {
		msrs->entries[i].index = st.msrs[i].index;
		msrs->entries[i].data = st.msrs[i].value;
		msrs_known = msrs_known && st.msrs[i].index == kvm_msr_list[i];
	}
	if ((in_use & ~XSTATE_LEGACY) || !msrs_known || (st.xcr0 != 0 && !k->has_xcrs)) {
		KVM_LOG(ERR, "%s: the vCPU state holds registers this backend does not carry",
		        vm->name);
		return -EINVAL;
	}
	struct kvm_xcrs xcrs = {.nr_xcrs = 1, .xcrs = {{.xcr = 0, .value = st.xcr0}}};
	/* KVM checks the registers themselves: a state it refuses is refused here. */
	if (ioctl(k->vcpu_fd, KVM_SET_SREGS, &sregs) < 0 ||
	    ioctl(k->vcpu_fd, KVM_SET_REGS, &regs) < 0 ||
	    (st.xcr0 != 0 && ioctl(k->vcpu_fd, KVM_SET_XCRS, &xcrs) < 0) ||
	    ioctl(k->vcpu_fd, KVM_SET_XSAVE, &xsave) < 0 ||
	    ioctl(k->vcpu_fd, KVM_SET_MSRS, msrs) != VM_KVM_MSRS) {
		KVM_LOG(ERR, "%s: KVM refused the vCPU state: %s", vm->name, strerror(errno));
		return -EINVAL;
	}
	k->workload.pattern = (enum vm_pattern)st.pattern;
	k->workload.seed = st.seed;
	k->workload.working_set_pages = st.working_set_pages;
	k->workload.rate = st.rate;
	k->workload.max_steps_per_run = st.max_steps_per_run;
	k->workload.idle = (st.flags & VM_SYNTHETIC_IDLE) != 0;
	k->pacing = (struct vm_pacing){0};
	k->counted = st.step;
	pthread_mutex_lock(&k->lock);
	k->failed = false;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

const struct machine_ops vm_kvm_ops = {
        .name = "kvm",
        .init = kvm_init,
        .fini = kvm_fini,
        .run = kvm_run_op,
        .save_state = kvm_save_state,
        .load_state = kvm_load_state,
        .step = vm_kvm_step,
        .steps = vm_kvm_steps,
        .workload = kvm_workload,
        .sync_dirty_log = sync_dirty_log,
        .pause = kvm_pause,
        .remote = kvm_remote,
        .shared_memory = true,
};
