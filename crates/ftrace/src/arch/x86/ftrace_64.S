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
 * They must stay a single `call rel32` each.
 *
 * One macro, FTRACE_X86_64, builds the shared trampolines and the pool of
 * per-callback trampolines (crate::tramp): ftrace_ops_tramp_<i> (a copy of
 * ftrace_caller) and ftrace_ops_regs_tramp_<i> (a copy of
 * ftrace_regs_caller) pass the Ops in slot i of ftrace_tramp_ops and call
 * ftrace_ops_assist_func directly: nothing in them is patched. The table
 * ftrace_ops_tramps lists their addresses for x86_64.rs. */

    .text

/* The inner calls' initial target: does nothing. */
    .balign 16
    .globl ftrace_stub
    .type ftrace_stub, @function
ftrace_stub:
    ret
    .size ftrace_stub, . - ftrace_stub

/* FAST_GUARDED_CALL: the per-callback trampolines' fast path (the
 * engine's use_cpu_local). With rdi, rsi, rdx, rcx the assist function's
 * four arguments and the frame at %rsp, it does what ftrace_ops_assist_func
 * would, without calling the platform: the CPU index and context come
 * from %gs at the offsets FTRACE_FAST_CPU_OFF / FTRACE_FAST_CTX_OFF, the
 * recursion bit is tested and set in the CPU's word of FTRACE_FAST_WORDS
 * (the layout of crate::recursion: {word_stride} bytes per CPU, bits at
 * {off_bits}, generation at {off_epoch}, quiet bits at {off_quiet}),
 * followed by a full fence like RecursionState::try_enter; the CPU and
 * context go to FtraceRegs::spare[0..2] (the caller stored FREGS_GUARDED
 * as the frame's flags, the frame's one store of them: the unguarded
 * path stores 0); the callback (an extern "C"
 * FtraceFunc at {ops_func} in the Ops) is called with the same four
 * arguments if the Ops is still enabled (the u32 at {ops_state} equals
 * {ops_enabled}: a CPU still here after its Ops was unregistered calls
 * nothing, as Ops::is_enabled, and a RECURSION Ops, whose guard is its
 * own, is never called here); the bit is cleared (one unlocked btr: only
 * this CPU writes its word, and a store is a release on x86) and the
 * generation moves on when the word drops to zero, like the guard's drop.
 * The bit is set with a locked bts, which is the fence too. The word's address and the context live in two
 * slots past the FtraceRegs ({priv0}, {priv1}), out of the callback's
 * reach. Anything unusual (no fast path set up, a CPU id >= {max_cpus}, a
 * context word above {max_ctx}, the bit already set, a quiet CPU) goes to
 * ftrace_ops_assist_func, which looks again and counts. Clobbers rax, r8,
 * r9 (saved by the caller). */
.macro FAST_GUARDED_CALL
    mov FTRACE_FAST_WORDS(%rip), %r8
    test %r8, %r8
    jz 2f
    mov FTRACE_FAST_CPU_OFF(%rip), %rax
    mov %gs:(%rax), %eax
    cmp ${max_cpus}, %eax
    jae 2f
    mov FTRACE_FAST_CTX_OFF(%rip), %r9
    mov %gs:(%r9), %r9d
    cmp ${max_ctx}, %r9d                /* not a context: the careful path */
    ja 2f
    mov %rax, ({off_spare})(%rsp)
    mov %r9, ({off_spare} + 8)(%rsp)
    imul ${word_stride}, %rax, %rax
    add %rax, %r8
    bt %r9d, {off_quiet}(%r8)
    jc 2f
    lock btsl %r9d, {off_bits}(%r8)     /* the bit set, and a full fence */
    jc 2f                               /* it was set: left as it was */
    mov %r8, {priv0}(%rsp)
    mov %r9, {priv1}(%rsp)
    cmpl ${ops_enabled}, {ops_state}(%rdx)  /* enabled, guard not its own */
    jne 4f
    call *{ops_func}(%rdx)
4:
    mov {priv0}(%rsp), %r8
    mov {priv1}(%rsp), %r9
    btrl %r9d, {off_bits}(%r8)          /* one instruction: no interrupt splits it */
    cmpl $0, {off_bits}(%r8)
    jnz 3f
    incq {off_epoch}(%r8)
3:
    /* The careful path, out of the fast path's way. */
    .pushsection .text.ftrace_careful, "ax"
2:
    call ftrace_ops_assist_func
    jmp 3b
    .popsection
.endm

/* FTRACE_X86_64 name, full, slot, inner
 *
 * full = 0: like ftrace_caller: saves the six argument registers and rax
 *   (a variadic call's vector count), calls func(ip = site, parent_ip, ops,
 *   regs), restores them (a callback may have changed arguments) and
 *   returns into the traced function. Nothing else needs keeping: the
 *   callee-saved registers (rbx rbp r12-r15) survive the call by the ABI,
 *   and r10/r11 carry nothing into a function entry (the ABI's scratch
 *   registers, as Linux's ftrace_caller has it). Their FtraceRegs slots
 *   and the rsp slot are not written (FtraceRegs: read them only when
 *   is_full).
 * full = 1: like ftrace_regs_caller: saves every register (FREGS_FULL),
 *   restores every register but %rsp and rflags, and resumes at
 *   FtraceRegs::ip: it stores ip over the site's return address and
 *   returns, so a changed ip (live patching) starts another function with
 *   exactly the entry state the traced function had.
 * slot < 0: a shared trampoline: ops = FTRACE_TRACE_OP and func is the
 *   patchable call at the exported label `inner`.
 * slot >= 0: a pool trampoline: ops = ftrace_tramp_ops[slot] and func is
 *   ftrace_ops_assist_func. */
.macro FTRACE_X86_64 name, full, slot, inner
    .balign 16
    .globl \name
    .type \name, @function
\name:
    sub $({frame}), %rsp
    mov %rax, {rax}(%rsp)
    mov %rcx, {rcx}(%rsp)
    mov %rdx, {rdx}(%rsp)
    mov %rsi, {rsi}(%rsp)
    mov %rdi, {rdi}(%rsp)
    mov %r8, {r8}(%rsp)
    mov %r9, {r9}(%rsp)
    .if \full
    mov %rbp, {rbp}(%rsp)
    mov %r10, {r10}(%rsp)
    mov %r11, {r11}(%rsp)
    mov %rbx, {rbx}(%rsp)
    mov %r12, {r12}(%rsp)
    mov %r13, {r13}(%rsp)
    mov %r14, {r14}(%rsp)
    mov %r15, {r15}(%rsp)
    pushfq
    pop %rax
    mov %rax, {rflags}(%rsp)
    movq $({fregs_full}), {off_flags}(%rsp)
    .elseif \slot < 0
    movq $0, {off_flags}(%rsp)
    .endif                              /* pool: stored by the path taken */
    mov {frame}(%rsp), %rdi             /* site + 5: the default resume address */
    mov %rdi, {off_ip}(%rsp)
    sub $5, %rdi                        /* arg 0: ip = the site */
    mov ({frame} + 8)(%rsp), %rsi       /* arg 1: parent ip */
    mov %rsi, {off_parent}(%rsp)
    lea ({frame} + 8)(%rsp), %rax       /* %rsp at the traced function's entry */
    mov %rax, {off_sp}(%rsp)
    .if \full
    mov %rax, {rsp}(%rsp)
    .endif
    mov %rax, {off_ret_slot}(%rsp)      /* it points at the return address */
    mov %rsp, %rcx                      /* arg 3: regs */
    .if \slot < 0
    mov FTRACE_TRACE_OP(%rip), %rdx     /* arg 2: ops */
    .globl \inner
\inner:
    call ftrace_stub
    .else
    mov (ftrace_tramp_ops + 8 * \slot)(%rip), %rdx  /* arg 2: this slot's ops */
    .if \full
    call ftrace_ops_assist_func
    .else
    /* An enabled RECURSION callback takes the guard itself: called
     * straight away. Any other state word takes the guarded path, out of
     * line (its own section: the careful path's code follows its end in
     * .text.ftrace_careful). */
    cmpl ${ops_self}, {ops_state}(%rdx)
    jne 8f
    movq $0, {off_flags}(%rsp)          /* no guard held */
    call *{ops_func}(%rdx)
9:
    .pushsection .text.ftrace_guarded, "ax"
8:
    movq ${fregs_guarded}, {off_flags}(%rsp)  /* the careful path's too */
    FAST_GUARDED_CALL
    jmp 9b
    .popsection
    .endif
    .endif
    .if \full
    mov {off_ip}(%rsp), %rax            /* resume where the callback says */
    mov %rax, {frame}(%rsp)
    mov {r15}(%rsp), %r15
    mov {r14}(%rsp), %r14
    mov {r13}(%rsp), %r13
    mov {r12}(%rsp), %r12
    mov {rbx}(%rsp), %rbx
    mov {rbp}(%rsp), %rbp
    mov {r11}(%rsp), %r11
    mov {r10}(%rsp), %r10
    .endif
    mov {r9}(%rsp), %r9
    mov {r8}(%rsp), %r8
    mov {rdi}(%rsp), %rdi
    mov {rsi}(%rsp), %rsi
    mov {rdx}(%rsp), %rdx
    mov {rcx}(%rsp), %rcx
    mov {rax}(%rsp), %rax
    add $({frame}), %rsp
    ret
    .size \name, . - \name
.endm

    FTRACE_X86_64 ftrace_caller, 0, -1, ftrace_call
    FTRACE_X86_64 ftrace_regs_caller, 1, -1, ftrace_regs_call

/* return_to_handler: the return hook of crate::fgraph (X86_64::return_hook).
 * A hooked function's `ret` lands here with %rsp = its entry %rsp + 8 (the
 * System V ABI has no callee-popped arguments) and its result in rax:rdx.
 * Both are kept; ftrace_return_to_handler(sp_lo = sp_hi = entry %rsp,
 * rax, rdx) checks and pops the shadow frame and returns the original
 * return address, which our own `ret` then pops. %rsp is 16-byte aligned
 * here (the caller's alignment before its call), and stays so for the call
 * below (32 bytes reserved). */
    .balign 16
    .globl return_to_handler
    .type return_to_handler, @function
return_to_handler:
    sub $32, %rsp
    mov %rax, 0(%rsp)
    mov %rdx, 8(%rsp)
    lea 24(%rsp), %rdi                  /* the function's entry %rsp */
    mov %rdi, %rsi
    mov %rdx, %rcx
    mov %rax, %rdx
    call ftrace_return_to_handler
    mov %rax, 24(%rsp)                  /* the original return address */
    mov 0(%rsp), %rax
    mov 8(%rsp), %rdx
    add $24, %rsp
    ret
    .size return_to_handler, . - return_to_handler

/* The pool: slot i's two entries; .Lftrace_ops_nslots counts the slots
 * (checked against {nslots} below). */
    .set .Lftrace_ops_nslots, 0
.irp i, 0, 1, 2, 3, 4, 5, 6, 7
    FTRACE_X86_64 ftrace_ops_tramp_\i, 0, \i
    FTRACE_X86_64 ftrace_ops_regs_tramp_\i, 1, \i
    .set .Lftrace_ops_nslots, .Lftrace_ops_nslots + 1
.endr
    .if .Lftrace_ops_nslots != {nslots}
    .error "ftrace_64.S: the pool must have crate::tramp::OPS_TRAMP_SLOTS slots"
    .endif

/* Entries of the pool for x86_64.rs: the argument-register entries of
 * every slot, then the full-frame entries. In .data.rel.ro (written once
 * by the loader, then read-only) rather than .rodata: a position-
 * independent kernel (x86_64-unknown-none links with -pie) needs a
 * relocation for each address, which the linker refuses in read-only
 * data. */
    .section .data.rel.ro.ftrace_ops_tramps, "aw"
    .balign 8
    .globl ftrace_ops_tramps
    .type ftrace_ops_tramps, @object
ftrace_ops_tramps:
.irp i, 0, 1, 2, 3, 4, 5, 6, 7
    .quad ftrace_ops_tramp_\i
.endr
.irp i, 0, 1, 2, 3, 4, 5, 6, 7
    .quad ftrace_ops_regs_tramp_\i
.endr
    .size ftrace_ops_tramps, . - ftrace_ops_tramps
    .text
