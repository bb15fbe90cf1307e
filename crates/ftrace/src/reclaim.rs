//! Reclamation: freeing what lock-free readers may still hold, in one
//! place for the whole crate.
//!
//! Two kinds of readers, two waits with the same rule ("free only what
//! every reader that could have loaded it has let go"):
//!
//! - `Retired`: snapshots the update engine unpublished (callback lists,
//!   filter sets). Their readers are the dispatchers, which hold the
//!   per-CPU recursion guard while they read; `Retired::free_after_grace`
//!   waits for a grace period of those guards
//!   ([`RecursionState::synchronize`]) and frees everything retired before
//!   it. Per-CPU words: a busy CPU never keeps another from making
//!   progress, and new readers never delay the wait.
//! - [`Readers`]: a counter for readers that have no CPU id at hand (x86's
//!   `#BP` handler reading the batch in flight). The writer unpublishes,
//!   then waits for the counter to reach zero. That terminates because, once
//!   a table is unpublished and its `int3` bytes are gone, no new reader can
//!   find it: only readers already inside are waited for.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::ops::{IpSet, OpsList};
use crate::recursion::RecursionState;

/// One snapshot replaced while dispatchers may still read it.
pub(crate) enum Item {
    /// A published callback list.
    List(NonNull<OpsList>),
    /// A published filter or notrace set.
    Set(NonNull<IpSet>),
}

/// Room [`Retired`] keeps for the next update once its snapshots are
/// freed (an update retires one or two).
const RETIRED_KEPT: usize = 8;

/// Snapshots waiting for a grace period.
#[derive(Default)]
pub(crate) struct Retired {
    items: Vec<Item>,
}

// SAFETY: retired snapshots are plain heap data (slices of `&'static Ops`
// and of `usize`) owned by the engine; moving the ownership to another
// thread is fine.
unsafe impl Send for Retired {}

impl Retired {
    /// Adds an unpublished snapshot.
    pub(crate) fn push(&mut self, item: Item) {
        self.items.push(item);
    }

    /// Snapshots not yet freed.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Waits for a grace period of `readers` (`own`: the caller's CPU) and
    /// frees every snapshot retired before it. Returns false, freeing
    /// nothing, when the caller is itself inside a guarded region (it cannot
    /// wait for itself).
    pub(crate) fn free_after_grace(&mut self, readers: &RecursionState, own: usize) -> bool {
        if !readers.synchronize(own) {
            return false;
        }
        // The list keeps a small room for the next update; a larger one
        // (snapshots pile up while other CPUs keep dispatching) is freed.
        for item in self.items.drain(..) {
            // SAFETY: both pointers came from `Box::into_raw` and were
            // unpublished before the grace period began: every CPU that could
            // have loaded them has left the dispatchers since, and later
            // readers load the replacement.
            unsafe {
                match item {
                    Item::List(p) => drop(Box::from_raw(p.as_ptr())),
                    Item::Set(p) => drop(Box::from_raw(p.as_ptr())),
                }
            }
        }
        if self.items.capacity() > RETIRED_KEPT {
            self.items = Vec::new();
        }
        true
    }
}

/// A count of readers inside a read-side section (module docs: for
/// readers without a CPU id).
#[derive(Debug, Default)]
pub struct Readers {
    count: AtomicUsize,
}

impl Readers {
    /// No reader.
    pub const fn new() -> Self {
        Readers {
            count: AtomicUsize::new(0),
        }
    }

    /// Enters a read-side section (before loading the published pointer).
    pub fn enter(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// Leaves it (after the last use of what was loaded).
    pub fn exit(&self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }

    /// Waits until no reader is inside. Call after unpublishing, and only
    /// where no new reader can find the old object (module docs).
    pub fn wait_quiescent(&self) {
        while self.count.load(Ordering::SeqCst) != 0 {
            core::hint::spin_loop();
        }
    }
}
