/* ppc64 (ELFv2) function-tracer trampolines: ftrace_caller and
 * ftrace_regs_caller. Included by arch/ppc64/mod.rs with global_asm!; the
 * off_* and fregs_* operands (in braces) are the FtraceRegs layout from
 * regs.rs.
 *
 * Entered from a site's stub (see mod.rs):
 *
 *   stub+0:  mflr r0           r0 = the traced function's return address
 *   stub+4:  bl   <here>       LR = stub+8
 *   stub+8:  mtlr r0
 *   stub+12: b    site+4       <- decoded here to find the site
 *
 * with r1 = the traced function's stack pointer (no frame of its own yet)
 * and r3-r10 / f1-f13 holding its arguments. Both trampolines:
 *   1. open a frame and save r0 and r2-r10, LR and the MSR into it (the
 *      regs one also r11-r31, CR, CTR and XER), and clear MSR.FP (no
 *      floating-point state is saved: the callbacks cannot touch it, see
 *      FT_SAVE). At a function entry the ELFv2 ABI gives r11, r12, CTR,
 *      XER and CR0/1/5-7 no meaning (volatile, carrying nothing in), and
 *      the callbacks keep r14-r31 and CR2-4 themselves, so
 *      ftrace_caller does not save them;
 *   2. fill FtraceRegs: ip = site+4 (resume address), parent_ip = r0,
 *      sp = r1 at the site, ret_slot = &gpr[0] (the stub's `mtlr r0`
 *      restores the return address from there), flags; gpr[1] only in
 *      full frames (FtraceRegs: the other slots of an argument-register
 *      frame are not written), as x86_64 writes its rsp slot;
 *   3. load the kernel TOC and call (ip = site, parent_ip, FTRACE_TRACE_OP,
 *      &regs) through the patchable `bl` at ftrace_call / ftrace_regs_call;
 *   4. restore everything and `blr` back into the stub (balanced with its
 *      `bl`), except when a regs-trampoline callback changed regs.ip:
 *      then `bctr` to it with LR = the return address and r12 = the target
 *      (see "Redirect" in mod.rs).
 *
 * One macro, FT_TRAMP, also builds the pool of per-callback trampolines
 * (crate::tramp): ftrace_ops_tramp_<i> (a copy of ftrace_caller) and
 * ftrace_ops_regs_tramp_<i> (a copy of ftrace_regs_caller) pass the Ops in
 * slot i of ftrace_tramp_ops and call ftrace_ops_assist_func directly
 * (nothing in them is patched); a stub's `bl` points at them like at the
 * shared ones. ftrace_ops_tramps lists them for mod.rs. They follow the
 * shared trampolines in the same section, so a stub that reaches those
 * reaches these too unless it sits within a few KiB of the +-32 MiB limit
 * (mod.rs checks).
 */

    .set MSR_FP, 0x2000

/* Frame: ELFv2 header (back chain, CR, LR, TOC: 32 bytes) and a
 * parameter save area (64) for the callee, then our save areas. */
    .set FT_REGS,   112                         /* struct FtraceRegs */
    .set FT_MSR,    FT_REGS + {fregs_size}      /* MSR at entry */
    .set FT_CR,     FT_MSR + 8
    .set FT_CTR,    FT_CR + 8
    .set FT_XER,    FT_CTR + 8
    .set FT_LR,     FT_XER + 8                  /* stub+8 */
    .set FT_RESUME, FT_LR + 8                   /* site+4, to detect a redirect */
    .set FT_PRIV0,  FT_RESUME + 8               /* FT_FAST_CALL: the CPU's word */
    .set FT_PRIV1,  FT_PRIV0 + 8                /* FT_FAST_CALL: its bit */
    .set FT_FRAME,  (FT_PRIV1 + 8 + 15) & ~15   /* ELFv2: 16-byte aligned */
    .set FT_GPR,    FT_REGS + {off_gpr}

/* Save: everything up to and including the FtraceRegs fields. */
    .macro FT_SAVE full
    stdu    %r1, -FT_FRAME(%r1)
    std     %r0,  FT_GPR + 0*8(%r1)
    std     %r2,  FT_GPR + 2*8(%r1)
    std     %r3,  FT_GPR + 3*8(%r1)
    std     %r4,  FT_GPR + 4*8(%r1)
    std     %r5,  FT_GPR + 5*8(%r1)
    std     %r6,  FT_GPR + 6*8(%r1)
    std     %r7,  FT_GPR + 7*8(%r1)
    std     %r8,  FT_GPR + 8*8(%r1)
    std     %r9,  FT_GPR + 9*8(%r1)
    std     %r10, FT_GPR + 10*8(%r1)
    .if \full
    std     %r11, FT_GPR + 11*8(%r1)
    std     %r12, FT_GPR + 12*8(%r1)
    std     %r13, FT_GPR + 13*8(%r1)
    std     %r14, FT_GPR + 14*8(%r1)
    std     %r15, FT_GPR + 15*8(%r1)
    std     %r16, FT_GPR + 16*8(%r1)
    std     %r17, FT_GPR + 17*8(%r1)
    std     %r18, FT_GPR + 18*8(%r1)
    std     %r19, FT_GPR + 19*8(%r1)
    std     %r20, FT_GPR + 20*8(%r1)
    std     %r21, FT_GPR + 21*8(%r1)
    std     %r22, FT_GPR + 22*8(%r1)
    std     %r23, FT_GPR + 23*8(%r1)
    std     %r24, FT_GPR + 24*8(%r1)
    std     %r25, FT_GPR + 25*8(%r1)
    std     %r26, FT_GPR + 26*8(%r1)
    std     %r27, FT_GPR + 27*8(%r1)
    std     %r28, FT_GPR + 28*8(%r1)
    std     %r29, FT_GPR + 29*8(%r1)
    std     %r30, FT_GPR + 30*8(%r1)
    std     %r31, FT_GPR + 31*8(%r1)
    .endif
    addi    %r11, %r1, FT_FRAME                 /* r1 at the site */
    .if \full
    std     %r11, FT_GPR + 1*8(%r1)             /* full frames: every GPR */
    .endif
    std     %r11, FT_REGS + {off_sp}(%r1)
    std     %r0,  FT_REGS + {off_parent_ip}(%r1)
    .if \full
    mfcr    %r11
    std     %r11, FT_CR(%r1)
    mfctr   %r11
    std     %r11, FT_CTR(%r1)
    mfxer   %r11
    std     %r11, FT_XER(%r1)
    .endif
    /* No floating-point state is saved: the callbacks run with MSR.FP
     * clear, so f0-f13 and FPSCR cannot change under them, and a
     * floating-point instruction there traps (FP unavailable) instead of
     * corrupting the traced function's arguments. */
    mfmsr   %r11
    std     %r11, FT_MSR(%r1)
    li      %r12, MSR_FP
    andc    %r12, %r11, %r12
    mtmsrd  %r12
    /* The site: decode the stub's last word, `b site+4`, at LR+4. Its LI
     * field (mask 0x03fffffc) is a signed 26-bit byte displacement. */
    mflr    %r11                                /* stub+8 */
    std     %r11, FT_LR(%r1)
    lwz     %r12, 4(%r11)
    rlwinm  %r12, %r12, 0, 6, 29
    sldi    %r12, %r12, 38
    sradi   %r12, %r12, 38
    add     %r12, %r12, %r11
    addi    %r12, %r12, 4                       /* site+4 */
    .if \full
    std     %r12, FT_RESUME(%r1)                /* to detect a redirect */
    .endif
    std     %r12, FT_REGS + {off_ip}(%r1)
    addi    %r11, %r1, FT_GPR                   /* &gpr[0] */
    std     %r11, FT_REGS + {off_ret_slot}(%r1)
    li      %r11, (\full) * {fregs_full}
    std     %r11, FT_REGS + {off_flags}(%r1)
    /* Arguments of the dispatcher but the op (FT_TRAMP loads it); r2 =
     * the kernel TOC for its local entry. */
    lis     %r2, .TOC.@ha
    addi    %r2, %r2, .TOC.@l
    addi    %r3, %r12, -4                       /* ip: the site */
    mr      %r4, %r0                            /* parent_ip */
    addi    %r6, %r1, FT_REGS                   /* regs */
    .endm

/* Restore what FT_SAVE saved, except r0, r11, r12 and LR (the exits
 * differ in how they use them). Clobbers CR last: callers branch on CR
 * before this. */
    .macro FT_RESTORE full
    ld      %r11, FT_MSR(%r1)                   /* MSR.FP back on */
    mtmsrd  %r11
    isync
    .if \full
    ld      %r11, FT_CTR(%r1)
    mtctr   %r11
    ld      %r11, FT_XER(%r1)
    mtxer   %r11
    ld      %r11, FT_CR(%r1)
    mtcrf   0xff, %r11
    /* r13 is the thread pointer: never taken from the frame. */
    ld      %r14, FT_GPR + 14*8(%r1)
    ld      %r15, FT_GPR + 15*8(%r1)
    ld      %r16, FT_GPR + 16*8(%r1)
    ld      %r17, FT_GPR + 17*8(%r1)
    ld      %r18, FT_GPR + 18*8(%r1)
    ld      %r19, FT_GPR + 19*8(%r1)
    ld      %r20, FT_GPR + 20*8(%r1)
    ld      %r21, FT_GPR + 21*8(%r1)
    ld      %r22, FT_GPR + 22*8(%r1)
    ld      %r23, FT_GPR + 23*8(%r1)
    ld      %r24, FT_GPR + 24*8(%r1)
    ld      %r25, FT_GPR + 25*8(%r1)
    ld      %r26, FT_GPR + 26*8(%r1)
    ld      %r27, FT_GPR + 27*8(%r1)
    ld      %r28, FT_GPR + 28*8(%r1)
    ld      %r29, FT_GPR + 29*8(%r1)
    ld      %r30, FT_GPR + 30*8(%r1)
    ld      %r31, FT_GPR + 31*8(%r1)
    .endif
    ld      %r0,  FT_GPR + 0*8(%r1)
    ld      %r2,  FT_GPR + 2*8(%r1)
    ld      %r3,  FT_GPR + 3*8(%r1)
    ld      %r4,  FT_GPR + 4*8(%r1)
    ld      %r5,  FT_GPR + 5*8(%r1)
    ld      %r6,  FT_GPR + 6*8(%r1)
    ld      %r7,  FT_GPR + 7*8(%r1)
    ld      %r8,  FT_GPR + 8*8(%r1)
    ld      %r9,  FT_GPR + 9*8(%r1)
    ld      %r10, FT_GPR + 10*8(%r1)
    .endm

/* Normal exit: LR = stub+8, r11/r12 restored (full frames), frame popped,
 * `blr`. */
    .macro FT_RETURN full
    ld      %r11, FT_LR(%r1)
    mtlr    %r11
    .if \full
    ld      %r11, FT_GPR + 11*8(%r1)
    ld      %r12, FT_GPR + 12*8(%r1)
    .endif
    addi    %r1, %r1, FT_FRAME
    blr
    .endm

/* FT_FAST_CALL: the per-callback trampolines' fast path (the engine's
 * use_cpu_local), as x86_64's FAST_GUARDED_CALL: with r3-r6 the assist
 * function's arguments and r2 the kernel TOC, it reads the CPU index and
 * context r13-relative at the offsets FTRACE_FAST_CPU_OFF /
 * FTRACE_FAST_CTX_OFF, tests and sets the context's bit in the CPU's
 * recursion word of FTRACE_FAST_WORDS ({word_stride} bytes per CPU, bits
 * at {off_bits}, generation at {off_epoch}, quiet bits at {off_quiet}),
 * then `sync` (RecursionState::try_enter's SeqCst fence), stores the CPU
 * and context in FtraceRegs::spare[0..2] with FREGS_GUARDED as the
 * frame's flags, and calls the callback (the
 * extern "C" FtraceFunc at {ops_func} in the Ops: a global entry, called
 * with r12 = its address) if the Ops is still enabled (the word at
 * {ops_state} equals {ops_enabled}; never a RECURSION Ops, whose guard is
 * its own); afterwards it clears the bit with a release
 * store and moves the generation on when the word is zero (the guard's
 * drop; the one lwsync orders the callback's accesses before both
 * stores, and a waiter that sees the new generation before the cleared
 * bit is right too: the CPU has left). The word and the bit wait in
 * FT_PRIV0/1, outside the FtraceRegs. Anything unusual (no
 * fast path set up, a CPU id >= {max_cpus}, a context word above
 * {max_ctx}, the bit set, a quiet CPU) goes to ftrace_ops_assist_func,
 * which looks again and counts. Uses
 * r7-r11 and CR0 (FT_SAVE saved r7-r10; r11 and CR0 carry nothing into
 * a function entry). */
    .macro FT_FAST_CALL
    lis     %r7, FTRACE_FAST_WORDS@ha
    ld      %r7, FTRACE_FAST_WORDS@l(%r7)
    cmpdi   %r7, 0
    beq     2f
    lis     %r8, FTRACE_FAST_CPU_OFF@ha
    ld      %r8, FTRACE_FAST_CPU_OFF@l(%r8)
    lwzx    %r8, %r13, %r8                      /* the CPU */
    cmplwi  %r8, {max_cpus}
    bge     2f
    lis     %r9, FTRACE_FAST_CTX_OFF@ha
    ld      %r9, FTRACE_FAST_CTX_OFF@l(%r9)
    lwzx    %r9, %r13, %r9                      /* its context */
    cmplwi  %r9, {max_ctx}                      /* not a context: */
    bgt     2f                                  /* the careful path */
    std     %r8, FT_REGS + {off_spare}(%r1)
    std     %r9, FT_REGS + {off_spare} + 8(%r1)
    li      %r10, {fregs_guarded}               /* FREGS_GUARDED over FT_SAVE's 0 */
    std     %r10, FT_REGS + {off_flags}(%r1)
    mulli   %r8, %r8, {word_stride}
    add     %r7, %r7, %r8                       /* its recursion word */
    li      %r11, 1
    slw     %r11, %r11, %r9                     /* the context's bit */
    lwz     %r10, {off_bits}(%r7)
    and.    %r8, %r10, %r11
    bne     2f
    lwz     %r8, {off_quiet}(%r7)
    and.    %r8, %r8, %r11
    bne     2f
    or      %r10, %r10, %r11
    stw     %r10, {off_bits}(%r7)
    sync
    std     %r7, FT_PRIV0(%r1)
    std     %r11, FT_PRIV1(%r1)
    lhz     %r8, {ops_state_hi}(%r5)        /* the state's upper half */
    cmplwi  %r8, {ops_enabled} >> 16        /* enabled, guard not its own */
    bne     4f
    ld      %r12, {ops_func}(%r5)
    mtctr   %r12
    bctrl
4:
    ld      %r7, FT_PRIV0(%r1)
    ld      %r11, FT_PRIV1(%r1)
    lwz     %r10, {off_bits}(%r7)
    andc    %r10, %r10, %r11
    lwsync
    stw     %r10, {off_bits}(%r7)
    cmpwi   %r10, 0
    bne     3f
    ld      %r8, {off_epoch}(%r7)
    addi    %r8, %r8, 1
    std     %r8, {off_epoch}(%r7)
3:
    .endm

/* FT_FAST_CALL's careful path: placed after the trampoline's return by
 * FT_TRAMP (label 2, back to label 3), so the common path runs straight
 * through. */
    .macro FT_CAREFUL_CALL
2:
    bl      ftrace_ops_assist_func
    nop
    b       3b
    .endm

    .section .text.ftrace_trampolines, "ax"

/* FT_TRAMP name, full, slot, inner
 *
 * full = 0 (ftrace_caller): argument registers only; resumes at site+4.
 * full = 1 (ftrace_regs_caller): the full frame (FREGS_FULL); every GPR
 *   but r1/r13 is restored from it, and a changed regs.ip redirects the
 *   call.
 * slot < 0: a shared trampoline: op = FTRACE_TRACE_OP; the dispatcher is
 *   called through the patch point at the exported label `inner`:
 *   update_ftrace_func rewrites that `bl` (one aligned word) to the
 *   dispatcher's local entry; the call depends on r2 = the kernel TOC and
 *   r3-r6 as FT_SAVE and the load of r5 set them up.
 * slot >= 0: a pool trampoline: op = ftrace_tramp_ops[slot], calls
 *   ftrace_ops_assist_func (the linker resolves the local entry; the nop
 *   is the usual TOC-restore slot, never needed in this single-TOC
 *   kernel). */
    .macro FT_TRAMP name, full, slot, inner
    .balign 16
    .globl \name
    .type \name, @function
\name:
    FT_SAVE \full
    .if \slot < 0
    lis     %r5, FTRACE_TRACE_OP@ha
    ld      %r5, FTRACE_TRACE_OP@l(%r5)         /* op */
    .globl \inner
\inner:
    bl      ftrace_stub
    .else
    lis     %r5, (ftrace_tramp_ops + 8 * \slot)@ha
    ld      %r5, (ftrace_tramp_ops + 8 * \slot)@l(%r5)  /* op: this slot's */
    .if \full
    bl      ftrace_ops_assist_func
    nop
    .else
    /* An enabled RECURSION callback takes the guard itself: called
     * straight away. Any other state word takes the guarded path, after
     * the return (label 8, back to label 9). */
    lhz     %r8, {ops_state_hi}(%r5)
    cmplwi  %r8, {ops_self} >> 16
    bne     8f
    ld      %r12, {ops_func}(%r5)
    mtctr   %r12
    bctrl
9:
    .endif
    .endif
    .if \full
    ld      %r11, FT_RESUME(%r1)
    ld      %r12, FT_REGS + {off_ip}(%r1)
    cmpd    %r11, %r12
    bne     .L\name\()_redirect
    .endif
    FT_RESTORE \full
    FT_RETURN \full
    .if \slot >= 0 && !\full
8:
    FT_FAST_CALL
    b       9b
    FT_CAREFUL_CALL
    .endif
    .if \full
.L\name\()_redirect:
    /* Continue at regs.ip as if the traced function's caller had called
     * it: LR = return address (gpr[0]), CTR = r12 = the target (ELFv2
     * global entries derive the TOC from r12). CTR, volatile at a function
     * entry, is not restored. */
    FT_RESTORE 1
    mtlr    %r0
    ld      %r12, FT_REGS + {off_ip}(%r1)
    mtctr   %r12
    ld      %r11, FT_GPR + 11*8(%r1)
    addi    %r1, %r1, FT_FRAME
    bctr
    .endif
    .size \name, . - \name
    .endm

    FT_TRAMP ftrace_caller, 0, -1, ftrace_call
    FT_TRAMP ftrace_regs_caller, 1, -1, ftrace_regs_call

/* The pool: slot i's two entries; .Lftrace_ops_nslots counts the slots
 * (checked against {nslots}). */
    .set .Lftrace_ops_nslots, 0
    .irp i, 0, 1, 2, 3, 4, 5, 6, 7
    FT_TRAMP ftrace_ops_tramp_\i, 0, \i
    FT_TRAMP ftrace_ops_regs_tramp_\i, 1, \i
    .set .Lftrace_ops_nslots, .Lftrace_ops_nslots + 1
    .endr
    .if .Lftrace_ops_nslots != {nslots}
    .error "ppc64 ftrace_64.S: the pool must have crate::tramp::OPS_TRAMP_SLOTS slots"
    .endif

/* return_to_handler: the return hook of crate::fgraph
 * (Ppc64Arch::return_hook). A hooked function's `blr` lands here (the
 * trampoline stored our address in the frame's gpr[0], which the stub's
 * `mtlr r0` made the function's LR) with r1 = its entry r1 and its result
 * in r3/r4 (f1-f8 for floating-point results). They are kept, and r2;
 * ftrace_return_to_handler(sp_lo = sp_hi = r1, r3, r4) checks and pops the
 * shadow frame and returns the original return address, to which we return
 * with `mtlr; blr` (a return, as the caller's `bl` expects, not a `bctr`). */
    .set RTH_R3,    96                      /* after header (32) + params (64) */
    .set RTH_R4,    RTH_R3 + 8
    .set RTH_R2,    RTH_R4 + 8
    .set RTH_MSR,   RTH_R2 + 8
    .set RTH_FRAME, (RTH_MSR + 8 + 15) & ~15
    .balign 16
    .globl return_to_handler
    .type return_to_handler, @function
return_to_handler:
    stdu    %r1, -RTH_FRAME(%r1)
    std     %r3, RTH_R3(%r1)
    std     %r4, RTH_R4(%r1)
    std     %r2, RTH_R2(%r1)
    mfmsr   %r11                                /* f1-f8 kept: MSR.FP off */
    std     %r11, RTH_MSR(%r1)
    li      %r12, MSR_FP
    andc    %r12, %r11, %r12
    mtmsrd  %r12
    lis     %r2, .TOC.@ha
    addi    %r2, %r2, .TOC.@l
    mr      %r5, %r3                            /* ret0 */
    mr      %r6, %r4                            /* ret1 */
    addi    %r3, %r1, RTH_FRAME                 /* sp_lo: the entry r1 */
    mr      %r4, %r3                            /* sp_hi */
    bl      ftrace_return_to_handler
    nop
    mtlr    %r3                                 /* the original return address */
    ld      %r11, RTH_MSR(%r1)
    mtmsrd  %r11
    isync
    ld      %r2, RTH_R2(%r1)
    ld      %r4, RTH_R4(%r1)
    ld      %r3, RTH_R3(%r1)
    addi    %r1, %r1, RTH_FRAME
    blr
    .size return_to_handler, . - return_to_handler

/* The initial target of both patch points: returns at once. */
    .balign 4
    .globl ftrace_stub
    .type ftrace_stub, @function
ftrace_stub:
    blr
    .size ftrace_stub, . - ftrace_stub

/* Entries of the pool for mod.rs: the argument-register entries of every
 * slot, then the full-frame entries. */
    .section .rodata.ftrace_ops_tramps, "a"
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
