/* Entering and leaving a handler, for trap_64.S and trap_32.S (trap.rs
 * assembles this file in front of either): the CPU's nesting depth
 * (%gs:{trap_depth}, a u32) and its context word (%gs:{trap_context}: what
 * the tracer's Platform::context and its trampolines read) move together.
 * The word is set after the depth goes up and cleared only when the
 * outermost handler leaves; a nested handler between the two instructions
 * leaves both as it found them. */
.macro TRAP_ENTER
    incl %gs:{trap_depth}
    movl ${ctx_irq}, %gs:{trap_context}
.endm

.macro TRAP_EXIT
    decl %gs:{trap_depth}
    jnz .Ltrap_exit_nested\@
    movl $0, %gs:{trap_context}
.Ltrap_exit_nested\@:
.endm

