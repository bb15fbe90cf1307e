//! A simulated architecture and platform for host tests and tools.
//!
//! [`MockPlatform`] keeps "kernel text" in a `Vec<u8>`; [`MockArch`] encodes
//! x86-like 5-byte sites: the nop `0f 1f 44 00 00` and `e8 rel32` calls.
//! [`call_site`] plays the trampoline: it decodes a site and dispatches the
//! way real trampolines do.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::arch::{Arch, Insn, PatchError, Trampoline, read_insn};
use crate::fgraph::{FrameSlot, ShadowStack};
use crate::ops::{self, Ops};
use crate::platform::{Context, Platform, TextFault};
use crate::record::Record;
use crate::regs::{FREGS_FULL, FtraceRegs};
use crate::tramp::OpsTrampPool;
use crate::update::Ftrace;

/// Base address of the simulated text.
pub const TEXT_BASE: usize = 0x1000_0000;
/// Distance between the sites [`MockPlatform::with_sites`] lays out.
pub const SITE_STRIDE: usize = 16;
/// Address of the mock caller trampoline.
pub const CALLER: usize = 0x2000_0000;
/// Address of the mock regs trampoline.
pub const REGS_CALLER: usize = 0x2000_1000;
/// The mock canonical nop.
pub const NOP: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];
/// An alternative nop [`MockArch::init_site`] rewrites to [`NOP`] (like
/// i686's `66 90 66 90 90`).
pub const ALT_NOP: [u8; 5] = [0x66, 0x90, 0x66, 0x90, 0x90];

/// Simulated platform: text in a vector, one CPU whose id and context tests
/// can set, counters of writes and core synchronisations.
#[derive(Debug)]
pub struct MockPlatform {
    text: spin::Mutex<Vec<u8>>,
    /// Number of `text_write` calls.
    pub writes: AtomicUsize,
    /// Number of `sync_cores` calls.
    pub syncs: AtomicUsize,
    /// Writes to this address fail with [`TextFault`] (0: none).
    pub fail_write_at: AtomicUsize,
    cpu: AtomicUsize,
    context: AtomicU8,
    /// The one simulated task's shadow return stack ([`MOCK_STACK_DEPTH`]
    /// frames).
    pub shadow: ShadowStack<[FrameSlot; MOCK_STACK_DEPTH]>,
}

#[cfg(test)]
std::thread_local! {
    /// Host tests with real threads: the CPU id this thread reports (each
    /// thread plays one CPU), overriding [`MockPlatform::set_cpu`].
    static THREAD_CPU: core::cell::Cell<Option<usize>> = const { core::cell::Cell::new(None) };
}

/// Makes the calling thread report CPU `cpu` from every mock platform (host
/// tests with real threads).
#[cfg(test)]
pub fn set_thread_cpu(cpu: usize) {
    THREAD_CPU.with(|c| c.set(Some(cpu)));
}

/// The simulated `return_to_handler`: a hooked return slot holds this.
pub const RETURN_HOOK: usize = 0xdead_0000;

/// Frames of [`MockPlatform::shadow`].
pub const MOCK_STACK_DEPTH: usize = 8;

impl MockPlatform {
    /// `len` bytes of text at [`TEXT_BASE`], filled with `int3` (`cc`).
    pub fn new(len: usize) -> Self {
        MockPlatform {
            text: spin::Mutex::new(vec![0xcc; len]),
            writes: AtomicUsize::new(0),
            syncs: AtomicUsize::new(0),
            fail_write_at: AtomicUsize::new(0),
            cpu: AtomicUsize::new(0),
            context: AtomicU8::new(Context::Normal as u8),
            shadow: ShadowStack::new(),
        }
    }

    /// A leaked platform with `n` sites holding [`NOP`], every
    /// [`SITE_STRIDE`] bytes from [`TEXT_BASE`], and their addresses.
    pub fn with_sites(n: usize) -> (&'static Self, Vec<usize>) {
        let p = alloc::boxed::Box::leak(alloc::boxed::Box::new(Self::new(n * SITE_STRIDE + 16)));
        let sites: Vec<usize> = (0..n).map(|i| TEXT_BASE + i * SITE_STRIDE).collect();
        for &s in &sites {
            p.poke(s, &NOP);
        }
        (p, sites)
    }

    /// Writes bytes directly (no checks, not counted): test setup and
    /// corruption.
    pub fn poke(&self, addr: usize, bytes: &[u8]) {
        let off = addr - TEXT_BASE;
        self.text.lock()[off..off + bytes.len()].copy_from_slice(bytes);
    }

    /// Reads bytes directly.
    pub fn peek(&self, addr: usize, len: usize) -> Vec<u8> {
        let off = addr - TEXT_BASE;
        self.text.lock()[off..off + len].to_vec()
    }

    /// Sets the CPU id reported.
    pub fn set_cpu(&self, cpu: usize) {
        self.cpu.store(cpu, Ordering::Relaxed);
    }

    /// Sets the context reported.
    pub fn set_context(&self, c: Context) {
        self.context.store(c as u8, Ordering::Relaxed);
    }

    fn range(&self, addr: usize, len: usize) -> Result<core::ops::Range<usize>, TextFault> {
        let off = addr.checked_sub(TEXT_BASE).ok_or(TextFault)?;
        let end = off.checked_add(len).ok_or(TextFault)?;
        if end > self.text.lock().len() {
            Err(TextFault)
        } else {
            Ok(off..end)
        }
    }
}

// SAFETY: a single simulated CPU: ids and contexts are what tests set; text
// accesses are bounds-checked copies into a vector; `sync_cores` has nothing
// to synchronise.
unsafe impl Platform for MockPlatform {
    fn cpu_id(&self) -> usize {
        #[cfg(test)]
        if let Some(c) = THREAD_CPU.with(|c| c.get()) {
            return c;
        }
        self.cpu.load(Ordering::Relaxed)
    }
    fn nr_cpus(&self) -> usize {
        1
    }
    fn clock_ns(&self) -> u64 {
        0
    }
    fn context(&self) -> Context {
        match self.context.load(Ordering::Relaxed) {
            0 => Context::Normal,
            1 => Context::Softirq,
            2 => Context::Irq,
            _ => Context::Nmi,
        }
    }
    unsafe fn text_read(&self, addr: usize, buf: &mut [u8]) -> Result<(), TextFault> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.text.lock()[r]);
        Ok(())
    }
    unsafe fn text_write(&self, addr: usize, bytes: &[u8]) -> Result<(), TextFault> {
        let fail = self.fail_write_at.load(Ordering::Relaxed);
        if fail != 0 && (addr..addr + bytes.len()).contains(&fail) {
            return Err(TextFault);
        }
        let r = self.range(addr, bytes.len())?;
        self.text.lock()[r].copy_from_slice(bytes);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn sync_cores(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }
    fn shadow_stack(&self) -> Option<&ShadowStack> {
        Some(&self.shadow)
    }
}

/// Simulated x86-like backend.
#[derive(Debug, Default)]
pub struct MockArch {
    ops_tramps: spin::Mutex<Vec<(usize, usize)>>,
    /// Per-ops trampolines handed out like the real backends do.
    pool: Option<OpsTrampPool>,
    /// Number of `update_ftrace_func` calls.
    pub func_updates: AtomicUsize,
}

impl MockArch {
    /// A backend without per-ops trampolines.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend whose per-ops trampolines come from `pool` (slots
    /// assigned on first request, as in the real backends), after those
    /// given with [`add_ops_trampoline`](Self::add_ops_trampoline).
    pub fn with_pool(pool: OpsTrampPool) -> Self {
        MockArch {
            pool: Some(pool),
            ..Self::default()
        }
    }

    /// Gives `ops` its own trampoline at `addr`.
    pub fn add_ops_trampoline(&self, ops: &'static Ops, addr: usize) {
        self.ops_tramps
            .lock()
            .push((ops as *const Ops as usize, addr));
    }

    /// The ops owning the trampoline at `addr`.
    pub fn ops_of_trampoline(&self, addr: usize) -> Option<&'static Ops> {
        let listed = self
            .ops_tramps
            .lock()
            .iter()
            .find(|(_, a)| *a == addr)
            .map(|(o, _)| *o);
        let p = listed.or_else(|| self.pool.as_ref()?.owner_of(addr))?;
        // SAFETY: only `&'static Ops` are stored (`add_ops_trampoline`), and
        // the pool's slots hold ops the engine asked for, which are
        // registered, hence `'static`.
        Some(unsafe { &*(p as *const Ops) })
    }

    /// Decodes a mock call at `site`; `None` for anything else.
    pub fn decode_call(site: usize, insn: &[u8]) -> Option<usize> {
        if insn.len() != 5 || insn[0] != 0xe8 {
            return None;
        }
        let rel = i32::from_le_bytes([insn[1], insn[2], insn[3], insn[4]]);
        Some((site as isize + 5 + rel as isize) as usize)
    }
}

// SAFETY: the mock only ever writes 5-byte nops and calls into the simulated
// text through `replace_insn` (read, compare, then write); its "trampolines"
// are never executed, `call_site` simulates them.
unsafe impl Arch for MockArch {
    const SITE_LEN: usize = 5;
    const ARG_REGS: &'static [usize] = &[0, 1, 2, 3, 4, 5];

    fn nop_insn(&self) -> Insn {
        Insn::new(&NOP)
    }

    fn call_insn(&self, site: usize, target: usize) -> Result<Insn, PatchError> {
        let rel = (target as i64).wrapping_sub(site as i64 + 5);
        let rel = i32::try_from(rel).map_err(|_| PatchError::OutOfRange { site, target })?;
        let r = rel.to_le_bytes();
        Ok(Insn::new(&[0xe8, r[0], r[1], r[2], r[3]]))
    }

    fn init_site(&self, p: &dyn Platform, rec: &mut Record) -> Result<(), PatchError> {
        let found = read_insn(p, rec.ip, 5)?;
        if found.as_bytes() == NOP {
            return Ok(());
        }
        if found.as_bytes() == ALT_NOP {
            return crate::arch::replace_insn(p, rec.ip, &found, &self.nop_insn());
        }
        Err(PatchError::Mismatch {
            expected: self.nop_insn(),
            found,
        })
    }

    fn update_ftrace_func(
        &self,
        _p: &dyn Platform,
        _which: Trampoline,
        _func: usize,
    ) -> Result<(), PatchError> {
        self.func_updates.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn trampoline_addr(&self, which: Trampoline) -> usize {
        match which {
            Trampoline::Caller => CALLER,
            Trampoline::RegsCaller => REGS_CALLER,
        }
    }

    fn return_hook(&self) -> Option<usize> {
        Some(RETURN_HOOK)
    }

    fn ops_trampoline(&self, ops: &Ops) -> Option<usize> {
        let key = ops as *const Ops as usize;
        let listed = self
            .ops_tramps
            .lock()
            .iter()
            .find(|(o, _)| *o == key)
            .map(|(_, a)| *a);
        listed.or_else(|| self.pool.as_ref()?.trampoline(ops))
    }
}

/// Simulates executing the site at `ip` (called from `parent_ip`): does
/// nothing for the nop, otherwise does what the called trampoline would.
/// Returns false when the site holds the nop.
///
/// # Panics
/// When the site holds neither the nop nor a call to a known trampoline.
pub fn call_site(
    ft: &Ftrace<MockArch, MockPlatform>,
    ip: usize,
    parent_ip: usize,
    regs: &mut FtraceRegs,
) -> bool {
    let bytes = ft.platform().peek(ip, 5);
    if bytes == NOP {
        return false;
    }
    let target = MockArch::decode_call(ip, &bytes).expect("site holds neither nop nor call");
    regs.parent_ip = parent_ip;
    regs.ip = ip + 5;
    let (func, op) = if let Some(o) = ft.arch().ops_of_trampoline(target) {
        (ft.dispatchers().1, o)
    } else {
        assert!(
            target == CALLER || target == REGS_CALLER,
            "call to unknown target {target:#x}"
        );
        regs.flags = if target == REGS_CALLER { FREGS_FULL } else { 0 };
        (ft.trace_func(), ft.trace_op())
    };
    // SAFETY: `op` is 'static and `regs` is a live exclusive frame.
    unsafe {
        if func == ft.dispatchers().1 {
            ops::ftrace_ops_assist_func(ip, parent_ip, op, regs);
        } else {
            ops::ftrace_ops_list_func(ip, parent_ip, op, regs);
        }
    }
    true
}
