//! Interrupt-context marks (Linux's `irq_enter`/`irq_exit`,
//! `nmi_enter`/`nmi_exit` and the hardirq/softirq parts of
//! `preempt_count`), for kernels that have no such bookkeeping yet.
//!
//! A kernel calls [`ContextMarks::irq_enter`] first thing in each hardware
//! interrupt or exception handler and [`ContextMarks::irq_exit`] last, and
//! its [`Platform::context`](crate::Platform::context) returns
//! [`ContextMarks::context`]. The tracer then keeps an interrupt's calls
//! apart from the code it interrupted (one recursion bit per context), the
//! function tracer's flags column shows `h` for them, and the
//! function_graph tracer can leave them out (`funcgraph-irqs`).
//!
//! Counts nest (an exception inside an interrupt handler), one word per CPU,
//! lock-free; this crate is never instrumented, so the marks may be called
//! from handlers that must not be traced.
//!
//! ```
//! use ftrace::Context;
//! use ftrace::context::ContextMarks;
//!
//! static MARKS: ContextMarks = ContextMarks::new();
//! assert_eq!(MARKS.context(0), Context::Normal);
//! MARKS.irq_enter(0);
//! assert_eq!(MARKS.context(0), Context::Irq);
//! MARKS.nmi_enter(0);
//! assert_eq!(MARKS.context(0), Context::Nmi);
//! MARKS.nmi_exit(0);
//! MARKS.irq_exit(0);
//! assert_eq!(MARKS.context(0), Context::Normal);
//! ```

use core::sync::atomic::{AtomicU32, Ordering};

use crate::platform::Context;
use crate::recursion::MAX_CPUS;

/// Bits of one nesting count in a CPU's word (up to 255 levels).
const COUNT_BITS: u32 = 8;
const SOFTIRQ_SHIFT: u32 = 0;
const IRQ_SHIFT: u32 = COUNT_BITS;
const NMI_SHIFT: u32 = 2 * COUNT_BITS;
const MASK: u32 = (1 << COUNT_BITS) - 1;

/// Per-CPU nesting counts of softirq, hardirq and NMI context.
///
/// CPU ids at or above [`MAX_CPUS`] are ignored (always
/// [`Context::Normal`]), like the tracer ignores them.
#[derive(Debug)]
pub struct ContextMarks {
    cpus: [AtomicU32; MAX_CPUS],
}

impl ContextMarks {
    /// Every CPU in [`Context::Normal`].
    pub const fn new() -> Self {
        ContextMarks {
            cpus: [const { AtomicU32::new(0) }; MAX_CPUS],
        }
    }

    fn add(&self, cpu: usize, shift: u32) {
        if let Some(w) = self.cpus.get(cpu) {
            // Only this CPU changes its word, and a nested handler restores
            // it before returning: a relaxed RMW is enough.
            w.fetch_add(1 << shift, Ordering::Relaxed);
        }
    }

    fn sub(&self, cpu: usize, shift: u32) {
        if let Some(w) = self.cpus.get(cpu) {
            // Only this CPU changes its word (see `add`), so the check and
            // the subtraction cannot race. An unbalanced exit leaves the
            // count at zero rather than borrowing from the next field.
            if (w.load(Ordering::Relaxed) >> shift) & MASK != 0 {
                w.fetch_sub(1 << shift, Ordering::Relaxed);
            }
        }
    }

    /// Entering a hardware interrupt or exception handler on `cpu`.
    pub fn irq_enter(&self, cpu: usize) {
        self.add(cpu, IRQ_SHIFT);
    }

    /// Leaving the handler [`irq_enter`](Self::irq_enter) marked.
    pub fn irq_exit(&self, cpu: usize) {
        self.sub(cpu, IRQ_SHIFT);
    }

    /// Entering a non-maskable interrupt (or machine check) handler.
    pub fn nmi_enter(&self, cpu: usize) {
        self.add(cpu, NMI_SHIFT);
    }

    /// Leaving the handler [`nmi_enter`](Self::nmi_enter) marked.
    pub fn nmi_exit(&self, cpu: usize) {
        self.sub(cpu, NMI_SHIFT);
    }

    /// Entering deferred interrupt work (a bottom half).
    pub fn softirq_enter(&self, cpu: usize) {
        self.add(cpu, SOFTIRQ_SHIFT);
    }

    /// Leaving the work [`softirq_enter`](Self::softirq_enter) marked.
    pub fn softirq_exit(&self, cpu: usize) {
        self.sub(cpu, SOFTIRQ_SHIFT);
    }

    /// The innermost context `cpu` is in: NMI over hardirq over softirq.
    pub fn context(&self, cpu: usize) -> Context {
        let Some(w) = self.cpus.get(cpu) else {
            return Context::Normal;
        };
        let v = w.load(Ordering::Relaxed);
        if (v >> NMI_SHIFT) & MASK != 0 {
            Context::Nmi
        } else if (v >> IRQ_SHIFT) & MASK != 0 {
            Context::Irq
        } else if (v >> SOFTIRQ_SHIFT) & MASK != 0 {
            Context::Softirq
        } else {
            Context::Normal
        }
    }
}

/// One set of marks for the whole kernel, for kernels that need no other.
pub static MARKS: ContextMarks = ContextMarks::new();

/// [`MARKS`]' context of CPU 0: a ready
/// [`FnPlatform::context`](crate::platform::FnPlatform::context) for a
/// kernel running on one CPU (never traced: this crate is not
/// instrumented).
pub fn cpu0_context() -> Context {
    MARKS.context(0)
}

impl Default for ContextMarks {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_and_unbalanced_exits() {
        let m = ContextMarks::new();
        m.softirq_enter(1);
        assert_eq!(m.context(1), Context::Softirq);
        assert_eq!(m.context(0), Context::Normal);
        m.irq_enter(1);
        m.irq_enter(1);
        m.irq_exit(1);
        assert_eq!(m.context(1), Context::Irq);
        m.irq_exit(1);
        assert_eq!(m.context(1), Context::Softirq);
        m.irq_exit(1);
        assert_eq!(m.context(1), Context::Softirq, "extra exit ignored");
        m.softirq_exit(1);
        assert_eq!(m.context(1), Context::Normal);
        m.irq_enter(MAX_CPUS);
        assert_eq!(m.context(MAX_CPUS), Context::Normal);
    }
}
