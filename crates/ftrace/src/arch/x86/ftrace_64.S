/* x86_64 ftrace trampolines, assembled by x86_64.rs with global_asm!.
 * Every name in braces is a `const` operand from Rust: the FtraceRegs
 * offsets (crate::regs::OFF_*), the per-register slot offsets (gpr module)
 * and the frame size. No offset is typed here.
 *
 * Entry state (the site executed `call ftrace_caller`):
 *   (%rsp)   site + 5, where the traced function continues
 *   8(%rsp)  the traced function's return address (its parent)
 *   rdi rsi rdx rcx r8 r9: the traced function's arguments
 * %rsp is 16-byte aligned here; the frame size keeps it so for the call.
 *
 * Patch points (exported labels): ftrace_call and ftrace_regs_call are
 * 5-byte `call rel32` instructions that X86_64::update_ftrace_func rewrites
 * (int3 protocol) to call ftrace_ops_list_func / ftrace_ops_assist_func.
 * They must stay a single `call rel32` each. */

    .text

/* The inner calls' initial target: does nothing. */
    .balign 16
    .globl ftrace_stub
    .type ftrace_stub, @function
ftrace_stub:
    ret
    .size ftrace_stub, . - ftrace_stub

/* Saves the argument and scratch registers, calls
 * func(ip = site, parent_ip, FTRACE_TRACE_OP, regs), restores them (a
 * callback may have changed arguments) and returns into the traced
 * function. */
    .balign 16
    .globl ftrace_caller
    .type ftrace_caller, @function
ftrace_caller:
    sub $({frame}), %rsp
    mov %rax, {rax}(%rsp)
    mov %rcx, {rcx}(%rsp)
    mov %rdx, {rdx}(%rsp)
    mov %rsi, {rsi}(%rsp)
    mov %rdi, {rdi}(%rsp)
    mov %r8, {r8}(%rsp)
    mov %r9, {r9}(%rsp)
    mov %r10, {r10}(%rsp)
    mov %r11, {r11}(%rsp)
    mov %rbp, {rbp}(%rsp)
    movq $0, {off_flags}(%rsp)
    movq $0, {off_spare}(%rsp)
    movq $0, ({off_spare} + 8)(%rsp)
    movq $0, ({off_spare} + 16)(%rsp)
    mov {frame}(%rsp), %rdi             /* site + 5 */
    mov %rdi, {off_ip}(%rsp)
    sub $5, %rdi                        /* arg 0: ip = the site */
    mov ({frame} + 8)(%rsp), %rsi       /* arg 1: parent ip */
    mov %rsi, {off_parent}(%rsp)
    lea ({frame} + 8)(%rsp), %rax       /* %rsp at the traced function's entry */
    mov %rax, {off_sp}(%rsp)
    mov %rax, {rsp}(%rsp)
    mov %rax, {off_ret_slot}(%rsp)      /* it points at the return address */
    mov FTRACE_TRACE_OP(%rip), %rdx     /* arg 2: ops */
    mov %rsp, %rcx                      /* arg 3: regs */
    .globl ftrace_call
ftrace_call:
    call ftrace_stub
    mov {r11}(%rsp), %r11
    mov {r10}(%rsp), %r10
    mov {r9}(%rsp), %r9
    mov {r8}(%rsp), %r8
    mov {rdi}(%rsp), %rdi
    mov {rsi}(%rsp), %rsi
    mov {rdx}(%rsp), %rdx
    mov {rcx}(%rsp), %rcx
    mov {rax}(%rsp), %rax
    add $({frame}), %rsp
    ret
    .size ftrace_caller, . - ftrace_caller

/* Saves every register (FREGS_FULL), calls the callback like ftrace_caller,
 * restores every register but %rsp and rflags, and resumes at
 * FtraceRegs::ip: it stores ip over the site's return address and returns,
 * so a changed ip (live patching) starts another function with exactly the
 * entry state the traced function had. */
    .balign 16
    .globl ftrace_regs_caller
    .type ftrace_regs_caller, @function
ftrace_regs_caller:
    sub $({frame}), %rsp
    mov %rax, {rax}(%rsp)
    mov %rcx, {rcx}(%rsp)
    mov %rdx, {rdx}(%rsp)
    mov %rbx, {rbx}(%rsp)
    mov %rbp, {rbp}(%rsp)
    mov %rsi, {rsi}(%rsp)
    mov %rdi, {rdi}(%rsp)
    mov %r8, {r8}(%rsp)
    mov %r9, {r9}(%rsp)
    mov %r10, {r10}(%rsp)
    mov %r11, {r11}(%rsp)
    mov %r12, {r12}(%rsp)
    mov %r13, {r13}(%rsp)
    mov %r14, {r14}(%rsp)
    mov %r15, {r15}(%rsp)
    pushfq
    pop %rax
    mov %rax, {rflags}(%rsp)
    movq $({fregs_full}), {off_flags}(%rsp)
    movq $0, {off_spare}(%rsp)
    movq $0, ({off_spare} + 8)(%rsp)
    movq $0, ({off_spare} + 16)(%rsp)
    mov {frame}(%rsp), %rdi             /* site + 5: the default resume address */
    mov %rdi, {off_ip}(%rsp)
    sub $5, %rdi                        /* arg 0: ip = the site */
    mov ({frame} + 8)(%rsp), %rsi       /* arg 1: parent ip */
    mov %rsi, {off_parent}(%rsp)
    lea ({frame} + 8)(%rsp), %rax
    mov %rax, {off_sp}(%rsp)
    mov %rax, {rsp}(%rsp)
    mov %rax, {off_ret_slot}(%rsp)
    mov FTRACE_TRACE_OP(%rip), %rdx     /* arg 2: ops */
    mov %rsp, %rcx                      /* arg 3: regs */
    .globl ftrace_regs_call
ftrace_regs_call:
    call ftrace_stub
    mov {off_ip}(%rsp), %rax            /* resume where the callback says */
    mov %rax, {frame}(%rsp)
    mov {r15}(%rsp), %r15
    mov {r14}(%rsp), %r14
    mov {r13}(%rsp), %r13
    mov {r12}(%rsp), %r12
    mov {r11}(%rsp), %r11
    mov {r10}(%rsp), %r10
    mov {r9}(%rsp), %r9
    mov {r8}(%rsp), %r8
    mov {rdi}(%rsp), %rdi
    mov {rsi}(%rsp), %rsi
    mov {rbp}(%rsp), %rbp
    mov {rbx}(%rsp), %rbx
    mov {rdx}(%rsp), %rdx
    mov {rcx}(%rsp), %rcx
    mov {rax}(%rsp), %rax
    add $({frame}), %rsp
    ret
    .size ftrace_regs_caller, . - ftrace_regs_caller
