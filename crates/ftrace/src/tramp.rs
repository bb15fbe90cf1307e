//! Per-callback trampolines (Linux's `ftrace_ops::trampoline`, built by
//! `arch_ftrace_update_trampoline`): a site wanted by exactly one callback
//! calls that callback's own trampoline, which passes the callback straight
//! to [`ftrace_ops_assist_func`](crate::ops::ftrace_ops_assist_func), with
//! no list walk and no filter check.
//!
//! Linux allocates each trampoline at run time by copying `ftrace_caller`
//! into fresh executable memory. A `no_std` kernel may have no such memory,
//! so the backends here assemble a **static pool** instead: for each of
//! [`OPS_TRAMP_SLOTS`] slots, two copies of the shared trampolines (one
//! saving what `ftrace_caller` saves, one saving the full frame like
//! `ftrace_regs_caller`) that load their callback from slot `i` of
//! [`FTRACE_TRAMP_OPS`] (symbol `ftrace_tramp_ops`) and call the assist
//! function directly. [`OpsTrampPool`] hands a slot to each callback on its
//! first request and keeps it for the kernel's lifetime; the callback's
//! [`needs_regs`](Ops::needs_regs) picks which of the slot's two entries
//! its sites call. When every slot is taken, the callback gets none and its
//! sites use the shared trampolines, as they would on a backend without a
//! pool.
//!
//! Everything here is plain logic over atomics: the backends supply the
//! entry addresses; host tests supply fake ones.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::ops::Ops;

/// Number of slots of the per-callback trampoline pool.
pub const OPS_TRAMP_SLOTS: usize = 8;

/// Symbol `ftrace_tramp_ops`: slot `i` holds the address of the [`Ops`]
/// that the pool trampolines of slot `i` pass to
/// [`ftrace_ops_assist_func`](crate::ops::ftrace_ops_assist_func), or 0
/// while the slot is free. Written once per slot by [`OpsSlots::assign`]
/// (never changed afterwards), read by the trampolines.
#[unsafe(export_name = "ftrace_tramp_ops")]
pub static FTRACE_TRAMP_OPS: [AtomicUsize; OPS_TRAMP_SLOTS] =
    [const { AtomicUsize::new(0) }; OPS_TRAMP_SLOTS];

/// A table of slots, each given to one callback (keyed by its address) for
/// good. Lock-free: backends call it through `&self`.
#[derive(Debug, Clone, Copy)]
pub struct OpsSlots {
    table: &'static [AtomicUsize],
}

impl OpsSlots {
    /// Slots over `table` (host tests use their own; kernels use
    /// [`OpsSlots::global`]).
    pub const fn new(table: &'static [AtomicUsize]) -> Self {
        OpsSlots { table }
    }

    /// The slots the assembled pool trampolines read: [`FTRACE_TRAMP_OPS`].
    pub const fn global() -> Self {
        Self::new(&FTRACE_TRAMP_OPS)
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True for a table without slots.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The slot of `ops`, if it has one.
    pub fn lookup(&self, ops: &Ops) -> Option<usize> {
        let key = ops as *const Ops as usize;
        self.table
            .iter()
            .position(|s| s.load(Ordering::Acquire) == key)
    }

    /// The slot of `ops`, taking the first free one on its first request;
    /// `None` when every slot belongs to another callback.
    ///
    /// Slots are never given back: a trampoline may still be running the
    /// callback, and an [`Ops`] that can be registered is `'static`. Two
    /// concurrent first requests of one callback get the same slot: both
    /// try the slots in the same order and a slot changes only once, from
    /// 0 to its owner.
    pub fn assign(&self, ops: &Ops) -> Option<usize> {
        let key = ops as *const Ops as usize;
        if let Some(i) = self.lookup(ops) {
            return Some(i);
        }
        for (i, s) in self.table.iter().enumerate() {
            match s.compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(i),
                Err(owner) if owner == key => return Some(i),
                Err(_) => {}
            }
        }
        None
    }

    /// The address of the callback owning slot `i` (0: free).
    pub fn owner(&self, i: usize) -> usize {
        self.table.get(i).map_or(0, |s| s.load(Ordering::Acquire))
    }
}

/// A backend's pool of per-callback trampolines: the slots and, per slot,
/// the entry saving the argument registers (a copy of `ftrace_caller`) and
/// the one saving the full frame (a copy of `ftrace_regs_caller`).
#[derive(Debug, Clone, Copy)]
pub struct OpsTrampPool {
    slots: OpsSlots,
    caller: [usize; OPS_TRAMP_SLOTS],
    regs_caller: [usize; OPS_TRAMP_SLOTS],
}

impl OpsTrampPool {
    /// A pool whose slot `i` has the entries `caller[i]` and
    /// `regs_caller[i]`. Only the first `slots.len()` entries (at most
    /// [`OPS_TRAMP_SLOTS`]) are used.
    pub const fn new(
        slots: OpsSlots,
        caller: [usize; OPS_TRAMP_SLOTS],
        regs_caller: [usize; OPS_TRAMP_SLOTS],
    ) -> Self {
        OpsTrampPool {
            slots,
            caller,
            regs_caller,
        }
    }

    /// The slots.
    pub fn slots(&self) -> &OpsSlots {
        &self.slots
    }

    /// The entry of slot `i` for a callback that does (`regs`) or does not
    /// need the full frame.
    pub fn entry(&self, i: usize, regs: bool) -> Option<usize> {
        let table = if regs {
            &self.regs_caller
        } else {
            &self.caller
        };
        table.get(i).copied().filter(|_| i < self.slots.len())
    }

    /// Every entry of the pool, for backends that check reach once.
    pub fn entries(&self) -> impl Iterator<Item = usize> + '_ {
        let n = self.slots.len().min(OPS_TRAMP_SLOTS);
        self.caller[..n]
            .iter()
            .chain(&self.regs_caller[..n])
            .copied()
    }

    /// What [`Arch::ops_trampoline`](crate::Arch::ops_trampoline) returns:
    /// the trampoline of `ops`' slot (assigned on first request), the
    /// full-frame entry when `ops` [needs registers](Ops::needs_regs);
    /// `None` when the pool is exhausted.
    pub fn trampoline(&self, ops: &Ops) -> Option<usize> {
        let i = self.slots.assign(ops)?;
        self.entry(i, ops.needs_regs())
    }

    /// The callback owning the pool trampoline at `addr`, as the address of
    /// its [`Ops`] (diagnostics and tests).
    pub fn owner_of(&self, addr: usize) -> Option<usize> {
        let n = self.slots.len().min(OPS_TRAMP_SLOTS);
        let i = (0..n).find(|&i| self.caller[i] == addr || self.regs_caller[i] == addr)?;
        Some(self.slots.owner(i)).filter(|&o| o != 0)
    }
}

#[cfg(test)]
mod tests {
    use alloc::boxed::Box;
    use alloc::vec::Vec;

    use super::*;
    use crate::ops::OpsFlags;
    use crate::regs::FtraceRegs;

    extern "C" fn cb(_: usize, _: usize, _: &Ops, _: &mut FtraceRegs) {}

    fn table(n: usize) -> OpsSlots {
        let t: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        OpsSlots::new(Box::leak(t.into_boxed_slice()))
    }

    fn ops(flags: OpsFlags) -> &'static Ops {
        Box::leak(Box::new(Ops::new(cb, flags)))
    }

    fn pool(n: usize) -> OpsTrampPool {
        let caller = core::array::from_fn(|i| 0x1000 + 0x100 * i);
        let regs = core::array::from_fn(|i| 0x8000 + 0x100 * i);
        OpsTrampPool::new(table(n), caller, regs)
    }

    #[test]
    fn first_request_assigns_in_order_and_sticks() {
        let s = table(3);
        let (a, b) = (ops(OpsFlags::empty()), ops(OpsFlags::empty()));
        assert_eq!(s.lookup(a), None);
        assert_eq!(s.assign(a), Some(0));
        assert_eq!(s.assign(b), Some(1));
        assert_eq!(s.assign(a), Some(0), "same slot on every request");
        assert_eq!(s.lookup(b), Some(1));
        assert_eq!(s.owner(0), a as *const Ops as usize);
        assert_eq!(s.owner(2), 0);
        assert_eq!(s.owner(7), 0, "out of the table");
    }

    #[test]
    fn exhausted_pool_gives_none_and_keeps_owners() {
        let p = pool(2);
        let all: Vec<&'static Ops> = (0..3).map(|_| ops(OpsFlags::empty())).collect();
        assert_eq!(p.trampoline(all[0]), Some(0x1000));
        assert_eq!(p.trampoline(all[1]), Some(0x1100));
        assert_eq!(p.trampoline(all[2]), None, "no free slot: the shared path");
        assert_eq!(p.trampoline(all[0]), Some(0x1000), "owners keep theirs");
        assert_eq!(p.owner_of(0x1100), Some(all[1] as *const Ops as usize));
        assert_eq!(p.owner_of(0x1200), None, "beyond the table");
        assert_eq!(p.entries().count(), 4);
    }

    #[test]
    fn regs_callbacks_get_the_full_frame_entry() {
        let p = pool(8);
        let plain = ops(OpsFlags::empty());
        let regs = ops(OpsFlags::SAVE_REGS);
        let ipmod = ops(OpsFlags::IPMODIFY);
        assert_eq!(p.trampoline(plain), Some(0x1000));
        assert_eq!(p.trampoline(regs), Some(0x8100));
        assert_eq!(p.trampoline(ipmod), Some(0x8200));
        assert_eq!(p.owner_of(0x8200), Some(ipmod as *const Ops as usize));
        assert_eq!(
            p.owner_of(0x1200),
            Some(ipmod as *const Ops as usize),
            "both entries of a slot"
        );
    }

    #[test]
    fn concurrent_first_requests_agree() {
        let s = table(OPS_TRAMP_SLOTS);
        let all: Vec<&'static Ops> = (0..OPS_TRAMP_SLOTS)
            .map(|_| ops(OpsFlags::empty()))
            .collect();
        let got: Vec<Vec<Option<usize>>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|_| sc.spawn(|| all.iter().map(|o| s.assign(o)).collect()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for g in &got[1..] {
            assert_eq!(g, &got[0], "every thread sees the same slots");
        }
        let mut slots: Vec<usize> = got[0].iter().map(|s| s.unwrap()).collect();
        slots.sort_unstable();
        assert_eq!(
            slots,
            (0..OPS_TRAMP_SLOTS).collect::<Vec<_>>(),
            "one slot each"
        );
    }
}
