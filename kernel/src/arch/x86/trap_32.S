/* i686 exception entries for the tracer (assembled by trap.rs).
 *
 * x86_bp_entry (#BP, vector 3, an interrupt gate: IF cleared). Without a
 * privilege change the CPU pushes only eip (after the int3), cs and eflags;
 * the interrupted esp is the address just above them. We save every
 * register with pusha and two words for the #BP helper (has_push, pushed):
 * the layout is the Rust struct BpFrame32 in trap.rs. x86_bp_handler may set
 * eip and, to emulate a `call`, ask for a word to be pushed on the
 * interrupted stack. That word belongs exactly where eflags is now, so the
 * whole saved block (13 words) is first moved down by 4 bytes, then the word
 * is stored above it; iret then leaves esp pointing at it.
 *
 * Meanwhile the CPU's nesting depth (%gs:{trap_depth}, its PerCpu block) is
 * raised, so the tracer sees the Irq context on this CPU, and the CPU's
 * mcount busy flag of the ftrace crate's trampolines (ftrace_32.S; its
 * address from ftrace_mcount_busy_ptr) is saved in %edi, cleared, and
 * restored before returning, so that traced code the handler runs is
 * traced even when the exception interrupted a callback (mcount builds). */

    .text
    .balign 16
    .globl x86_bp_entry
    .type x86_bp_entry, @function
x86_bp_entry:
    pusha
    push $0                 /* pushed */
    push $0                 /* has_push */
    cld
    TRAP_ENTER
    call ftrace_mcount_busy_ptr
    mov %eax, %esi          /* callee-saved: the busy flag's address */
    mov (%esi), %edi        /* callee-saved: its value */
    movl $0, (%esi)
    mov %esp, %eax
    mov %esp, %ebx          /* callee-saved: survives the call */
    and $-16, %esp
    sub $12, %esp
    push %eax               /* arg: &mut BpFrame32 */
    call x86_bp_handler
    mov %ebx, %esp
    mov %edi, (%esi)        /* the busy flag as it was */
    TRAP_EXIT
    cmpl $0, (%esp)
    jne 1f
    add $8, %esp
    popa
    iret
1:  sub $4, %esp            /* move has_push..eflags (13 words) down by 4 */
    xor %edx, %edx
    mov $13, %ecx
2:  mov 4(%esp,%edx,4), %eax
    mov %eax, (%esp,%edx,4)
    inc %edx
    loop 2b
    mov 4(%esp), %eax       /* the pushed word, just above the moved eflags */
    mov %eax, 52(%esp)
    add $8, %esp
    popa
    iret
    .size x86_bp_entry, . - x86_bp_entry

/* Local APIC interrupts (smp.rs): the caller-saved registers of cdecl
 * (eax, ecx, edx) are saved, the nesting depth raised and the busy flag
 * saved and cleared as for #BP, and the handler called on a 16-byte
 * aligned stack; it sends the EOI itself. */
.macro X86_IRQ name, handler
    .balign 16
    .globl \name
    .type \name, @function
\name:
    push %eax
    push %ecx
    push %edx
    cld
    TRAP_ENTER
    call ftrace_mcount_busy_ptr
    push (%eax)             /* the busy flag's value */
    movl $0, (%eax)
    push %ebp
    mov %esp, %ebp
    and $-16, %esp
    call \handler
    mov %ebp, %esp
    pop %ebp
    call ftrace_mcount_busy_ptr
    pop (%eax)              /* the busy flag as it was */
    TRAP_EXIT
    pop %edx
    pop %ecx
    pop %eax
    iret
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
    iret
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
    mov %esp, %eax
    and $-16, %esp
    sub $8, %esp
    push %eax
    push $\v
    call x86_fatal_exception
    .endr
    .size x86_fatal_entries, . - x86_fatal_entries
