/* The ABI between ferry's KVM guest and its host: where the guest's image, mailbox and stack
 * are in its page, and the port it leaves through. Included by the guest (freestanding)
 * and the host. */
#ifndef FERRY_VM_GUEST_GUEST_H
#define FERRY_VM_GUEST_GUEST_H

#include <stddef.h>
#include <stdint.h>

/* The guest's page: code and data from 0, the mailbox at GUEST_MAILBOX, the stack below
 * GUEST_STACK_TOP. Its code reaches its data relative to itself, so the image runs wherever
 * the host put it; guest-physical memory is mapped as it is, so a workload write goes to the
 * page it names. */
#define GUEST_MAILBOX   0x800u
#define GUEST_STACK_TOP 0x1000u
#define GUEST_PAGE_SIZE 4096u

/* The guest writes to this port when its step counter reached the budget: the vCPU leaves
 * KVM_RUN with KVM_EXIT_IO. */
#define GUEST_PORT_DONE      0x4f0u
#define GUEST_PORT_DONE_TEXT "0x4f0" /* the same, for the guest's assembly */

#define GUEST_MAILBOX_MAGIC 0x6d4b5646u /* "FVKm" */

/* The mailbox, in the guest's memory (it moves with it): the workload's parameters, its step
 * counter and the budget the host sets. Little-endian, 64 bytes. */
struct guest_mailbox {
	uint32_t magic; /* GUEST_MAILBOX_MAGIC: the host wrote the parameters */
	uint32_t pattern;
	uint64_t seed;
	uint64_t step;   /* the steps taken: the guest's own counter */
	uint64_t budget; /* the guest runs until step reaches it, then says so on the port */
	uint64_t working_set_pages;
	uint8_t reserved[24];
} __attribute__((packed));

_Static_assert(sizeof(struct guest_mailbox) == 64, "the guest's mailbox is 64 bytes");
_Static_assert((GUEST_MAILBOX + offsetof(struct guest_mailbox, step)) % 8 == 0,
               "the step counter is an aligned word the host reads atomically");
_Static_assert(GUEST_MAILBOX + sizeof(struct guest_mailbox) <= GUEST_STACK_TOP - 256,
               "the mailbox leaves the stack room");

/* The image, built from vm/guest/guest.c (host side only). */
extern const uint8_t vm_kvm_guest_image[];
extern const size_t vm_kvm_guest_image_size;

#endif
