/* The KVM backend: the synthetic workload's steps run by ferry's own guest on a KVM vCPU of its
 * own thread, its writes tracked by KVM's dirty log, its vCPU state read and restored through
 * KVM. */
#ifndef FERRY_VM_VM_KVM_H
#define FERRY_VM_VM_KVM_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vm/machine.h"
#include "vm/vm_synthetic.h"

/* Guest memory is linear for the guest (page p at virtual address p * 4 KiB) and physical as a
 * PC's: below 3 GiB as it is, the rest from 4 GiB on, past the hole where KVM's TSS and the
 * devices of a real machine live; two memory slots, two dirty logs, one machine log. */
#define VM_KVM_HOLE_PAGE     (3ull << 18) /* 3 GiB in pages: the hole's start */
#define VM_KVM_HOLE_PAGES    (1ull << 18) /* 1 GiB */
#define VM_KVM_MAX_MEMORY_MB VM_MAX_MEMORY_MB

/* Steps the worker grants the vCPU thread at a time unless the workload says (a pause stops
 * the guest after the step it is taking, whatever the grant). */
#define VM_KVM_DEFAULT_STEPS_PER_RUN 256

/* The guest's own pages in a VM of nb_pages: its image (code, mailbox, stack), then its page
 * tables (a PML4, a PDPT and a directory of 2 MiB pages per GiB of the VM). */
uint64_t vm_kvm_guest_pages(uint64_t nb_pages);

/* The backend's configuration: the workload, and the first of the guest's own pages (above
 * the working set: the workload never writes them). */
struct vm_kvm_config {
	struct vm_workload workload;
	uint64_t guest_page;
	bool no_dirty_log; /* benchmarks only: the slot without KVM_MEM_LOG_DIRTY_PAGES */
};

/* What reading KVM's dirty log has cost (KVM_GET_DIRTY_LOG and KVM_CLEAR_DIRTY_LOG). */
struct vm_kvm_log_stats {
	uint64_t reads;
	uint64_t read_ns;
};

#define VM_KVM_STATE_MAGIC   0x314d564bu /* "KVM1" */
#define VM_KVM_STATE_VERSION 3

/* The XSAVE area's legacy region (x87, SSE) and its header: the components past SSE must be in
 * their initial state to be carried (the guest uses none; a VM using AVX is refused). */
#define VM_KVM_XSAVE_BYTES 576
#define VM_KVM_MSRS        8 /* the list in vm_kvm.c: SYSENTER, SYSCALL, KERNEL_GS_BASE, PAT */

/* One model-specific register: 16 bytes. */
struct vm_kvm_msr {
	uint32_t index;
	uint32_t reserved;
	uint64_t value;
} __attribute__((packed));

/* The vCPU state on the wire: little-endian (KVM's own structures as x86-64 lays them out),
 * 1,232 bytes. The workload's parameters and step counter are in the guest's memory; they
 * travel here too (as a device's registers travel with QEMU's state), so a destination that
 * resumes the VM before its mailbox's page came (post-copy) knows where the guest is. */
struct vm_kvm_state {
	uint32_t magic;   /* VM_KVM_STATE_MAGIC */
	uint16_t version; /* VM_KVM_STATE_VERSION */
	uint16_t size;    /* sizeof(struct vm_kvm_state) */
	uint64_t guest_page;
	uint64_t rate;
	uint32_t max_steps_per_run;
	uint32_t flags; /* VM_SYNTHETIC_IDLE */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t xsave[VM_KVM_XSAVE_BYTES];
	uint64_t xcr0; /* 0: the host has no XSAVE, the legacy FPU area alone travels */
	struct vm_kvm_msr msrs[VM_KVM_MSRS];
	uint32_t pattern; /* the mailbox as the VM paused: the workload, and the step counter */
	uint32_t reserved;
	uint64_t seed;
	uint64_t working_set_pages;
	uint64_t step;
} __attribute__((packed));

_Static_assert(sizeof(struct vm_kvm_state) == 1232, "the KVM vCPU state is 1,232 bytes");
_Static_assert(sizeof(struct vm_kvm_state) <= VM_STATE_MAX, "it fits any backend's blob");

/* Why a KVM VM is refused post-copy, after its name. */
#define VM_KVM_PRECOPY_ONLY                                                                        \
	"runs on KVM on hugepages or without userfaultfd's minor faults on shared memory: it "     \
	"migrates pre-copy only (post-copy serves its vCPU's faults through userfaultfd, page by " \
	"page)"

/* The backend (config: struct vm_kvm_config). Its init fails with the reason logged when
 * /dev/kvm cannot be used. */
extern const struct machine_ops vm_kvm_ops;

/* Runs exactly n steps, whatever the clock says (tests compare runs step for step). Returns 0
 * or a negative errno if the vCPU failed. */
int vm_kvm_steps(struct machine *vm, uint64_t n);

/* The guest's step counter, as its memory holds it. */
uint64_t vm_kvm_step(const struct machine *vm);

/* The vCPU's exits so far, for tests and the VM's counters. */
uint64_t vm_kvm_exits(const struct machine *vm);

/* True if the VM can run with pages elsewhere (post-copy): its memory is a memfd its vCPU sees
 * through a view of its own, whose faults a userfaultfd with minor faults reports. */
bool vm_kvm_postcopy_capable(const struct machine *vm);

/* Post-copy faults the vCPU took through userfaultfd, and those that found their page here. */
struct vm_kvm_fault_stats {
	uint64_t faults;   /* reported by userfaultfd */
	uint64_t resolved; /* mapped for the vCPU without waiting (the page was here) */
};
struct vm_kvm_fault_stats vm_kvm_fault_stats(const struct machine *vm);

/* The dirty log's reads so far and their time. */
struct vm_kvm_log_stats vm_kvm_log_stats(const struct machine *vm);

#endif
