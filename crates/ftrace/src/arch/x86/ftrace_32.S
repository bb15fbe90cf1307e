/* i686 ftrace trampolines, assembled by i686.rs with global_asm!. Every
 * name in braces is a `const` operand from Rust (FtraceRegs offsets, the
 * per-register slots of the gpr module, the frame size); no offset is typed
 * here.
 *
 * One macro builds all the entry points:
 *   ftrace_caller / ftrace_regs_caller              fentry sites
 *   ftrace_mcount_caller / ftrace_mcount_regs_caller mcount sites
 *   ftrace_nodyn_mcount                             `mcount` of nodynamic builds
 *   ftrace_ops_[mcount_][regs_]tramp_<i>            the pool of per-callback
 *                                                   trampolines (crate::tramp)
 *
 * Entry state (a site executed `call <trampoline>`): (%esp) = site + 5.
 * fentry: 4(%esp) is the traced function's return address (its parent).
 * mcount: the traced function already ran `push %ebp; mov %esp,%ebp`, so
 * its return address is at 4(%ebp).
 *
 * Frame: push %ebp; mov %esp,%ebp (so 4(%ebp) = site + 5), then %esp is
 * aligned down to 16 with room for the FtraceRegs at 16(%esp) and the four
 * cdecl arguments (ip, parent_ip, FTRACE_TRACE_OP, regs) at 0..16(%esp).
 *
 * Patch points (exported labels): ftrace_call, ftrace_regs_call,
 * ftrace_mcount_call and ftrace_mcount_regs_call are 5-byte `call rel32`
 * instructions that I686::update_ftrace_func rewrites (int3 protocol). They
 * must stay a single `call rel32` each. ftrace_nodyn_mcount calls through
 * ftrace_trace_function instead (never patched). The pool trampolines pass
 * the Ops of their slot, ftrace_tramp_ops[i], to ftrace_ops_assist_func
 * with a plain call (never patched either); ftrace_ops_tramps lists them
 * for i686.rs.
 *
 * mcount builds instrument every function, the platform's included, so the
 * mcount entries keep a busy flag per CPU (ftrace_mcount_busy, indexed by
 * the kernel's asm helper ftrace_cpu_index; ftrace_mcount_busy_ptr gives
 * the running CPU's flag): a call arriving while it is set returns at once
 * (see i686.rs). */

    .text

/* The inner calls' initial target, and ftrace_trace_function's idle value. */
    .balign 16
    .globl ftrace_stub
    .type ftrace_stub, @function
ftrace_stub:
    ret
    .size ftrace_stub, . - ftrace_stub

/* FAST_GUARDED_CALL_32: the pool's fast path (the engine's use_cpu_local),
 * as x86_64's FAST_GUARDED_CALL: with the four cdecl arguments at
 * 0..16(%esp) and the FtraceRegs at 16(%esp), it reads the CPU index and
 * context %gs-relative at the offsets FTRACE_FAST_CPU_OFF /
 * FTRACE_FAST_CTX_OFF, tests and sets the context's bit in the CPU's
 * recursion word of FTRACE_FAST_WORDS ({word_stride} bytes per CPU, bits
 * at {off_bits}, generation at {off_epoch}, quiet bits at {off_quiet})
 * with a locked bts, which is the fence too, stores the CPU and context in
 * FtraceRegs::spare[0..2] (the caller stored FREGS_GUARDED as the
 * frame's flags; the unguarded path stores 0 instead) and calls the callback (the extern "C"
 * FtraceFunc at {ops_func} in the Ops) if the Ops is still enabled (the
 * u32 at {ops_state} equals {ops_enabled}; never a RECURSION Ops, whose
 * guard is its own); then clears the
 * bit (one unlocked btr: only this CPU writes its word, and a store is a
 * release on x86) and moves the generation on when the word is zero. The word
 * and the context wait at {priv0}/{priv1}(%esp), past the FtraceRegs.
 * Anything unusual (no fast path, a CPU id >= {max_cpus}, a context word
 * above {max_ctx}, the bit set, a quiet CPU) goes to
 * ftrace_ops_assist_func, which looks again and counts. Clobbers eax, ecx,
 * edx (saved by the caller). */
.macro FAST_GUARDED_CALL_32
    mov FTRACE_FAST_WORDS, %edx
    test %edx, %edx
    jz 5f
    mov FTRACE_FAST_CPU_OFF, %eax
    mov %gs:(%eax), %eax
    cmp ${max_cpus}, %eax
    jae 5f
    mov FTRACE_FAST_CTX_OFF, %ecx
    mov %gs:(%ecx), %ecx
    cmp ${max_ctx}, %ecx                /* not a context: the careful path */
    ja 5f
    mov %eax, (16 + {off_spare})(%esp)
    mov %ecx, (16 + {off_spare} + 4)(%esp)
    imul ${word_stride}, %eax, %eax
    add %eax, %edx
    bt %ecx, {off_quiet}(%edx)
    jc 5f
    lock btsl %ecx, {off_bits}(%edx)    /* the bit set, and a full fence */
    jc 5f                               /* it was set: left as it was */
    mov %edx, {priv0}(%esp)
    mov %ecx, {priv1}(%esp)
    mov 8(%esp), %eax                   /* the ops */
    cmpl ${ops_enabled}, {ops_state}(%eax)  /* enabled, guard not its own */
    jne 7f
    call *{ops_func}(%eax)
7:
    mov {priv0}(%esp), %edx
    mov {priv1}(%esp), %ecx
    btrl %ecx, {off_bits}(%edx)         /* one instruction: no interrupt splits it */
    cmpl $0, {off_bits}(%edx)
    jnz 6f
    incl {off_epoch}(%edx)
6:
    /* The careful path, out of the fast path's way. */
    .pushsection .text.ftrace_careful, "ax"
5:
    call ftrace_ops_assist_func
    jmp 6b
    .popsection
.endm

/* slot < 0: a shared entry (ops = FTRACE_TRACE_OP, patchable call at the
 * label `inner`, or the indirect call); slot >= 0: the pool entry of that
 * slot (ops = ftrace_tramp_ops[slot], calls ftrace_ops_assist_func). */
.macro FTRACE_I686 name, inner, full, mcount, indirect, slot=-1
    .balign 16
    .globl \name
    .type \name, @function
\name:
    .if \indirect
    cmpl $ftrace_stub, ftrace_trace_function
    jne 1f
    ret
1:
    /* nodynamic: every instrumented function calls here, the platform's
     * too, so a busy CPU is common: refuse before building a frame. */
    push %eax
    call ftrace_mcount_busy_ptr
    btsl $0, (%eax)                     /* test and set: one instruction, */
    jc 4f                               /* which no interrupt splits */
    pop %eax
    jmp 2f
4:  pop %eax
    ret
2:
    .endif
    push %ebp
    mov %esp, %ebp
    sub $({frame} + 16), %esp
    and $-16, %esp
    mov %eax, (16 + {eax})(%esp)
    mov %ecx, (16 + {ecx})(%esp)
    mov %edx, (16 + {edx})(%esp)
    .if \mcount && !\indirect && (\slot < 0 || \full)
    /* The CPU's busy flag: set it and keep its address for the way out.
     * ftrace_mcount_busy_ptr in line: ftrace_cpu_index clobbers only
     * %eax, saved above, and a CPU index out of range finds its flag set
     * there (the spare last word), so it returns untraced here directly.
     * A patched mcount site calls here only while traced, so a busy CPU is
     * rare. */
    call ftrace_cpu_index
    cmp $({max_cpus}), %eax
    jae .Lbusy\@
    lea ftrace_mcount_busy(,%eax,4), %eax
    btsl $0, (%eax)                     /* test and set (only this CPU */
    jc .Lbusy\@                         /* writes its flag) */
    mov %eax, {priv2}(%esp)
    .endif
    .if \full
    mov %ebx, (16 + {ebx})(%esp)
    mov %esi, (16 + {esi})(%esp)
    mov %edi, (16 + {edi})(%esp)
    pushf
    pop %eax
    mov %eax, (16 + {eflags})(%esp)
    movl $({fregs_full}), (16 + {off_flags})(%esp)
    .elseif \slot < 0
    movl $0, (16 + {off_flags})(%esp)
    .endif                              /* pool: stored by the path taken */
    .if \full || \mcount
    mov (%ebp), %eax                    /* %ebp at the site */
    .endif
    .if \full
    mov %eax, (16 + {ebp})(%esp)        /* full frames only, like esp */
    .endif
    mov 4(%ebp), %ecx                   /* site + 5: the default resume address */
    mov %ecx, (16 + {off_ip})(%esp)
    sub $5, %ecx
    mov %ecx, 0(%esp)                   /* arg 0: ip = the site */
    .if \mcount
    lea 4(%eax), %edx                   /* the return address slot, via the frame */
    .else
    lea 8(%ebp), %edx                   /* %esp at function entry */
    .endif
    mov %edx, (16 + {off_ret_slot})(%esp)
    mov %edx, (16 + {off_sp})(%esp)
    .if \full
    mov %edx, (16 + {esp})(%esp)
    .endif
    mov (%edx), %ecx
    mov %ecx, (16 + {off_parent})(%esp)
    mov %ecx, 4(%esp)                   /* arg 1: parent ip */
    .if \slot < 0
    mov FTRACE_TRACE_OP, %eax
    .else
    mov (ftrace_tramp_ops + 4 * \slot), %eax
    .endif
    mov %eax, 8(%esp)                   /* arg 2: ops (kept in %eax) */
    lea 16(%esp), %ecx
    mov %ecx, 12(%esp)                  /* arg 3: regs */
    .if \indirect
    call *ftrace_trace_function
    .elseif \slot >= 0 && \full
    call ftrace_ops_assist_func
    .elseif \slot >= 0
    /* An enabled RECURSION callback takes the guard itself: called
     * straight away. Any other state word takes the guarded path, out of
     * line (its own section: the careful path's code follows its end in
     * .text.ftrace_careful). */
    cmpl ${ops_self}, {ops_state}(%eax)
    jne 8f
    movl $0, (16 + {off_flags})(%esp)   /* no guard held */
    call *{ops_func}(%eax)
9:
    .pushsection .text.ftrace_guarded, "ax"
8:
    movl ${fregs_guarded}, (16 + {off_flags})(%esp)  /* the careful path's too */
    .if \mcount
    /* The pool's mcount entries take the CPU's busy flag here, around
     * the guarded call only (as the other mcount entries do at entry):
     * a RECURSION callback, called above, runs only while the fast path
     * is on and takes its guard without calling the platform. */
    call ftrace_cpu_index
    cmp $({max_cpus}), %eax
    jae 9b                              /* out of range: untraced */
    lea ftrace_mcount_busy(,%eax,4), %eax
    btsl $0, (%eax)                     /* test and set (only this CPU */
    jc 9b                               /* writes its flag): busy, untraced */
    mov %eax, {priv2}(%esp)
    .endif
    FAST_GUARDED_CALL_32
    .if \mcount
    mov {priv2}(%esp), %eax
    movl $0, (%eax)
    .endif
    jmp 9b
    .popsection
    .else
    .globl \inner
\inner:
    call ftrace_stub
    .endif
    .if \full && \mcount
    mov (16 + {off_ip})(%esp), %eax
    cmp %eax, 4(%ebp)
    je 3f
    /* Redirected from an mcount site: undo the traced function's prologue
     * (ftrace_i686_mcount_unwind fills ebx/esi/edi/ebp and sp with their
     * values at function entry), then enter FtraceRegs::ip with the entry
     * stack: ip is staged just below sp and popped by `ret`. */
    lea 16(%esp), %eax
    mov %eax, 0(%esp)
    mov 4(%ebp), %eax
    mov %eax, 4(%esp)
    call ftrace_i686_mcount_unwind
    mov (16 + {off_sp})(%esp), %eax
    sub $4, %eax
    mov (16 + {off_ip})(%esp), %ecx
    mov %ecx, (%eax)
    mov %eax, (16 + {off_spare})(%esp)
    mov (16 + {edi})(%esp), %edi
    mov (16 + {esi})(%esp), %esi
    mov (16 + {ebx})(%esp), %ebx
    .if \indirect
    call ftrace_mcount_busy_ptr
    .else
    mov {priv2}(%esp), %eax             /* the busy flag */
    .endif
    movl $0, (%eax)
    mov (16 + {edx})(%esp), %edx
    mov (16 + {ecx})(%esp), %ecx
    mov (16 + {eax})(%esp), %eax
    mov (16 + {ebp})(%esp), %ebp
    mov (16 + {off_spare})(%esp), %esp
    ret
3:
    .endif
    .if \full
    mov (16 + {off_ip})(%esp), %eax     /* resume where the callback says */
    mov %eax, 4(%ebp)
    mov (16 + {edi})(%esp), %edi
    mov (16 + {esi})(%esp), %esi
    mov (16 + {ebx})(%esp), %ebx
    .endif
    .if \indirect
    call ftrace_mcount_busy_ptr
    movl $0, (%eax)
    .elseif \mcount && (\slot < 0 || \full)
    mov {priv2}(%esp), %eax             /* the busy flag */
    movl $0, (%eax)
    .endif
    mov (16 + {edx})(%esp), %edx
    mov (16 + {ecx})(%esp), %ecx
    mov (16 + {eax})(%esp), %eax
    mov %ebp, %esp
    pop %ebp
    ret
    .if \mcount && !\indirect && (\slot < 0 || \full)
.Lbusy\@:                               /* busy: back to the traced function */
    mov (16 + {eax})(%esp), %eax
    mov %ebp, %esp
    pop %ebp
    ret
    .endif
    .size \name, . - \name
.endm

/* fentry: the site is the first instruction; a changed FtraceRegs::ip
 * resumes another function with exactly the entry state. */
    FTRACE_I686 ftrace_caller, ftrace_call, 0, 0, 0
    FTRACE_I686 ftrace_regs_caller, ftrace_regs_call, 1, 0, 0

/* mcount: the site follows the prologue. A changed ip is honoured as a
 * plain resume address inside the traced function's frame (redirecting to
 * another function's entry from here is not supported: see i686.rs). */
    FTRACE_I686 ftrace_mcount_caller, ftrace_mcount_call, 0, 1, 0
    FTRACE_I686 ftrace_mcount_regs_caller, ftrace_mcount_regs_call, 1, 1, 0

/* nodynamic: every instrumented function calls this (through the kernel's
 * `mcount`); it returns at once unless ftrace_trace_function was set. */
    FTRACE_I686 ftrace_nodyn_mcount, unused, 1, 1, 1

/* return_to_handler: the return hook of crate::fgraph (I686::return_hook).
 * A hooked function's `ret` lands here with %esp = its entry %esp + 4, or
 * + 8 when it popped a hidden struct-return pointer (`ret $4`), and its
 * result in eax:edx. Both are kept; ftrace_return_to_handler(sp_lo =
 * %esp - 8, sp_hi = %esp - 4, eax, edx) checks and pops the shadow frame and
 * returns the original return address, which our `ret` then pops. The
 * mcount busy flag is set meanwhile (mcount builds instrument the platform
 * functions the handler calls) and then restored (the running CPU's flag;
 * the task cannot move to another CPU meanwhile). 32 bytes keep %esp's
 * 16-byte alignment for the call. */
    .balign 16
    .globl return_to_handler
    .type return_to_handler, @function
return_to_handler:
    sub $32, %esp
    mov %eax, 16(%esp)
    mov %edx, 20(%esp)
    call ftrace_mcount_busy_ptr
    mov (%eax), %ecx
    mov %ecx, 24(%esp)
    movl $1, (%eax)
    mov 16(%esp), %eax                  /* the return value again */
    lea 24(%esp), %ecx                  /* entry %esp after `ret $4` */
    mov %ecx, 0(%esp)
    lea 28(%esp), %ecx                  /* entry %esp after a plain `ret` */
    mov %ecx, 4(%esp)
    mov %eax, 8(%esp)
    mov %edx, 12(%esp)
    call ftrace_return_to_handler
    mov %eax, 28(%esp)                  /* the original return address */
    call ftrace_mcount_busy_ptr
    mov 24(%esp), %ecx
    mov %ecx, (%eax)
    mov 16(%esp), %eax
    mov 20(%esp), %edx
    add $28, %esp
    ret
    .size return_to_handler, . - return_to_handler

/* The pool: per slot, the fentry entries (copies of ftrace_caller and
 * ftrace_regs_caller) and the mcount ones (copies of the mcount callers,
 * with the same busy flag). .Lftrace_ops_nslots counts the slots (checked
 * against {nslots}). nodynamic builds have no pool: their sites are never
 * patched. */
    .set .Lftrace_ops_nslots, 0
.irp i, 0, 1, 2, 3, 4, 5, 6, 7
    FTRACE_I686 ftrace_ops_tramp_\i, unused, 0, 0, 0, \i
    FTRACE_I686 ftrace_ops_regs_tramp_\i, unused, 1, 0, 0, \i
    FTRACE_I686 ftrace_ops_mcount_tramp_\i, unused, 0, 1, 0, \i
    FTRACE_I686 ftrace_ops_mcount_regs_tramp_\i, unused, 1, 1, 0, \i
    .set .Lftrace_ops_nslots, .Lftrace_ops_nslots + 1
.endr
    .if .Lftrace_ops_nslots != {nslots}
    .error "ftrace_32.S: the pool must have crate::tramp::OPS_TRAMP_SLOTS slots"
    .endif

/* The pool's entries for i686.rs, four groups of one entry per slot:
 * fentry, fentry full frame, mcount, mcount full frame. */
    .section .rodata.ftrace_ops_tramps, "a"
    .balign 4
    .globl ftrace_ops_tramps
    .type ftrace_ops_tramps, @object
ftrace_ops_tramps:
.irp kind, tramp, regs_tramp, mcount_tramp, mcount_regs_tramp
.irp i, 0, 1, 2, 3, 4, 5, 6, 7
    .long ftrace_ops_\kind\()_\i
.endr
.endr
    .size ftrace_ops_tramps, . - ftrace_ops_tramps

    .data
    .balign 4
/* The function ftrace_nodyn_mcount calls: ftrace_stub (idle) or
 * ftrace_ops_list_func (written by I686::finish_batch). */
    .globl ftrace_trace_function
    .type ftrace_trace_function, @object
ftrace_trace_function:
    .long ftrace_stub
    .size ftrace_trace_function, 4
/* Per CPU (index from ftrace_cpu_index): non-zero while an mcount entry
 * runs its callback on that CPU. One more word, always set, stands for
 * every CPU index out of range, which is never traced through mcount. */
    .globl ftrace_mcount_busy
    .type ftrace_mcount_busy, @object
ftrace_mcount_busy:
    .fill {max_cpus}, 4, 0
    .long 1
    .size ftrace_mcount_busy, . - ftrace_mcount_busy

    .text
/* The running CPU's busy flag: its address in %eax; clobbers nothing else
 * but the flags. Calls the kernel's ftrace_cpu_index (i686.rs docs), so it
 * runs no instrumented code; used by nodynamic's mcount, return_to_handler
 * and the kernel's interrupt entries. The patched mcount entries do the
 * same in line (FTRACE_I686), where an index out of range returns
 * untraced at once instead of finding the spare word's flag set. */
    .balign 16
    .globl ftrace_mcount_busy_ptr
    .type ftrace_mcount_busy_ptr, @function
ftrace_mcount_busy_ptr:
    call ftrace_cpu_index
    cmp $({max_cpus}), %eax
    jb 1f
    mov $({max_cpus}), %eax
1:  lea ftrace_mcount_busy(,%eax,4), %eax
    ret
    .size ftrace_mcount_busy_ptr, . - ftrace_mcount_busy_ptr
