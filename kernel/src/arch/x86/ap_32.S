/* i686 secondary CPU start (assembled by smp.rs; the names in braces are its const
 * operands).
 *
 * The real-mode trampoline (ap_real.S) loads a flat GDT in the kernel's
 * layout (code 0x08, data 0x10) and enters protected mode at
 * x86_ap_start32, which is ordinary kernel text. There the CPU loads the
 * kernel's GDT (x86_gdt_ptr, with the per-CPU segments), its own %gs
 * selector and stack from
 * x86_ap_boot (smp.rs's ApBoot: cpu, stack_top, gs) before running any
 * Rust code (the mcount trampolines read %gs), then calls
 * x86_ap_entry(cpu). Paging stays off, as on the boot CPU. */

    /* 0x08: 32-bit code, 0x10: data (the kernel's layout). */
    AP_TRAMPOLINE 0x08, 0x00cf9a000000ffff, 0x00cf92000000ffff
    .code32

    .text
    .balign 16
    .type x86_ap_start32, @function
x86_ap_start32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    lgdt x86_gdt_ptr
    ljmp $0x08, $1f
1:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov (x86_ap_boot + {ap_gs}), %eax
    mov %ax, %gs
    mov (x86_ap_boot + {ap_stack}), %esp
    xor %ebp, %ebp              /* terminates frame-pointer walks */
    sub $12, %esp               /* 16-byte aligned at the call */
    pushl (x86_ap_boot + {ap_cpu})
    call x86_ap_entry
2:  cli
    hlt
    jmp 2b
    .size x86_ap_start32, . - x86_ap_start32
