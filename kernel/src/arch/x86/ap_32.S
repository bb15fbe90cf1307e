/* i686 secondary CPU start (assembled by smp.rs; the names in braces are its const
 * operands).
 *
 * x86_ap_trampoline .. x86_ap_trampoline_end is copied to {tramp} (below
 * 1 MiB) and entered there by the STARTUP IPI in real mode at
 * {tramp}/16:0000. It loads its own flat GDT (the kernel's layout: code
 * 0x08, data 0x10) and enters protected mode at x86_ap_start32, which is
 * ordinary kernel text. There the CPU loads the kernel's GDT (x86_gdt_ptr,
 * with the per-CPU segments), its own %gs selector and stack from
 * x86_ap_boot (smp.rs's ApBoot: cpu, stack_top, gs) before running any
 * Rust code (the mcount trampolines read %gs), then calls
 * x86_ap_entry(cpu). Paging stays off, as on the boot CPU. */

    .section .rodata.x86_ap_trampoline, "a"
    .balign 16
    .code16
    .globl x86_ap_trampoline
x86_ap_trampoline:
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    lgdtl {tramp} + (.Lap_gdt_ptr - x86_ap_trampoline)
    mov %cr0, %eax
    or $1, %eax                 /* PE */
    mov %eax, %cr0
    ljmpl $0x08, $x86_ap_start32
    .balign 8
.Lap_gdt:
    .quad 0                     /* null */
    .quad 0x00cf9a000000ffff    /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
.Lap_gdt_end:
.Lap_gdt_ptr:
    .word .Lap_gdt_end - .Lap_gdt - 1
    .long {tramp} + (.Lap_gdt - x86_ap_trampoline)
    .globl x86_ap_trampoline_end
x86_ap_trampoline_end:
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
