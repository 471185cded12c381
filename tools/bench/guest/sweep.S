/* A tiny guest for the QEMU post-copy reference: it writes every 4 KiB page of its first
 * SWEEP_BYTES (the rest of its RAM stays zero, as in ferry's sweep VM, whose workload fills its
 * working set only) and says "filled" on QEMU's debug console; then it sweeps those pages
 * for ever, one write a page, paced by the TSC at CYCLES cycles a write (the script assembles it
 * with --defsym CYCLES=... from the host's TSC rate: 175,000 writes/s), as ferry's hot-sweep VM
 * does. Interrupts stay off and it never IRETs (this project's KVM host cannot, in protected
 * mode). */
	.set MULTIBOOT_MAGIC, 0x1badb002
	.set MULTIBOOT_FLAGS, 0x2
	.set DEBUGCON, 0xe9

	.section .multiboot, "a"
	.balign 4
	.long MULTIBOOT_MAGIC
	.long MULTIBOOT_FLAGS
	.long -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

	.text
	.code32
	.globl _start
_start:
	cli
	cld
	movl $_end + 0xfff, %edi
	andl $~0xfff, %edi
	movl %edi, %ecx
	addl $SWEEP_BYTES, %ecx        /* end of the swept pages */
1:	movl %edi, (%edi)
	movl $0x5a5a5a5a, 8(%edi)
	addl $0x1000, %edi
	cmpl %ecx, %edi
	jb 1b
	movl $said, %esi
	movw $DEBUGCON, %dx
3:	lodsb
	testb %al, %al
	jz 4f
	outb %al, %dx
	jmp 3b
	/* The sweep: %edi the page, %ebp the sweep's end, the next write's deadline in %esi:%ebx
	 * (the TSC's high and low halves). A guest that falls behind writes at once until it has
	 * caught up, so the rate holds on average. */
4:	rdtsc
	movl %eax, %ebx
	movl %edx, %esi
5:	movl $_end + 0xfff, %edi
	andl $~0xfff, %edi
	movl %edi, %ebp
	addl $SWEEP_BYTES, %ebp
6:	rdtsc
	cmpl %esi, %edx
	jb 6b
	ja 7f
	cmpl %ebx, %eax
	jb 6b
7:	incl 16(%edi)
	addl $CYCLES, %ebx
	adcl $0, %esi
	addl $0x1000, %edi
	cmpl %ebp, %edi
	jb 6b
	jmp 5b

	/* 100 MiB unless the script says (--defsym SWEEP_BYTES=...). */
	.ifndef SWEEP_BYTES
	.set SWEEP_BYTES, 100 << 20
	.endif

	.section .rodata
said:
	.asciz "filled\n"
