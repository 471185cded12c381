/* A tiny guest for the QEMU reference migration: a multiboot kernel (QEMU's -kernel loads it,
 * after SeaBIOS, in 32-bit flat protected mode) that writes every 4 KiB page of RAM from the end
 * of the kernel on (so none is a zero page QEMU could skip), says "filled" on QEMU's debug console
 * (port 0xe9), and halts with interrupts off, forever. It never IRETs and sets up nothing the boot
 * loader did not: this project's KVM host cannot IRET in protected mode. */
	.set MULTIBOOT_MAGIC, 0x1badb002
	.set MULTIBOOT_FLAGS, 0x2          /* bit 1: the memory fields of the boot information */
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
	/* %ebx: the boot information; mem_upper (offset 8, in KiB) is the RAM above 1 MiB. */
	movl 8(%ebx), %ecx
	shll $10, %ecx
	addl $0x100000, %ecx           /* end of RAM */
	movl $_end + 0xfff, %edi
	andl $~0xfff, %edi
1:	movl %edi, (%edi)
	movl $0x5a5a5a5a, 8(%edi)
	addl $0x1000, %edi
	cmpl %ecx, %edi
	jb 1b
	movl $said, %esi
	movw $DEBUGCON, %dx
3:	lodsb
	testb %al, %al
	jz 2f
	outb %al, %dx
	jmp 3b
2:	hlt
	jmp 2b

	.section .rodata
said:
	.asciz "filled\n"
