/* ferry's KVM guest: the synthetic workload's steps run by a real vCPU, in 64-bit long mode over
 * an identity map, interrupts off, never an IRET: a pure function of (seed, step). */
#include "vm/guest/guest.h"

/* The entry, at the image's first byte (the host set the stack): the loop, for ever.
 *
 * guest_leave says on the port that the loop stopped, its registers all zero but the stack's,
 * its own port's and the callee-saved ones on the stack: however the loop stopped (the budget
 * reached, or lowered by the host to stop the vCPU), the vCPU's state at the exit is then a
 * function of the step counter alone, so a VM and its unmigrated twin match at the same step. */
__asm__(".section .text.start, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "\tcall guest_main\n"
        "1:\thlt\n"
        "\tjmp 1b\n"
        ".text\n"
        ".globl guest_leave\n"
        "guest_leave:\n"
        "\tpush %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n"
        "\txor %ecx, %ecx\n\txor %esi, %esi\n\txor %edi, %edi\n\txor %r8d, %r8d\n"
        "\txor %r9d, %r9d\n\txor %r10d, %r10d\n\txor %r11d, %r11d\n\txor %ebx, %ebx\n"
        "\txor %ebp, %ebp\n\txor %r12d, %r12d\n\txor %r13d, %r13d\n\txor %r14d, %r14d\n"
        "\txor %r15d, %r15d\n\tmov $" GUEST_PORT_DONE_TEXT ", %edx\n\txor %eax, %eax\n"
        "\toutb %al, %dx\n"
        "\tpop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n"
        "\tret\n");

void guest_main(void);
void guest_leave(void);

/* At GUEST_MAILBOX from the image's start: the linker script places it, and the code reaches it
 * relative to itself, so the image runs wherever the host put it. */
extern volatile struct guest_mailbox guest_mailbox __attribute__((visibility("hidden")));

/* splitmix64, as the synthetic backend's. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* One step: the page, the word and the value the synthetic backend's step_once picks, written
 * where guest-physical memory is mapped as it is. */
static void step_once(const volatile struct guest_mailbox *mailbox, uint64_t step)
{
	uint64_t r = mix(mailbox->seed ^ mix(step));
	uint64_t ws = mailbox->working_set_pages, page;

	switch (mailbox->pattern) {
	case 2: /* sequential */
		page = step % ws;
		break;
	case 1: { /* hot and cold */
		uint64_t hot = ws / 10 != 0 ? ws / 10 : 1;
		if (r % 10 < 9 || hot == ws)
			page = (r >> 8) % hot;
		else
			page = hot + (r >> 8) % (ws - hot);
		break;
	}
	default: /* uniform */
		page = (r >> 8) % ws;
		break;
	}
	uint64_t offset = mix(r) & (GUEST_PAGE_SIZE - 8);
	*(volatile uint64_t *)(uintptr_t)(page * GUEST_PAGE_SIZE + offset) = r ^ step;
}

void guest_main(void)
{
	volatile struct guest_mailbox *mailbox = &guest_mailbox;

	for (;;) {
		uint64_t step = mailbox->step;
		if (mailbox->magic == GUEST_MAILBOX_MAGIC && mailbox->working_set_pages != 0)
			for (; step < mailbox->budget; step++) {
				step_once(mailbox, step);
				mailbox->step = step + 1;
			}
		guest_leave();
	}
}
