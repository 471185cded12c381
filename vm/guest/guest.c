/* ferry's KVM guest: the synthetic workload's steps run by a real vCPU, in 64-bit long mode over
 * an identity map, interrupts off, never an IRET: a pure function of (seed, step). */
#include "vm/guest/guest.h"

/* The entry, at the image's first byte (the host set the stack): the loop, for ever. */
__asm__(".section .text.start, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "\tcall guest_main\n"
        "1:\thlt\n"
        "\tjmp 1b\n"
        ".previous\n");

void guest_main(void);

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

static void leave(void)
{
	__asm__ volatile("outb %%al, %w0" : : "d"((uint16_t)GUEST_PORT_DONE), "a"(0) : "memory");
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
		leave();
	}
}
