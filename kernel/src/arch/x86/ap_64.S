/* x86_64 secondary CPU start (assembled by smp.rs; the names in braces are its const
 * operands).
 *
 * The real-mode trampoline (ap_real.S) loads a GDT laid out like boot_gdt
 * plus a 32-bit code segment, and enters protected mode at x86_ap_start32,
 * which is ordinary kernel text: PAE, the boot page tables (boot_pml4),
 * EFER.LME, paging, then long mode at x86_ap_start64. There the CPU switches to the
 * kernel's GDT (boot_gdt_ptr), points IA32_GS_BASE at its PerCpu block and
 * takes its stack from x86_ap_boot (smp.rs's ApBoot: cpu, stack_top, gs),
 * then calls x86_ap_entry(cpu). */

    /* 0x08: 64-bit code and 0x10: data as in boot_gdt, 0x18: 32-bit code
     * for the way up. */
    AP_TRAMPOLINE 0x18, 0x00af9a000000ffff, 0x00cf92000000ffff, 0x00cf9a000000ffff
    .code64

    .text
    .code32
    .balign 16
    .type x86_ap_start32, @function
x86_ap_start32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $(1 << 5), %eax          /* PAE */
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx       /* EFER */
    rdmsr
    or $(1 << 8), %eax          /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax        /* PG | PE */
    mov %eax, %cr0
    ljmp $0x08, $x86_ap_start64
    .size x86_ap_start32, . - x86_ap_start32

    .code64
    .type x86_ap_start64, @function
x86_ap_start64:
    mov (x86_ap_boot + {ap_stack})(%rip), %rsp
    lgdt boot_gdt_ptr(%rip)
    pushq $0x08
    lea 1f(%rip), %rax
    push %rax
    lretq
1:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $0xC0000101, %ecx       /* IA32_GS_BASE */
    mov (x86_ap_boot + {ap_gs})(%rip), %rax
    mov %rax, %rdx
    shr $32, %rdx
    wrmsr
    xor %ebp, %ebp              /* terminates frame-pointer walks */
    mov (x86_ap_boot + {ap_cpu})(%rip), %rdi
    call x86_ap_entry
2:  cli
    hlt
    jmp 2b
    .size x86_ap_start64, . - x86_ap_start64
