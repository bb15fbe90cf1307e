//! The x86 backends (x86_64 and i686), sharing everything but the
//! trampolines.
//!
//! # Sites
//!
//! A site is 5 bytes: the canonical nop [`NOP5`] (`0f 1f 44 00 00`) while
//! disabled, `call rel32` ([`CALL_OPCODE`]) to a trampoline while enabled.
//! The compilers emit other patterns, which [`init_site`](crate::Arch::init_site)
//! checks and rewrites to [`NOP5`] once at boot:
//!
//! * x86_64 `-Zpatchable-function-entry=5`: `0f 1f 44 00 08` ([`NOP5_X86_64_COMPILER`]);
//! * i686 `-Zpatchable-function-entry=5`: `66 90 66 90 90` ([`NOP3_I686_COMPILER`]),
//!   three instructions, so it is rewritten before anything can be
//!   interrupted between them;
//! * i686 `-Zinstrument-mcount`: `call mcount` after the prologue.
//!
//! # Writing sites that may be executing: the `int3` protocol
//!
//! A 5-byte instruction cannot be written atomically with respect to a CPU
//! fetching it. Every change therefore goes through three phases, each
//! followed by one core synchronisation for the *whole* batch:
//!
//! 1. write `int3` (`cc`) over the first byte of every changing site;
//! 2. write the last four bytes of every site;
//! 3. write the new first byte of every site.
//!
//! Between phases 1 and 3 a CPU executing a site traps into `#BP`; the
//! kernel's handler calls [`poke_int3`] (or [`poke_int3_handler`]), which
//! finds the site in the published batch and emulates the *new* instruction
//! (the call, or the nop), so the CPU never sees a torn instruction.
//!
//! The batch is built by the [`Arch`](crate::Arch) hooks: `make_*` read and
//! compare the site and queue the write ([`Batch::queue`]); `finish_batch`
//! runs the three phases ([`Batch::commit`]). All of this is plain logic
//! over [`Platform`], tested on the host with the mock platform.
//!
//! # Choosing the backend
//!
//! [`X86_64`] (`x86_64.rs`) and [`I686`] (`i686.rs`) implement
//! [`Arch`](crate::Arch); only the trampolines (`ftrace_64.S`,
//! `ftrace_32.S`) are target-specific and are assembled only when building
//! for that target with `target_os = "none"`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::arch::{Insn, PatchError, SiteError, read_insn};
use crate::platform::Platform;
use crate::reclaim::Readers;

pub mod helpers;
pub mod i686;
pub mod x86_64;

pub use i686::{I686, I686Mode};
pub use x86_64::X86_64;

/// Bytes of a site.
pub const SITE_LEN: usize = 5;
/// The canonical 5-byte nop (`nopl 0x0(%rax,%rax,1)`) a disabled site holds.
pub const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];
/// The 5-byte nop rustc emits on x86_64 (same instruction, displacement 8).
pub const NOP5_X86_64_COMPILER: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x08];
/// The three nops rustc emits on i686 (`xchg %ax,%ax; xchg %ax,%ax; nop`).
pub const NOP3_I686_COMPILER: [u8; 5] = [0x66, 0x90, 0x66, 0x90, 0x90];
/// Opcode of `call rel32`.
pub const CALL_OPCODE: u8 = 0xe8;
/// Opcode of `int3`.
pub const INT3: u8 = 0xcc;

/// `call rel32` at `site` to `target`; fails when the displacement does not
/// fit in 32 bits (on i686 every target fits: addresses wrap).
pub fn encode_call(site: usize, target: usize) -> Result<Insn, PatchError> {
    Ok(Insn::new(&call_bytes(site, target)?))
}

/// The bytes of [`encode_call`].
pub fn call_bytes(site: usize, target: usize) -> Result<[u8; SITE_LEN], PatchError> {
    call_word(site, target).map(unpack5)
}

/// [`call_bytes`] as a [`pack5`] word.
#[inline(always)]
pub(crate) fn call_word(site: usize, target: usize) -> Result<u64, PatchError> {
    let next = site.wrapping_add(SITE_LEN);
    let rel: i32 = if usize::BITS == 32 {
        target.wrapping_sub(next) as u32 as i32
    } else {
        let rel = (target as i64).wrapping_sub(next as i64);
        i32::try_from(rel).map_err(|_| PatchError::OutOfRange { site, target })?
    };
    Ok(u64::from(CALL_OPCODE) | (u64::from(rel as u32) << 8))
}

/// A site's five bytes as one integer (little-endian, in the low 40
/// bits): the queue compares and moves them whole rather than byte by
/// byte (i686 spent about 100 instructions per site on byte moves).
#[inline(always)]
pub(crate) const fn pack5(b: [u8; SITE_LEN]) -> u64 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64 | (b[4] as u64) << 32
}

/// The bytes of a [`pack5`] word.
#[inline(always)]
pub(crate) const fn unpack5(v: u64) -> [u8; SITE_LEN] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4]]
}

/// Target of the `call rel32` in `bytes` at `site`; `None` when `bytes` is
/// not a 5-byte `call rel32`.
pub fn decode_call(site: usize, bytes: &[u8]) -> Option<usize> {
    match bytes {
        [CALL_OPCODE, a, b, c, d] => {
            let rel = i32::from_le_bytes([*a, *b, *c, *d]) as isize;
            Some(site.wrapping_add(SITE_LEN).wrapping_add_signed(rel))
        }
        _ => None,
    }
}

/// What executing a 5-byte site instruction does, for emulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulation {
    /// Continue at the next instruction (`site + 5`).
    Nop,
    /// Push `site + 5` and continue at the target.
    Call(usize),
}

/// Decodes the instructions a site may hold; `None` for anything else.
pub fn emulation_of(site: usize, bytes: &[u8]) -> Option<Emulation> {
    if bytes == NOP5 || bytes == NOP5_X86_64_COMPILER || bytes == NOP3_I686_COMPILER {
        Some(Emulation::Nop)
    } else {
        decode_call(site, bytes).map(Emulation::Call)
    }
}

/// The interrupted state the `#BP` handler lets [`poke_int3_handler`]
/// change. The kernel implements it over its trap frame.
pub trait TrapFrame {
    /// Instruction pointer saved by the trap: for `int3`, the address
    /// *after* the `cc` byte.
    fn ip(&self) -> usize;
    /// Sets where the interrupted code resumes.
    fn set_ip(&mut self, ip: usize);
    /// Pushes `value` onto the interrupted code's stack (as a `call` would).
    fn push(&mut self, value: usize);
    /// The byte at `site` now, read once; [`poke_int3`] calls it only with
    /// the address of the `int3` the CPU just executed. The
    /// default reads memory, which is right for every kernel; host tests
    /// of simulated text override it.
    fn site_byte(&self, site: usize) -> u8 {
        // SAFETY: `site` is the int3 this CPU just executed (the only way
        // poke_int3 calls this), so it is mapped and readable; a
        // byte load cannot tear.
        unsafe { core::ptr::read_volatile(site as *const u8) }
    }
}

/// One queued site change (24 bytes on x86_64, 20 on i686).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poke {
    /// Site address.
    pub addr: usize,
    /// What the site holds now (checked when queued), as [`pack5`] packs it.
    old: u64,
    /// What it will hold: a nop or a `call` (checked when queued), which
    /// the `#BP` handler emulates while the site holds `int3`, decoding
    /// it then.
    new: u64,
}

impl Poke {
    /// Bytes the site holds now (checked when queued).
    pub fn old_bytes(&self) -> [u8; SITE_LEN] {
        unpack5(self.old)
    }

    /// Bytes it will hold.
    pub fn new_bytes(&self) -> [u8; SITE_LEN] {
        unpack5(self.new)
    }
}

/// The table the `#BP` handler reads while a batch is in flight: sorted by
/// address. Published through [`IN_FLIGHT`].
struct PokeTable {
    /// A `Vec` as queued (sorted and merged): turning it into a boxed
    /// slice would copy the whole batch to shrink it (about 30
    /// instructions per site when enabling everything).
    pokes: Vec<Poke>,
}

/// The batch being committed (null when none): read lock-free by
/// [`poke_int3_handler`].
static IN_FLIGHT: AtomicPtr<PokeTable> = AtomicPtr::new(core::ptr::null_mut());
/// Handlers currently reading [`IN_FLIGHT`]; the committer frees a table
/// only after seeing none once it unpublished it ([`crate::reclaim`]).
static READERS: Readers = Readers::new();
/// `int3` traps that [`poke_int3_handler`] emulated (for tests).
static EMULATED: AtomicUsize = AtomicUsize::new(0);

/// Number of `int3` traps emulated so far.
pub fn emulated_count() -> usize {
    EMULATED.load(Ordering::Relaxed)
}

/// What [`poke_int3`] did with an `int3` trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int3 {
    /// The trap came from a site of the batch in flight: its new
    /// instruction was emulated on the frame.
    Emulated,
    /// The `int3` is gone: the site holds `byte` now. The frame was set to
    /// re-execute the site, which holds a whole instruction (the first byte
    /// is written last; kprobes' rule). A CPU executes an `int3` late when
    /// an emulator runs a stale translation of the site; a kernel under
    /// QEMU may want to make it drop that translation (the test kernel
    /// does an atomic same-value store of `byte`).
    Gone {
        /// The byte the site held when the handler looked.
        byte: u8,
    },
    /// Not a site the engine is rewriting (someone else's breakpoint); the
    /// frame is unchanged.
    NotOurs,
}

/// The `#BP` helper (Linux's `poke_int3_handler`): handles an `int3` trap
/// at `frame.ip() - 1` and says how ([`Int3`]).
///
/// Lock-free and allocation-free: callable from the exception handler with
/// any lock held by the interrupted code.
///
/// The site is looked up in the published batch; when it is not there, the
/// site's byte is read once ([`TrapFrame::site_byte`]) and decides:
///
/// - still `int3`: a batch may have been published since the lookup (a
///   late `int3`, see [`Int3::Gone`], can trap between two batches), so
///   the lookup is repeated. Each batch publishes its table *before*
///   writing any `int3`, and cannot unpublish it before its next core
///   synchronisation, which waits for this handler: the second lookup
///   finds every batch whose `int3` the byte could be. Missing again, the
///   `int3` is someone else's.
/// - anything else: the `int3` is gone; the CPU re-executes the site. This
///   decision uses the byte read here, never a second read: a new batch
///   may write `int3` there at any moment, and re-executing then simply
///   traps again into a published batch.
pub fn poke_int3(frame: &mut dyn TrapFrame) -> Int3 {
    let site = frame.ip().wrapping_sub(1);
    let mut found = in_flight_emulation(site);
    if found.is_none() {
        let byte = frame.site_byte(site);
        if byte != INT3 {
            frame.set_ip(site);
            return Int3::Gone { byte };
        }
        found = in_flight_emulation(site);
    }
    match found {
        None => Int3::NotOurs,
        Some(Emulation::Nop) => {
            frame.set_ip(site + SITE_LEN);
            EMULATED.fetch_add(1, Ordering::Relaxed);
            Int3::Emulated
        }
        Some(Emulation::Call(target)) => {
            frame.push(site + SITE_LEN);
            frame.set_ip(target);
            EMULATED.fetch_add(1, Ordering::Relaxed);
            Int3::Emulated
        }
    }
}

/// [`poke_int3`] for handlers that only need to know whether the trap was
/// handled: true for [`Int3::Emulated`] and [`Int3::Gone`] (the frame says
/// where to resume), false for someone else's `int3` (frame unchanged).
pub fn poke_int3_handler(frame: &mut dyn TrapFrame) -> bool {
    poke_int3(frame) != Int3::NotOurs
}

/// The emulation of `site` in the published batch, if any.
fn in_flight_emulation(site: usize) -> Option<Emulation> {
    READERS.enter();
    let table = IN_FLIGHT.load(Ordering::SeqCst);
    // SAFETY: a published table is freed only after it was unpublished and
    // READERS was then seen at zero; we counted ourselves before loading.
    let found = unsafe { table.as_ref() }.and_then(|t| {
        t.pokes
            .binary_search_by_key(&site, |p| p.addr)
            .ok()
            .and_then(|i| emulation_of(site, &t.pokes[i].new_bytes()))
    });
    READERS.exit();
    found
}

/// Room a [`Batch`] keeps for its next batch, in changes (6 KiB on
/// x86_64).
const KEPT_POKES: usize = 256;

/// A queue of site changes committed with the `int3` protocol.
#[derive(Debug, Default)]
pub struct Batch {
    pokes: spin::Mutex<Vec<Poke>>,
}

impl Batch {
    /// An empty queue.
    pub const fn new() -> Self {
        Batch {
            pokes: spin::Mutex::new(Vec::new()),
        }
    }

    /// Drops everything queued.
    pub fn clear(&self) {
        self.pokes.lock().clear();
    }

    /// Makes room for `n` more changes at once (no growth, and no copy of
    /// the queue, while they are queued).
    pub fn reserve(&self, n: usize) {
        self.pokes.lock().reserve(n);
    }

    /// Number of queued changes (a site queued twice counts twice).
    pub fn len(&self) -> usize {
        self.pokes.lock().len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the site at `addr`, checks it holds `old` and queues the change
    /// to `new` (nothing when they are equal). Nothing is written.
    ///
    /// # Safety
    ///
    /// `addr` is a 5-byte patch site (or a trampoline's patchable call) of
    /// kernel text the platform can read; [`commit`](Self::commit) will
    /// write it.
    pub unsafe fn queue(
        &self,
        p: &dyn Platform,
        addr: usize,
        old: &Insn,
        new: &Insn,
    ) -> Result<(), PatchError> {
        let found = read_insn(p, addr, SITE_LEN)?;
        if found != *old {
            return Err(PatchError::Mismatch {
                expected: *old,
                found,
            });
        }
        if old == new {
            return Ok(());
        }
        let (Ok(o), Ok(n)) = (
            <[u8; SITE_LEN]>::try_from(old.as_bytes()),
            <[u8; SITE_LEN]>::try_from(new.as_bytes()),
        ) else {
            return Err(PatchError::Other("x86: site instructions are 5 bytes"));
        };
        emulation_of(addr, &n)
            .ok_or(PatchError::Other("x86: cannot emulate the new instruction"))?;
        self.push(addr, pack5(o), pack5(n));
        Ok(())
    }

    /// [`queue`](Self::queue) for a change the backend built, with the
    /// site's bytes already read (`found`): checks them against `old` and
    /// queues the change to `new` (a nop or a `call`, which the `#BP`
    /// handler can emulate; nothing is decoded here).
    /// All three are [`pack5`] words.
    #[inline(always)]
    pub(crate) fn queue_found(
        &self,
        addr: usize,
        found: u64,
        old: u64,
        new: u64,
    ) -> Result<(), PatchError> {
        debug_assert!(emulation_of(addr, &unpack5(new)).is_some());
        if found != old {
            return Err(PatchError::Mismatch {
                expected: Insn::new(&unpack5(old)),
                found: Insn::new(&unpack5(found)),
            });
        }
        if old != new {
            self.push(addr, old, new);
        }
        Ok(())
    }

    #[inline]
    fn push(&self, addr: usize, old: u64, new: u64) {
        // Appended in O(1); a site queued twice is merged by `commit`
        // (searching here made a batch of every site quadratic: 126,000
        // instructions per site at 50,000 sites).
        self.pokes.lock().push(Poke { addr, old, new });
    }

    /// Applies every queued change with the `int3` protocol (module docs):
    /// three phases, one [`Platform::sync_cores`] after each. Empties the
    /// queue.
    ///
    /// On a write fault, the sites are brought back to a state the CPU can
    /// execute (old or new bytes) as far as the platform lets us, and the
    /// failing site is returned. A site whose `int3` cannot be removed
    /// keeps its entry published so that the handler still emulates it.
    ///
    /// # Safety
    ///
    /// Every queued address is a site of 5 bytes of kernel text whose
    /// current and new contents are complete instructions, and the kernel's
    /// `#BP` handler calls [`poke_int3_handler`].
    pub unsafe fn commit(&self, p: &dyn Platform) -> Result<(), SiteError> {
        // SAFETY: guaranteed by the caller.
        unsafe { self.commit_observed(p, &mut |_| {}) }
    }

    /// Like [`commit`](Self::commit), calling `observe(n)` after the core
    /// synchronisation that ends phase `n` (1, 2, 3). After phases 1 and 2
    /// every site holds `int3`: a test that executes a site from `observe`
    /// exercises the `#BP` emulation (the kernel's `test=int3`).
    ///
    /// # Safety
    /// As for [`commit`](Self::commit).
    pub unsafe fn commit_observed(
        &self,
        p: &dyn Platform,
        observe: &mut dyn FnMut(u8),
    ) -> Result<(), SiteError> {
        let mut pokes = core::mem::take(&mut *self.pokes.lock());
        // The engine queues its sites in address order, once each: then
        // there is nothing to sort or merge (and `queue` never keeps a
        // change to the same bytes).
        if !pokes.windows(2).all(|w| w[0].addr < w[1].addr) {
            // Stable: the changes of one site stay in the order queued. A
            // later change of the same site in one batch replaces the new
            // bytes but keeps the original old ones.
            pokes.sort_by_key(|k| k.addr);
            pokes.dedup_by(|later, kept| {
                let same = later.addr == kept.addr;
                if same {
                    kept.new = later.new;
                }
                same
            });
            pokes.retain(|k| k.old != k.new);
        }
        if pokes.is_empty() {
            return Ok(());
        }
        // SAFETY: guaranteed by the caller.
        let emptied = unsafe { commit_pokes(p, pokes, observe) }?;
        // Kept for the next batch (no allocation or growth when it is no
        // larger) unless something was queued meanwhile, up to
        // `KEPT_POKES` entries: a batch of every site at Linux's scale
        // allocates its own, once.
        let mut queue = self.pokes.lock();
        if queue.is_empty()
            && queue.capacity() < emptied.capacity()
            && emptied.capacity() <= KEPT_POKES
        {
            *queue = emptied;
        }
        Ok(())
    }
}

/// The three phases over a sorted slice of distinct sites; returns the
/// emptied queue on success.
///
/// The table lives in this function's frame while it is published (no
/// allocation per batch): every path unpublishes it and waits until no
/// handler reads it before returning, except a failure that leaves `int3`
/// in place, which moves the table to the heap and leaves it published.
///
/// # Safety
/// As for [`Batch::commit`].
unsafe fn commit_pokes(
    p: &dyn Platform,
    pokes: Vec<Poke>,
    observe: &mut dyn FnMut(u8),
) -> Result<Vec<Poke>, SiteError> {
    // Never dropped here: its queue leaves through `unpublish` or the heap
    // copy, exactly once.
    let table = core::mem::ManuallyDrop::new(PokeTable { pokes });
    let tp = &*table as *const PokeTable as *mut PokeTable;
    let pokes: &[Poke] = &table.pokes;
    let prev = IN_FLIGHT.swap(tp, Ordering::SeqCst);
    debug_assert!(prev.is_null(), "x86: nested int3 batches");
    let writer = crate::platform::TextWriter::new(p);
    let write = |addr: usize, bytes: &[u8]| -> Result<(), SiteError> {
        // SAFETY: the caller guarantees each address is a 5-byte site; the
        // protocol's order keeps it executable (int3 first, first byte last).
        unsafe { writer.write(addr, bytes) }.map_err(|_| SiteError {
            ip: addr,
            error: PatchError::WriteFault,
        })
    };
    // Unpublishes the table and waits until no handler reads it (no new
    // one can find it: it is unpublished and the sites hold no `int3` any
    // more, see `crate::reclaim`); hands back its queue, emptied, for the
    // next batch. Called once, on the way out.
    let unpublish = || {
        IN_FLIGHT.store(core::ptr::null_mut(), Ordering::SeqCst);
        READERS.wait_quiescent();
        // SAFETY: the table is unpublished and no handler holds it; its
        // queue is read out once and the frame's copy is never dropped.
        let mut queue = unsafe { core::ptr::read(&table.pokes) };
        queue.clear();
        queue
    };

    // Phase 1: int3 over every first byte.
    for (i, k) in pokes.iter().enumerate() {
        if let Err(e) = write(k.addr, &[INT3]) {
            // Put the first bytes already replaced back; the sites are
            // unchanged otherwise.
            for k in &pokes[..i] {
                let _ = write(k.addr, &[k.old as u8]);
            }
            p.sync_cores();
            drop(unpublish());
            return Err(e);
        }
    }
    p.sync_cores();
    observe(1);

    // Phase 2: the tails (skipped when they do not change).
    for (i, k) in pokes.iter().enumerate() {
        if k.old >> 8 == k.new >> 8 {
            continue;
        }
        if let Err(e) = write(k.addr + 1, &((k.new >> 8) as u32).to_le_bytes()) {
            // Back to the old instructions: tails first (int3 still guards
            // them), then the first bytes.
            for k in &pokes[..=i] {
                let _ = write(k.addr + 1, &((k.old >> 8) as u32).to_le_bytes());
            }
            p.sync_cores();
            for k in pokes {
                let _ = write(k.addr, &[k.old as u8]);
            }
            p.sync_cores();
            drop(unpublish());
            return Err(e);
        }
    }
    p.sync_cores();
    observe(2);

    // Phase 3: the new first bytes.
    let mut first_err = None;
    for k in pokes {
        if let Err(e) = write(k.addr, &[k.new as u8]) {
            first_err.get_or_insert(e);
        }
    }
    p.sync_cores();
    match first_err {
        None => {
            let emptied = unpublish();
            observe(3);
            Ok(emptied)
        }
        Some(e) => {
            // A site may still hold int3: keep a table published (leaked)
            // so the handler keeps emulating its new instruction. It moves
            // to the heap first: handlers that loaded the frame's copy are
            // waited for, and read the same queue meanwhile.
            // SAFETY: a bitwise move of the table; the frame's copy is never
            // dropped, and no handler reads it once READERS was seen at zero.
            let heap = Box::into_raw(Box::new(unsafe { core::ptr::read(&*table) }));
            IN_FLIGHT.store(heap, Ordering::SeqCst);
            READERS.wait_quiescent();
            Err(e)
        }
    }
}

/// Changes one site with the `int3` protocol at once (used for the
/// trampolines' inner call): reads, compares with `old`, writes `new`.
///
/// # Safety
/// `addr` is 5 bytes of kernel text holding a complete instruction; the
/// kernel's `#BP` handler calls [`poke_int3_handler`]; no other batch is
/// being committed.
pub unsafe fn poke_one(
    p: &dyn Platform,
    addr: usize,
    old: &Insn,
    new: &Insn,
) -> Result<(), PatchError> {
    // One queue for every such change (the caller guarantees they are
    // never concurrent): its room is allocated once.
    static ONE: Batch = Batch::new();
    let b = &ONE;
    b.clear();
    // SAFETY: guaranteed by the caller (`addr` is 5 bytes of kernel text).
    unsafe { b.queue(p, addr, old, new) }?;
    // SAFETY: guaranteed by the caller.
    unsafe { b.commit(p) }.map_err(|e| e.error)
}

#[cfg(test)]
mod tests;
