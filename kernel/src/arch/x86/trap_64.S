/* x86_64 exception entries for the tracer (assembled by trap.rs).
 *
 * x86_bp_entry (#BP, vector 3, an interrupt gate: IF cleared). The CPU
 * pushed rip (after the int3), cs, rflags, rsp, ss. We first copy those five
 * words 40 bytes lower and use the copy for iretq: the original slots become
 * a gap, so the #BP helper may emulate a `call` by storing a return address
 * just below the interrupted rsp without overwriting the frame we return
 * through. Then the caller-saved registers are saved (the layout is the
 * Rust struct BpFrame64 in trap.rs: pad, r11..rax, then the copied frame),
 * x86_bp_handler(&mut BpFrame64) runs, and iretq resumes wherever it says.
 * Meanwhile the CPU's nesting depth (%gs:{trap_depth}, its PerCpu block)
 * is raised, so the tracer sees the Irq context on this CPU. */

/* The nine registers the System V ABI lets a called function clobber,
 * saved (72 bytes) before calling Rust from an entry stub and restored
 * after, in the layout x86_bp_entry's BpFrame64 expects (rax highest). */
.macro SAVE_CALLER_SAVED
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
.endm

.macro RESTORE_CALLER_SAVED
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
.endm

    .text
    .balign 16
    .globl x86_bp_entry
    .type x86_bp_entry, @function
x86_bp_entry:
    pushq 32(%rsp)          /* ss */
    pushq 32(%rsp)          /* rsp */
    pushq 32(%rsp)          /* rflags */
    pushq 32(%rsp)          /* cs */
    pushq 32(%rsp)          /* rip */
    SAVE_CALLER_SAVED
    cld
    TRAP_ENTER
    sub $8, %rsp            /* 16-byte alignment for the call */
    mov %rsp, %rdi
    call x86_bp_handler
    add $8, %rsp
    TRAP_EXIT
    RESTORE_CALLER_SAVED
    iretq
    .size x86_bp_entry, . - x86_bp_entry

/* Local APIC interrupts (smp.rs): the CPU pushed ss, rsp, rflags, cs, rip
 * on a 16-byte aligned stack; saving the nine caller-saved registers of
 * the System V ABI keeps it aligned for the call. The handler runs with
 * the CPU's nesting depth raised (hardirq context for the tracer) and
 * sends the EOI itself. */
.macro X86_IRQ name, handler
    .balign 16
    .globl \name
    .type \name, @function
\name:
    SAVE_CALLER_SAVED
    cld
    TRAP_ENTER
    call \handler
    TRAP_EXIT
    RESTORE_CALLER_SAVED
    iretq
    .size \name, . - \name
.endm

    X86_IRQ x86_timer_entry, x86_timer_handler
    X86_IRQ x86_sync_entry, x86_sync_handler
    X86_IRQ x86_wake_entry, x86_wake_handler

/* The local APIC's spurious vector: no EOI, nothing to do. */
    .balign 16
    .globl x86_spurious_entry
    .type x86_spurious_entry, @function
x86_spurious_entry:
    iretq
    .size x86_spurious_entry, . - x86_spurious_entry

/* Every other exception vector 0..31: report the vector and stop. One
 * stub per vector, each at x86_fatal_entries + 32 * vector (trap.rs
 * relies on the 32-byte stride). */
    .balign 32
    .globl x86_fatal_entries
x86_fatal_entries:
    .balign 32
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .balign 32
    mov $\v, %edi
    mov %rsp, %rsi
    and $-16, %rsp
    call x86_fatal_exception
    .endr
    .size x86_fatal_entries, . - x86_fatal_entries
