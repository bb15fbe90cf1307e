/* i686 entry through Multiboot1: QEMU finds the header in the first 8 KiB,
 * loads the ELF and jumps to _start in 32-bit protected mode, paging off,
 * with %eax = 0x2BADB002 and %ebx = the multiboot info structure. */

    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00000003   /* page-align modules, give memory info */

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text.boot, "ax"
    .globl _start
    .type _start, @function
_start:
    cli
    cld
    mov %eax, %esi
    mov %ebx, %edx

    /* Zero .bss (the stack lives there). */
    mov $__bss_start, %edi
    mov $__bss_stop, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    mov $boot_stack_top, %esp
    xor %ebp, %ebp              /* terminates frame-pointer walks */
    push %edx                   /* arg1: multiboot info */
    push %esi                   /* arg0: loader magic */
    call i686_entry
1:  hlt
    jmp 1b
    .size _start, . - _start

    .section .bss
    .balign 16
    /* Global: the panic backtrace (kernel/src/arch/x86/common.rs) and
     * kernel/src/arch/x86/callconv.rs bound their stack reads with these
     * (the boot CPU runs on this stack, exceptions included). */
    .globl boot_stack, boot_stack_top
boot_stack: .skip 64 * 1024
boot_stack_top:
