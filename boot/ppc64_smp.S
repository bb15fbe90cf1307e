/* ppc64 multiprocessor entry code (kernel/src/arch/ppc64/smp.rs includes
 * this with global_asm!; the pc_* operands are offsets into its PerCpu).
 *
 * Per-CPU register: r13 holds the running CPU's PerCpu address, from boot
 * (_start for CPU 0, ppc64_secondary_start below for the others) to the
 * end. The ELFv2 ABI reserves r13 as the thread pointer, so compiled code
 * never allocates it (the kernel has no TLS), the ftrace trampolines never
 * restore it from their frames and ppc64_of_call saves it around the
 * firmware. SPRG0 holds the same address for the interrupt stubs, which
 * must not trust any GPR; SPRG1 is their scratch register.
 *
 * Interrupts (MMU off, so the vectors are real addresses): the stubs
 * ppc64_vec_ext (external, 0x500: IPIs), ppc64_vec_fp (floating point
 * unavailable, 0x800: a tracing callback used FP, reported as a panic) and
 * ppc64_vec_dec (decrementer, 0x900) are position independent and copied
 * there by install_vectors.
 * Each saves r11, r12, r13 and CTR in the PerCpu scratch slots, loads the
 * vector number into r11 and jumps to ppc64_irq_common in kernel text.
 * Interrupts are taken with MSR.EE (and FP, RI) cleared, so they never nest.
 */

    .section .text.ppc64_smp, "ax"

/* The vector stubs. Absolute addresses only (lis/addi of a symbol below
 * 2 GiB), so a copy runs anywhere. At most 32 instructions (0x900 + 32*4
 * = 0x980, the hypervisor decrementer's vector). */
    .macro VEC_STUB name, vector
    .balign 4
    .globl \name\()_start
\name\()_start:
    mtspr   273, %r13                   /* SPRG1 = interrupted r13 */
    mfspr   %r13, 272                   /* r13 = PerCpu (SPRG0) */
    std     %r11, {pc_r11}(%r13)
    std     %r12, {pc_r12}(%r13)
    mfspr   %r11, 273
    std     %r11, {pc_r13}(%r13)
    mfctr   %r11
    std     %r11, {pc_ctr}(%r13)
    lis     %r12, ppc64_irq_common@ha
    addi    %r12, %r12, ppc64_irq_common@l
    mtctr   %r12
    li      %r11, \vector
    bctr
    .globl \name\()_end
\name\()_end:
    .endm

    VEC_STUB ppc64_vec_ext, 0x500
    VEC_STUB ppc64_vec_fp, 0x800
    VEC_STUB ppc64_vec_dec, 0x900

/* Interrupt frame, on the interrupted stack below its 288-byte ELFv2
 * protected zone: ELFv2 header (back chain, CR, LR, TOC: 32 bytes; the
 * callee saves its LR at 16) and a 64-byte parameter save area, then the
 * interrupted state. The back chain is the interrupted r1. */
    .set IF_GPR,   96                   /* r0..r13 (r1's slot unused) */
    .set IF_CR,    IF_GPR + 14 * 8
    .set IF_XER,   IF_CR + 8
    .set IF_LR,    IF_XER + 8
    .set IF_CTR,   IF_LR + 8
    .set IF_SRR0,  IF_CTR + 8
    .set IF_SRR1,  IF_SRR0 + 8
    .set IF_FPR,   IF_SRR1 + 8          /* f0..f13 */
    .set IF_FPSCR, IF_FPR + 14 * 8
    .set IF_FRAME, (IF_FPSCR + 8 + 15) & ~15
    .set ABI_PROTECTED, 288

/* Common interrupt entry: r11 = vector, r13 = PerCpu whose scratch slots
 * hold the interrupted r11, r12, r13 and CTR; every other register is the
 * interrupted code's. Saves every register the ELFv2 ABI lets a callee
 * clobber (r0, r2-r12, CR, XER, LR, CTR, f0-f13, FPSCR) plus r13, SRR0 and
 * SRR1, sets MSR.FP (taking the interrupt cleared it; the kernel is
 * hard-float) and RI, calls ppc64_irq_handler(vector) with the kernel TOC,
 * restores everything and returns with rfid. */
    .balign 4
    .globl ppc64_irq_common
    .type ppc64_irq_common, @function
ppc64_irq_common:
    mr      %r12, %r1
    addi    %r1, %r1, -ABI_PROTECTED
    clrrdi  %r1, %r1, 4
    stdu    %r12, -IF_FRAME(%r1)
    std     %r0,  IF_GPR + 0*8(%r1)
    std     %r2,  IF_GPR + 2*8(%r1)
    std     %r3,  IF_GPR + 3*8(%r1)
    std     %r4,  IF_GPR + 4*8(%r1)
    std     %r5,  IF_GPR + 5*8(%r1)
    std     %r6,  IF_GPR + 6*8(%r1)
    std     %r7,  IF_GPR + 7*8(%r1)
    std     %r8,  IF_GPR + 8*8(%r1)
    std     %r9,  IF_GPR + 9*8(%r1)
    std     %r10, IF_GPR + 10*8(%r1)
    ld      %r12, {pc_r11}(%r13)
    std     %r12, IF_GPR + 11*8(%r1)
    ld      %r12, {pc_r12}(%r13)
    std     %r12, IF_GPR + 12*8(%r1)
    ld      %r12, {pc_r13}(%r13)
    std     %r12, IF_GPR + 13*8(%r1)
    ld      %r12, {pc_ctr}(%r13)
    std     %r12, IF_CTR(%r1)
    mfcr    %r12
    std     %r12, IF_CR(%r1)
    mfxer   %r12
    std     %r12, IF_XER(%r1)
    mflr    %r12
    std     %r12, IF_LR(%r1)
    mfspr   %r12, 26                    /* SRR0 */
    std     %r12, IF_SRR0(%r1)
    mfspr   %r12, 27                    /* SRR1 */
    std     %r12, IF_SRR1(%r1)

    mfmsr   %r12
    ori     %r12, %r12, 0x2002          /* MSR.FP | MSR.RI */
    mtmsrd  %r12
    isync
    stfd    %f0,  IF_FPR + 0*8(%r1)
    stfd    %f1,  IF_FPR + 1*8(%r1)
    stfd    %f2,  IF_FPR + 2*8(%r1)
    stfd    %f3,  IF_FPR + 3*8(%r1)
    stfd    %f4,  IF_FPR + 4*8(%r1)
    stfd    %f5,  IF_FPR + 5*8(%r1)
    stfd    %f6,  IF_FPR + 6*8(%r1)
    stfd    %f7,  IF_FPR + 7*8(%r1)
    stfd    %f8,  IF_FPR + 8*8(%r1)
    stfd    %f9,  IF_FPR + 9*8(%r1)
    stfd    %f10, IF_FPR + 10*8(%r1)
    stfd    %f11, IF_FPR + 11*8(%r1)
    stfd    %f12, IF_FPR + 12*8(%r1)
    stfd    %f13, IF_FPR + 13*8(%r1)
    mffs    %f0
    stfd    %f0,  IF_FPSCR(%r1)

    lis     %r2, .TOC.@ha
    addi    %r2, %r2, .TOC.@l
    mr      %r3, %r11
    lis     %r12, ppc64_irq_handler@ha
    addi    %r12, %r12, ppc64_irq_handler@l
    mtctr   %r12
    bctrl

    lfd     %f0,  IF_FPSCR(%r1)
    mtfsf   0xff, %f0
    lfd     %f0,  IF_FPR + 0*8(%r1)
    lfd     %f1,  IF_FPR + 1*8(%r1)
    lfd     %f2,  IF_FPR + 2*8(%r1)
    lfd     %f3,  IF_FPR + 3*8(%r1)
    lfd     %f4,  IF_FPR + 4*8(%r1)
    lfd     %f5,  IF_FPR + 5*8(%r1)
    lfd     %f6,  IF_FPR + 6*8(%r1)
    lfd     %f7,  IF_FPR + 7*8(%r1)
    lfd     %f8,  IF_FPR + 8*8(%r1)
    lfd     %f9,  IF_FPR + 9*8(%r1)
    lfd     %f10, IF_FPR + 10*8(%r1)
    lfd     %f11, IF_FPR + 11*8(%r1)
    lfd     %f12, IF_FPR + 12*8(%r1)
    lfd     %f13, IF_FPR + 13*8(%r1)
    ld      %r12, IF_CR(%r1)
    mtcrf   0xff, %r12
    ld      %r12, IF_XER(%r1)
    mtxer   %r12
    ld      %r12, IF_LR(%r1)
    mtlr    %r12
    ld      %r12, IF_CTR(%r1)
    mtctr   %r12
    /* From here SRR0/SRR1 hold the return state: clear MSR.RI (mtmsrd
     * L=1 changes only EE and RI; EE is already clear), as an interrupt
     * now would overwrite them. */
    mfmsr   %r12
    li      %r11, 2
    andc    %r12, %r12, %r11
    mtmsrd  %r12, 1
    ld      %r12, IF_SRR0(%r1)
    mtspr   26, %r12
    ld      %r12, IF_SRR1(%r1)
    mtspr   27, %r12
    ld      %r0,  IF_GPR + 0*8(%r1)
    ld      %r2,  IF_GPR + 2*8(%r1)
    ld      %r3,  IF_GPR + 3*8(%r1)
    ld      %r4,  IF_GPR + 4*8(%r1)
    ld      %r5,  IF_GPR + 5*8(%r1)
    ld      %r6,  IF_GPR + 6*8(%r1)
    ld      %r7,  IF_GPR + 7*8(%r1)
    ld      %r8,  IF_GPR + 8*8(%r1)
    ld      %r9,  IF_GPR + 9*8(%r1)
    ld      %r10, IF_GPR + 10*8(%r1)
    ld      %r11, IF_GPR + 11*8(%r1)
    ld      %r12, IF_GPR + 12*8(%r1)
    ld      %r13, IF_GPR + 13*8(%r1)
    ld      %r1,  0(%r1)                /* the back chain: interrupted r1 */
    rfid
    .size ppc64_irq_common, . - ppc64_irq_common

/* Where RTAS start-cpu starts a secondary CPU: real mode, 64-bit
 * (MSR = SF | ME), r3 = the argument smp_start passed: that CPU's PerCpu,
 * whose index and stack top are already filled in. Sets MSR.FP and RI, the
 * kernel TOC, r13 and SPRG0, the stack with an initial frame whose back
 * chain is 0, and calls ppc64_ap_entry(index), which never returns. */
    .balign 4
    .globl ppc64_secondary_start
    .type ppc64_secondary_start, @function
ppc64_secondary_start:
    mfmsr   %r11
    ori     %r11, %r11, 0x2002          /* MSR.FP | MSR.RI */
    mtmsrd  %r11
    isync
    lis     %r2, .TOC.@ha
    addi    %r2, %r2, .TOC.@l
    mr      %r13, %r3
    mtspr   272, %r3                    /* SPRG0 */
    ld      %r1, {pc_stack_top}(%r13)
    li      %r0, 0
    stdu    %r0, -32(%r1)
    ld      %r3, {pc_index}(%r13)
    li      %r31, 0
    lis     %r12, ppc64_ap_entry@ha
    addi    %r12, %r12, ppc64_ap_entry@l
    mtctr   %r12
    bctrl
1:  b       1b
    .size ppc64_secondary_start, . - ppc64_secondary_start

/* The secondary CPUs' stacks (CPU 0 runs on ppc64_boot_stack). */
    .section .bss
    .balign 16
    .globl ppc64_ap_stacks
ppc64_ap_stacks:
    .skip {ap_stack_size} * {ap_stacks}
    .globl ppc64_ap_stacks_end
ppc64_ap_stacks_end:
