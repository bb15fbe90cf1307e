/* The real-mode start of a secondary CPU, shared by ap_32.S and ap_64.S
 * (assembled before them by smp.rs; {tramp} is its const operand).
 *
 * AP_TRAMPOLINE sel, descriptors...: x86_ap_trampoline ..
 * x86_ap_trampoline_end is copied to {tramp} (below 1 MiB) and entered
 * there by the STARTUP IPI in real mode at {tramp}/16:0000. It loads its
 * own flat GDT (a null descriptor, then `descriptors`), enters protected
 * mode and jumps to x86_ap_start32 (ordinary kernel text) through the
 * 32-bit code segment `sel` of that GDT. */
.macro AP_TRAMPOLINE sel, descriptors:vararg
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
    ljmpl $\sel, $x86_ap_start32
    .balign 8
.Lap_gdt:
    .quad 0                     /* null */
    .quad \descriptors
.Lap_gdt_end:
.Lap_gdt_ptr:
    .word .Lap_gdt_end - .Lap_gdt - 1
    .long {tramp} + (.Lap_gdt - x86_ap_trampoline)
    .globl x86_ap_trampoline_end
x86_ap_trampoline_end:
.endm
