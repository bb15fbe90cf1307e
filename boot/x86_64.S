/* x86_64 entry through PVH: QEMU reads the XEN_ELFNOTE_PHYS32_ENTRY note,
 * loads the ELF and jumps to _start32 in 32-bit protected mode, paging off,
 * with %ebx = physical address of the hvm_start_info structure.
 *
 * We identity-map the first 4 GiB with 2 MiB pages (read/write/execute: the
 * tracer patches text in place; the top GiB, the MMIO hole with the local
 * APIC at 0xFEE00000, uncached), enable long mode and call
 * x86_64_entry(start_info) on the boot stack. The secondary CPUs reuse
 * boot_pml4 and boot_gdt_ptr (kernel/src/arch/x86/ap_64.S). */

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                     /* namesz: "Xen\0" */
    .long 4                     /* descsz */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start32
    .balign 4

    .section .text.boot, "ax"
    .code32
    .globl _start32
    .type _start32, @function
_start32:
    cli
    cld
    mov %ebx, %esi              /* keep start_info: rep stos uses edi */

    /* Zero .bss (page tables and stack live there). */
    mov $__bss_start, %edi
    mov $__bss_stop, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    mov $boot_stack_top, %esp

    /* PML4[0] -> PDPT, PDPT[0..4] -> the four PDs, PD entry i -> i * 2 MiB:
     * present|rw|huge, plus PCD|PWT (uncached) for the top GiB. */
    mov $boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $0x3, %eax
    mov $boot_pdpt, %edi
    mov $4, %ecx
1:  mov %eax, (%edi)
    add $4096, %eax
    add $8, %edi
    loop 1b
    mov $boot_pd, %edi
    mov $0x83, %eax
    mov $(3 * 512), %ecx
1:  mov %eax, (%edi)
    add $0x200000, %eax
    add $8, %edi
    loop 1b
    or $0x18, %eax              /* PCD | PWT */
    mov $512, %ecx
1:  mov %eax, (%edi)
    add $0x200000, %eax
    add $8, %edi
    loop 1b

    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax          /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx       /* EFER */
    rdmsr
    or $(1 << 8), %eax          /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax        /* PG | PE */
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $start64
    .size _start32, . - _start32

    .code64
    .type start64, @function
start64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    xor %ebp, %ebp              /* terminates frame-pointer walks */
    mov %esi, %edi              /* arg0: start_info physical address */
    call x86_64_entry
2:  hlt
    jmp 2b
    .size start64, . - start64

    .section .rodata
    .balign 8
boot_gdt:
    .quad 0                     /* null */
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
boot_gdt_end:
    .globl boot_gdt_ptr
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .bss
    .balign 4096
    .globl boot_pml4
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4 * 4096
    .balign 16
    /* Global: the panic backtrace (kernel/src/arch/x86/common.rs) and
     * kernel/src/arch/x86/callconv.rs bound their stack reads with these
     * (the boot CPU runs on this stack, exceptions included). */
    .globl boot_stack, boot_stack_top
boot_stack: .skip 64 * 1024
boot_stack_top:
