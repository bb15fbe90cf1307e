/* ppc64 (big-endian, ELFv2) entry under QEMU pseries with VOF (x-vof=on).
 *
 * QEMU loads the ELF at 0x400000 (the linker script's load addresses are
 * link address - 0x400000) and the firmware jumps to the lowest loaded
 * byte, which must be _start: it does not look at e_entry. We arrive in
 * 32-bit mode (MSR.SF clear), MMU off (real mode, so addresses are physical),
 * external interrupts off, with r5 = the Open Firmware client-interface
 * entry point.
 *
 * _start switches to 64-bit mode, loads the TOC pointer and the per-CPU
 * register, zeroes .bss, sets up the boot stack and calls
 * ppc64_entry(client_interface) (Rust). Secondary CPUs start in
 * boot/ppc64_smp.S. */

    .set BOOT_STACK_SIZE, 128 * 1024

    .section .text.boot, "ax"
    .balign 4
    .globl _start
    .type _start, @function
_start:
    /* 64-bit mode: MSR.SF is the most significant bit. Everything we touch
     * lies below 4 GiB, so code fetched before the switch was at the same
     * addresses either way. */
    mfmsr   %r11
    li      %r12, 1
    rldicr  %r12, %r12, 63, 0           /* r12 = 1 << 63 */
    or      %r11, %r11, %r12
    /* MSR.FP: the ELFv2 ABI is hard-float (rustc no longer accepts
     * -hard-float with it), so compiled code may use the FPRs. */
    ori     %r11, %r11, 0x2000
    mtmsrd  %r11
    isync

    /* TOC pointer for the medium code model (linked below 2 GiB, so the
     * sign-extending lis is exact). */
    lis     %r2, .TOC.@ha
    addi    %r2, %r2, .TOC.@l

    /* Per-CPU register (boot/ppc64_smp.S): r13 and SPRG0 = CPU 0's
     * PerCpu (kernel/src/arch/ppc64/smp.rs), for good. It lives in .data,
     * so the .bss clearing below leaves it alone. */
    lis     %r13, ppc64_percpu@ha
    addi    %r13, %r13, ppc64_percpu@l
    mtspr   272, %r13

    /* Keep the client-interface entry (r5) in a non-volatile register. */
    mr      %r31, %r5

    /* Zero .bss one doubleword at a time (the linker script aligns both
     * ends to 8). The stack and the heap live there. */
    lis     %r3, __bss_start@ha
    addi    %r3, %r3, __bss_start@l
    lis     %r4, __bss_stop@ha
    addi    %r4, %r4, __bss_stop@l
    li      %r0, 0
1:  cmpld   %r3, %r4
    bge     2f
    std     %r0, 0(%r3)
    addi    %r3, %r3, 8
    b       1b
2:
    /* Stack: 16-byte aligned top, then an initial 32-byte ELFv2 frame whose
     * back chain is 0, which ends frame-pointer / back-chain walks. */
    lis     %r1, ppc64_boot_stack_top@ha
    addi    %r1, %r1, ppc64_boot_stack_top@l
    li      %r0, 0
    stdu    %r0, -32(%r1)

    /* ppc64_entry(client_interface). Called through ctr with r12 = its
     * global entry, so its TOC-setup prologue (if any) computes r2 itself. */
    mr      %r3, %r31
    li      %r31, 0                     /* no caller frame pointer */
    lis     %r12, ppc64_entry@ha
    addi    %r12, %r12, ppc64_entry@l
    mtctr   %r12
    bctrl
3:  b       3b                          /* ppc64_entry never returns */
    .size _start, . - _start

/* i32 ppc64_of_call(u32 *args, usize entry)
 *
 * Calls the Open Firmware client interface at `entry` with r3 = `args` (the
 * client-interface argument array of 32-bit cells) and returns its r3.
 *
 * The firmware is a 32-bit client-interface implementation: it runs in
 * 32-bit mode and preserves only the low halves of the non-volatile
 * registers. So this drops MSR.SF for the call, and saves and restores r2
 * and r13-r31 in full around it. Everything passed must lie below 4 GiB
 * (it does: the kernel, its statics and its stack are all low). */
    .section .text.ppc64_of_call, "ax"
    .balign 4
    .globl ppc64_of_call
    .type ppc64_of_call, @function
    .set OFC_FRAME, 224                 /* 32 header + 20 GPRs + MSR, 16-aligned */
    .set OFC_SAVE, 32                   /* first save slot */
ppc64_of_call:
    mflr    %r0
    std     %r0, 16(%r1)                /* LR save slot of the caller's frame */
    stdu    %r1, -OFC_FRAME(%r1)
    std     %r2,  OFC_SAVE + 0*8(%r1)
    std     %r13, OFC_SAVE + 1*8(%r1)
    std     %r14, OFC_SAVE + 2*8(%r1)
    std     %r15, OFC_SAVE + 3*8(%r1)
    std     %r16, OFC_SAVE + 4*8(%r1)
    std     %r17, OFC_SAVE + 5*8(%r1)
    std     %r18, OFC_SAVE + 6*8(%r1)
    std     %r19, OFC_SAVE + 7*8(%r1)
    std     %r20, OFC_SAVE + 8*8(%r1)
    std     %r21, OFC_SAVE + 9*8(%r1)
    std     %r22, OFC_SAVE + 10*8(%r1)
    std     %r23, OFC_SAVE + 11*8(%r1)
    std     %r24, OFC_SAVE + 12*8(%r1)
    std     %r25, OFC_SAVE + 13*8(%r1)
    std     %r26, OFC_SAVE + 14*8(%r1)
    std     %r27, OFC_SAVE + 15*8(%r1)
    std     %r28, OFC_SAVE + 16*8(%r1)
    std     %r29, OFC_SAVE + 17*8(%r1)
    std     %r30, OFC_SAVE + 18*8(%r1)
    std     %r31, OFC_SAVE + 19*8(%r1)
    mfmsr   %r11
    std     %r11, OFC_SAVE + 20*8(%r1)

    mtctr   %r4
    rldicl  %r12, %r11, 1, 1            /* rotate SF to bit 63 and clear it */
    rotldi  %r12, %r12, 63              /* rotate back: MSR with SF = 0 */
    mtmsrd  %r12
    isync
    bctrl                               /* r3 = args */

    /* Back in 64-bit mode. r1 came back intact (low half preserved, high
     * half was zero). */
    ld      %r11, OFC_SAVE + 20*8(%r1)
    mtmsrd  %r11
    isync
    ld      %r2,  OFC_SAVE + 0*8(%r1)
    ld      %r13, OFC_SAVE + 1*8(%r1)
    ld      %r14, OFC_SAVE + 2*8(%r1)
    ld      %r15, OFC_SAVE + 3*8(%r1)
    ld      %r16, OFC_SAVE + 4*8(%r1)
    ld      %r17, OFC_SAVE + 5*8(%r1)
    ld      %r18, OFC_SAVE + 6*8(%r1)
    ld      %r19, OFC_SAVE + 7*8(%r1)
    ld      %r20, OFC_SAVE + 8*8(%r1)
    ld      %r21, OFC_SAVE + 9*8(%r1)
    ld      %r22, OFC_SAVE + 10*8(%r1)
    ld      %r23, OFC_SAVE + 11*8(%r1)
    ld      %r24, OFC_SAVE + 12*8(%r1)
    ld      %r25, OFC_SAVE + 13*8(%r1)
    ld      %r26, OFC_SAVE + 14*8(%r1)
    ld      %r27, OFC_SAVE + 15*8(%r1)
    ld      %r28, OFC_SAVE + 16*8(%r1)
    ld      %r29, OFC_SAVE + 17*8(%r1)
    ld      %r30, OFC_SAVE + 18*8(%r1)
    ld      %r31, OFC_SAVE + 19*8(%r1)
    extsw   %r3, %r3                    /* the result is a 32-bit cell */
    addi    %r1, %r1, OFC_FRAME
    ld      %r0, 16(%r1)
    mtlr    %r0
    blr
    .size ppc64_of_call, . - ppc64_of_call

/* The first word of the ftrace stub area (.text.ftrace_stubs in
 * linker/ppc64.ld, which pads the rest with the same `trap`). It exists so
 * that the output section has an executable input section and so gets the
 * AX flags; it is not named .text.* so that .text does not swallow it. */
    .section .ftrace_stubs, "ax"
    .balign 16
    trap

/* Likewise the first word of the region's stub area
 * (.text.ftrace_region_stubs, test=region). */
    .section .ftrace_region_stubs, "ax"
    .balign 16
    trap

    .section .bss
    .balign 16
    /* Global: the panic backtrace (kernel/src/arch/ppc64/mod.rs) reads
     * frames only between these two. */
    .globl ppc64_boot_stack
ppc64_boot_stack:
    .skip BOOT_STACK_SIZE
    .globl ppc64_boot_stack_top
ppc64_boot_stack_top:
