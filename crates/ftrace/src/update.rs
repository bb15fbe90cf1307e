//! The update engine (Linux's `ftrace_replace_code` and friends): owns the
//! records and registered callbacks, decides what every site should call and
//! patches only the sites that differ, in one batch.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use ftrace_abi::symtab::SymbolTable;

use crate::arch::{Arch, PatchError, SiteError, Trampoline, read_insn};
use crate::filter::{self, FilterError};
use crate::ops::{self, Dispatch, FTRACE_TRACE_FUNC, FTRACE_TRACE_OP, IpSet, Ops, OpsList};
use crate::platform::Platform;
use crate::record::{RecFlags, Record, Records};
use crate::recursion::RecursionState;
use crate::symbols::{SymAddr, Symbols};

/// When a site failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// While preparing the site at boot ([`Ftrace::init`]).
    Init,
    /// While enabling, disabling or retargeting it.
    Update,
}

/// A site that failed (Linux's `ftrace_bug` report). Display gives the line
/// the kernel prints, e.g.
/// `ftrace: failed to init site kernel::foo+0x0 at 0xffff: expected 0f 1f 44 00 00, found cc cc cc cc cc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteFailure {
    /// When it failed.
    pub phase: Phase,
    /// Site address (record `ip`, or the trampoline for a failed
    /// [`Arch::update_ftrace_func`]).
    pub ip: usize,
    /// The function containing the site.
    pub function: SymAddr,
    /// What went wrong, with expected and found bytes for a mismatch.
    pub error: PatchError,
}

impl fmt::Display for SiteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Init => "init",
            Phase::Update => "update",
        };
        f.write_str("ftrace: failed to ")?;
        f.write_str(phase)?;
        match self.function.sym {
            Some(_) => write!(f, " site {}", self.function)?,
            None => f.write_str(" site <unknown>")?,
        }
        write!(f, " at {:#x}: {}", self.ip, self.error)
    }
}

/// Result of [`Ftrace::init`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Number of sites.
    pub total: usize,
    /// Sites that failed; each is marked FAILED and never touched again.
    pub failed: Vec<SiteFailure>,
}

impl fmt::Display for InitReport {
    /// The summary line; print each of [`failed`](Self::failed) too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ftrace: {} sites, {} failed", self.total, self.failed.len())
    }
}

/// Errors of the engine's operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// [`Ftrace::init`] has not run.
    NotInitialized,
    /// Tracing was killed after a patch failure; nothing is patched any more.
    Killed,
    /// The ops is already registered (here or with another engine).
    AlreadyRegistered,
    /// The ops is not registered with this engine.
    NotRegistered,
    /// Two callbacks with [`OpsFlags::IPMODIFY`](crate::ops::OpsFlags::IPMODIFY)
    /// would want the same function; nothing changed.
    IpmodifyConflict {
        /// The first site they share.
        ip: usize,
        /// Its function.
        function: SymAddr,
    },
    /// The pattern string was rejected; nothing changed. One entry per bad
    /// or unmatched pattern.
    Filter(Vec<FilterError>),
    /// Patching failed: tracing is now killed.
    Patch(SiteFailure),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInitialized => f.write_str("ftrace: not initialised"),
            Error::Killed => f.write_str("ftrace: tracing disabled after an earlier failure"),
            Error::AlreadyRegistered => f.write_str("ftrace: ops already registered"),
            Error::NotRegistered => f.write_str("ftrace: ops not registered"),
            Error::IpmodifyConflict { ip, function } => {
                write!(f, "ftrace: two IPMODIFY callbacks would share {function} at {ip:#x}")
            }
            Error::Filter(errs) => {
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Error::Patch(s) => write!(f, "{s}"),
        }
    }
}

/// What a site currently calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteState {
    /// Failed; never touched.
    Failed,
    /// The nop.
    Nop,
    /// The caller trampoline.
    Caller,
    /// The regs trampoline.
    RegsCaller,
    /// A callback's own trampoline at this address.
    OpsTrampoline(usize),
}

/// A snapshot replaced while dispatchers may still read it.
enum Retired {
    List(NonNull<OpsList>),
    Set(NonNull<IpSet>),
}

// SAFETY: retired snapshots are plain heap data (slices of `&'static Ops`
// and of `usize`) owned by the engine; moving the ownership to another
// thread is fine.
unsafe impl Send for Retired {}

impl Retired {
    /// # Safety
    /// No dispatcher may still access the snapshot.
    unsafe fn free(self) {
        // SAFETY: both pointers came from `Box::into_raw`; the caller
        // guarantees no remaining reader.
        unsafe {
            match self {
                Retired::List(p) => drop(Box::from_raw(p.as_ptr())),
                Retired::Set(p) => drop(Box::from_raw(p.as_ptr())),
            }
        }
    }
}

/// What one record should be, computed from the registered callbacks.
#[derive(Debug, Clone, Copy, Default)]
struct Want {
    /// Call target; 0 for the nop.
    target: usize,
    count: u32,
    regs: bool,
    ipmodify: bool,
    tramp: bool,
}

/// Which set of an ops a change replaces.
#[derive(Clone, Copy)]
struct SetChange<'a> {
    ops: &'a Ops,
    notrace: bool,
    set: *const IpSet,
}

/// The tracer core: records, symbols, registered callbacks and the engine
/// that patches sites to match them.
///
/// The kernel creates one, runs [`init`](Self::init) once at boot and keeps
/// it in a `spin::Mutex` (updates are not on the hot path; the dispatchers
/// never take that lock).
///
/// # Example
///
/// ```
/// # #[cfg(feature = "mock")] {
/// use ftrace::mock::{MockArch, MockPlatform};
/// use ftrace::ops::{Ops, OpsFlags};
/// use ftrace::{Ftrace, SiteState};
///
/// fn cb(_: usize, _: usize, _: &Ops, _: &mut ftrace::regs::FtraceRegs) {}
/// static OPS: Ops = Ops::new(cb, OpsFlags::empty());
///
/// let (platform, sites) = MockPlatform::with_sites(4);
/// let mut ft = Ftrace::new(MockArch::new(), platform, sites, None);
/// assert_eq!(ft.init().failed.len(), 0);
/// ft.register(&OPS).unwrap();
/// assert_eq!(ft.enabled_count(), 4);
/// assert_eq!(ft.site_state(0), SiteState::Caller);
/// ft.unregister(&OPS).unwrap();
/// assert_eq!(ft.check_all_nops(), 0);
/// # }
/// ```
pub struct Ftrace<A: Arch, P: Platform + 'static> {
    arch: A,
    platform: &'static P,
    records: Records,
    /// Current call target of each record (0: nop); agrees with the bytes.
    current: Vec<usize>,
    /// Name of each record's function.
    names: Vec<Option<&'static str>>,
    symbols: Symbols,
    registered: Vec<&'static Ops>,
    dispatch: &'static Dispatch,
    list_ops: &'static Ops,
    trace_op: AtomicPtr<Ops>,
    trace_func: AtomicUsize,
    retired: Vec<Retired>,
    initialized: bool,
    killed: Option<SiteFailure>,
}

impl<A: Arch, P: Platform + 'static> Ftrace<A, P> {
    /// Builds the records from the site addresses (any order; zeros and
    /// duplicates dropped). Nothing is read or written before
    /// [`init`](Self::init).
    pub fn new(
        arch: A,
        platform: &'static P,
        sites: impl IntoIterator<Item = usize>,
        symbols: Option<SymbolTable<'static>>,
    ) -> Self {
        let records = Records::from_sites(sites);
        let empty: OpsList = Box::new([]);
        let dispatch: &'static Dispatch = Box::leak(Box::new(Dispatch {
            platform,
            list: AtomicPtr::new(Box::into_raw(Box::new(empty))),
            readers: AtomicUsize::new(0),
            recursion: RecursionState::new(),
        }));
        let list_ops: &'static Ops = Box::leak(Box::new(Ops::new_list(dispatch)));
        let n = records.len();
        let mut ft = Ftrace {
            arch,
            platform,
            records,
            current: vec![0; n],
            names: Vec::new(),
            symbols: Symbols::new(symbols),
            registered: Vec::new(),
            dispatch,
            list_ops,
            trace_op: AtomicPtr::new(list_ops as *const Ops as *mut Ops),
            trace_func: AtomicUsize::new(0),
            retired: Vec::new(),
            initialized: false,
            killed: None,
        };
        ft.resolve_names();
        ft
    }

    fn resolve_names(&mut self) {
        let syms = self.symbols;
        self.names = self.records.as_slice().iter().map(|r| syms.resolve(r.ip).map(|(n, _)| n)).collect();
    }

    fn failure(&self, phase: Phase, ip: usize, error: PatchError) -> SiteFailure {
        SiteFailure { phase, ip, function: self.symbols.display(ip), error }
    }

    /// Prepares every site with [`Arch::init_site`]. Sites holding anything
    /// unexpected are marked FAILED, left unwritten and reported; all others
    /// stay traceable. Also points the trampolines at the list dispatcher.
    /// Runs once; later calls return an empty report.
    pub fn init(&mut self) -> InitReport {
        if self.initialized {
            return InitReport { total: self.records.len(), failed: Vec::new() };
        }
        let p: &dyn Platform = self.platform;
        let mut failed = Vec::new();
        for rec in self.records.as_mut_slice() {
            if let Err(e) = self.arch.init_site(p, rec) {
                rec.set(RecFlags::FAILED, true);
                failed.push(SiteFailure { phase: Phase::Init, ip: rec.ip, function: self.symbols.display(rec.ip), error: e });
            }
        }
        self.records.resort();
        self.resolve_names();
        self.initialized = true;
        if let Err(f) = self.set_trace(self.list_ops, ops::list_func_addr()) {
            failed.push(f);
            self.kill(f);
        }
        InitReport { total: self.records.len(), failed }
    }

    fn usable(&self) -> Result<(), Error> {
        if !self.initialized {
            Err(Error::NotInitialized)
        } else if self.killed.is_some() {
            Err(Error::Killed)
        } else {
            Ok(())
        }
    }

    /// Registers `ops`: the sites its filters select start calling it.
    ///
    /// Fails without changing anything when it is already registered or
    /// would share a function with another IPMODIFY ops; a patch failure
    /// kills tracing ([`Error::Patch`]).
    pub fn register(&mut self, ops: &'static Ops) -> Result<(), Error> {
        self.usable()?;
        if ops.is_enabled() || self.registered.iter().any(|o| ptr::eq(*o, ops)) {
            return Err(Error::AlreadyRegistered);
        }
        let mut list = self.registered.clone();
        list.push(ops);
        let plan = self.plan(&list, None)?;
        ops.set_owner(self.dispatch);
        ops.set_enabled(true);
        self.registered = list;
        self.commit(plan)
    }

    /// Unregisters `ops`: sites nobody else wants return to the nop.
    ///
    /// Dispatchers stop calling it at once, except that a CPU already inside
    /// the callback finishes it (the ops is `'static`, so this is safe).
    pub fn unregister(&mut self, ops: &'static Ops) -> Result<(), Error> {
        self.usable()?;
        let Some(pos) = self.registered.iter().position(|o| ptr::eq(*o, ops)) else {
            return Err(Error::NotRegistered);
        };
        let mut list = self.registered.clone();
        list.remove(pos);
        let plan = self.plan(&list, None)?;
        ops.set_enabled(false);
        self.registered = list;
        self.commit(plan)
    }

    /// Replaces `ops`' filter with the functions `patterns` selects (see
    /// [`crate::filter`]); returns how many sites the filter holds. An empty
    /// resulting set means every function, as in Linux.
    ///
    /// Bad or unmatched patterns are reported in [`Error::Filter`] and
    /// nothing changes.
    pub fn set_filter(&mut self, ops: &'static Ops, patterns: &str) -> Result<usize, Error> {
        self.change_set(ops, false, Some(patterns), false)
    }

    /// Adds to (or, with `!`, removes from) `ops`' current filter.
    pub fn add_filter(&mut self, ops: &'static Ops, patterns: &str) -> Result<usize, Error> {
        self.change_set(ops, false, Some(patterns), true)
    }

    /// Clears `ops`' filter: every function.
    pub fn clear_filter(&mut self, ops: &'static Ops) -> Result<(), Error> {
        self.change_set(ops, false, None, false).map(|_| ())
    }

    /// Replaces `ops`' notrace set (functions never traced for it, winning
    /// over the filter); returns its size.
    pub fn set_notrace(&mut self, ops: &'static Ops, patterns: &str) -> Result<usize, Error> {
        self.change_set(ops, true, Some(patterns), false)
    }

    /// Adds to (or, with `!`, removes from) `ops`' notrace set.
    pub fn add_notrace(&mut self, ops: &'static Ops, patterns: &str) -> Result<usize, Error> {
        self.change_set(ops, true, Some(patterns), true)
    }

    /// Clears `ops`' notrace set.
    pub fn clear_notrace(&mut self, ops: &'static Ops) -> Result<(), Error> {
        self.change_set(ops, true, None, false).map(|_| ())
    }

    fn change_set(&mut self, ops: &'static Ops, notrace: bool, patterns: Option<&str>, append: bool) -> Result<usize, Error> {
        self.usable()?;
        let new: Option<Box<IpSet>> = match patterns {
            None => None,
            Some(s) => {
                let pats = filter::parse(s).map_err(Error::Filter)?;
                let recs = self.records.as_slice();
                let mut sel = vec![false; recs.len()];
                let old = if notrace { ops.notrace_ptr() } else { ops.filter_ptr() };
                // SAFETY: the engine is the only writer of published sets,
                // so `old` stays live while we hold `&mut self`.
                if let (true, Some(old)) = (append, unsafe { old.as_ref() }) {
                    for (s, r) in sel.iter_mut().zip(recs) {
                        *s = old.contains(r.ip);
                    }
                }
                filter::apply(&pats, &self.names, &mut sel).map_err(Error::Filter)?;
                let ips: Box<[usize]> = recs.iter().zip(&sel).filter(|(_, s)| **s).map(|(r, _)| r.ip).collect();
                Some(Box::new(IpSet::from_sorted(ips)))
            }
        };
        let len = new.as_ref().map_or(0, |s| s.len());
        let new_ptr = new.map_or(ptr::null_mut(), Box::into_raw);
        let registered = self.registered.iter().any(|o| ptr::eq(*o, ops));
        let plan = if registered {
            match self.plan(&self.registered, Some(SetChange { ops, notrace, set: new_ptr })) {
                Ok(p) => Some(p),
                Err(e) => {
                    if !new_ptr.is_null() {
                        // SAFETY: never published, from `Box::into_raw` above.
                        drop(unsafe { Box::from_raw(new_ptr) });
                    }
                    return Err(e);
                }
            }
        } else {
            None
        };
        let old = ops.swap_set(notrace, new_ptr);
        if let Some(old) = NonNull::new(old) {
            self.retired.push(Retired::Set(old));
        }
        match plan {
            Some(plan) => self.commit(plan).map(|()| len),
            None => {
                self.reclaim();
                Ok(len)
            }
        }
    }

    /// Computes what every record should call with `ops` registered (and
    /// `change` applied). Fails on an IPMODIFY conflict.
    fn plan(&self, list: &[&'static Ops], change: Option<SetChange<'_>>) -> Result<Vec<Want>, Error> {
        let caller = self.arch.trampoline_addr(Trampoline::Caller);
        let regs_caller = self.arch.trampoline_addr(Trampoline::RegsCaller);
        let sets: Vec<(*const IpSet, *const IpSet)> = list
            .iter()
            .map(|o| {
                let (mut f, mut n) = (o.filter_ptr() as *const IpSet, o.notrace_ptr() as *const IpSet);
                if let Some(c) = change.filter(|c| ptr::eq(c.ops, *o)) {
                    if c.notrace { n = c.set } else { f = c.set }
                }
                (f, n)
            })
            .collect();
        let tramps: Vec<Option<usize>> = list.iter().map(|o| self.arch.ops_trampoline(o)).collect();
        let mut plan = vec![Want::default(); self.records.len()];
        for (rec, want) in self.records.as_slice().iter().zip(plan.iter_mut()) {
            if rec.is_failed() {
                continue;
            }
            let mut single = None;
            let mut ipmodify = false;
            for (i, o) in list.iter().enumerate() {
                // SAFETY: published sets stay live while the engine (the
                // only writer) is borrowed; `change.set` is ours.
                if !unsafe { Ops::selects(sets[i].0, sets[i].1, rec.ip) } {
                    continue;
                }
                if o.flags().contains(crate::ops::OpsFlags::IPMODIFY) {
                    if ipmodify {
                        return Err(Error::IpmodifyConflict { ip: rec.ip, function: self.symbols.display(rec.ip) });
                    }
                    ipmodify = true;
                }
                want.count += 1;
                want.regs |= o.needs_regs();
                single = Some(i);
            }
            want.ipmodify = ipmodify;
            want.target = match (want.count, single) {
                (0, _) => 0,
                (1, Some(i)) if tramps[i].is_some() => {
                    want.tramp = true;
                    tramps[i].unwrap_or(0)
                }
                _ if want.regs => regs_caller,
                _ => caller,
            };
        }
        Ok(plan)
    }

    /// Points the trampolines' inner call at `func` passing `op`.
    fn set_trace(&mut self, op: &'static Ops, func: usize) -> Result<(), SiteFailure> {
        let op_ptr = op as *const Ops as *mut Ops;
        self.trace_op.store(op_ptr, Ordering::SeqCst);
        FTRACE_TRACE_OP.store(op_ptr, Ordering::SeqCst);
        if self.trace_func.swap(func, Ordering::SeqCst) == func && FTRACE_TRACE_FUNC.load(Ordering::SeqCst) == func {
            return Ok(());
        }
        FTRACE_TRACE_FUNC.store(func, Ordering::SeqCst);
        let p: &dyn Platform = self.platform;
        for which in [Trampoline::Caller, Trampoline::RegsCaller] {
            self.arch
                .update_ftrace_func(p, which, func)
                .map_err(|e| self.failure(Phase::Update, self.arch.trampoline_addr(which), e))?;
        }
        p.sync_cores();
        Ok(())
    }

    fn publish_list(&mut self) {
        let list: OpsList = self.registered.clone().into_boxed_slice();
        let old = self.dispatch.list.swap(Box::into_raw(Box::new(list)), Ordering::SeqCst);
        if let Some(old) = NonNull::new(old) {
            self.retired.push(Retired::List(old));
        }
    }

    /// Applies a plan: list dispatcher first (it filters, so sites about to
    /// change are handled correctly whatever they call), then one patch batch,
    /// then the single-callback fast path if it applies.
    fn commit(&mut self, plan: Vec<Want>) -> Result<(), Error> {
        if let Err(f) = self.set_trace(self.list_ops, ops::list_func_addr()) {
            return Err(self.kill(f));
        }
        self.publish_list();
        let p: &dyn Platform = self.platform;
        self.arch.begin_batch(p);
        let mut touched = Vec::new();
        for (i, want) in plan.iter().enumerate() {
            let rec = &self.records.as_slice()[i];
            let old = self.current[i];
            if rec.is_failed() || old == want.target {
                continue;
            }
            touched.push(i);
            let r = match (old, want.target) {
                (0, t) => self.arch.make_call(p, rec, t),
                (o, 0) => self.arch.make_nop(p, rec, o),
                (o, t) => self.arch.modify_call(p, rec, o, t),
            };
            if let Err(e) = r {
                self.arch.abort_batch(p);
                return Err(self.fail_batch(rec.ip, e, &touched, &plan));
            }
        }
        if let Err(SiteError { ip, error }) = self.arch.finish_batch(p) {
            return Err(self.fail_batch(ip, error, &touched, &plan));
        }
        for (i, want) in plan.iter().enumerate() {
            if !self.records.as_slice()[i].is_failed() {
                self.current[i] = want.target;
                self.set_rec_state(i, Some(want));
            }
        }
        if let [only] = self.registered[..]
            && let Err(f) = self.set_trace(only, ops::assist_func_addr())
        {
            return Err(self.kill(f));
        }
        self.reclaim();
        Ok(())
    }

    /// Sets record `i`'s flags from `current[i]` and the wanted state.
    fn set_rec_state(&mut self, i: usize, want: Option<&Want>) {
        let target = self.current[i];
        let caller = self.arch.trampoline_addr(Trampoline::Caller);
        let regs_caller = self.arch.trampoline_addr(Trampoline::RegsCaller);
        let rec = &mut self.records.as_mut_slice()[i];
        let w = want.copied().unwrap_or_default();
        let mut f = rec.rec_flags() & RecFlags::FAILED;
        f.set(RecFlags::ENABLED, target != 0);
        f.set(RecFlags::REGS_EN, target != 0 && target == regs_caller);
        f.set(RecFlags::TRAMP_EN, target != 0 && target != caller && target != regs_caller);
        f.set(RecFlags::REGS, w.regs);
        f.set(RecFlags::IPMODIFY, w.ipmodify);
        f.set(RecFlags::TRAMP, w.tramp);
        rec.set_rec_flags(f);
        rec.set_refcount(w.count);
    }

    /// A batch failed at `ip`: find out what each touched site now holds,
    /// mark the failing one FAILED, kill tracing.
    fn fail_batch(&mut self, ip: usize, error: PatchError, touched: &[usize], plan: &[Want]) -> Error {
        let p: &dyn Platform = self.platform;
        for &i in touched {
            let rec = self.records.as_slice()[i];
            let (old, new) = (self.current[i], plan[i].target);
            let now = self.read_state(p, &rec, &[old, new]);
            match now {
                Some(t) => self.current[i] = t,
                None => self.records.as_mut_slice()[i].set(RecFlags::FAILED, true),
            }
        }
        if let Some(i) = self.records.index_of(ip) {
            self.records.as_mut_slice()[i].set(RecFlags::FAILED, true);
        }
        let f = self.failure(Phase::Update, ip, error);
        self.kill(f)
    }

    /// Which of `candidates` (call targets, 0: nop) the site holds.
    fn read_state(&self, p: &dyn Platform, rec: &Record, candidates: &[usize]) -> Option<usize> {
        let found = read_insn(p, rec.ip, A::SITE_LEN).ok()?;
        candidates.iter().copied().find(|&t| {
            let want = self.arch.expected_insn(rec, (t != 0).then_some(t));
            want.is_ok_and(|w| w.as_bytes() == &found.as_bytes()[..w.len().min(found.len())] && w.len() <= found.len())
        })
    }

    /// Linux's `ftrace_kill`: logically unregister everything and never patch
    /// again. Sites keep their (executable) bytes; the dispatcher finds no
    /// callback.
    fn kill(&mut self, f: SiteFailure) -> Error {
        for o in self.registered.drain(..) {
            o.set_enabled(false);
        }
        self.publish_list();
        let _ = self.set_trace(self.list_ops, ops::list_func_addr());
        for i in 0..self.records.len() {
            self.set_rec_state(i, None);
        }
        self.killed = Some(f);
        Error::Patch(f)
    }

    /// Frees retired snapshots if no dispatcher is reading right now (tried
    /// a bounded number of times). Called after every update.
    pub fn reclaim(&mut self) {
        if self.retired.is_empty() {
            return;
        }
        for _ in 0..1000 {
            if self.dispatch.readers.load(Ordering::SeqCst) == 0 {
                for r in self.retired.drain(..) {
                    // SAFETY: every retired snapshot was replaced before this
                    // load observed no reader; readers counted later load the
                    // replacement (SeqCst), so nobody can reach it.
                    unsafe { r.free() };
                }
                return;
            }
            core::hint::spin_loop();
        }
    }

    /// True when `ops`' current filter and notrace sets select the site at
    /// `ip` (whether or not `ops` is registered).
    pub fn ops_wants(&self, ops: &Ops, ip: usize) -> bool {
        // The engine is the only writer of published sets and is borrowed.
        ops.wants(ip)
    }

    /// Number of sites.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when there is no site.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// All records, in address order.
    pub fn records(&self) -> &[Record] {
        self.records.as_slice()
    }

    /// Index of the record at `ip`. O(log n).
    pub fn record_index(&self, ip: usize) -> Option<usize> {
        self.records.index_of(ip)
    }

    /// Name of record `i`'s function, when symbols are known.
    pub fn record_name(&self, i: usize) -> Option<&'static str> {
        self.names.get(i).copied().flatten()
    }

    /// Number of sites currently calling a trampoline.
    pub fn enabled_count(&self) -> usize {
        self.records.as_slice().iter().filter(|r| r.is_enabled()).count()
    }

    /// Number of FAILED sites.
    pub fn failed_count(&self) -> usize {
        self.records.as_slice().iter().filter(|r| r.is_failed()).count()
    }

    /// What site `i` calls.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn site_state(&self, i: usize) -> SiteState {
        let t = self.current[i];
        if self.records.as_slice()[i].is_failed() {
            SiteState::Failed
        } else if t == 0 {
            SiteState::Nop
        } else if t == self.arch.trampoline_addr(Trampoline::Caller) {
            SiteState::Caller
        } else if t == self.arch.trampoline_addr(Trampoline::RegsCaller) {
            SiteState::RegsCaller
        } else {
            SiteState::OpsTrampoline(t)
        }
    }

    /// Current call target of site `i` (0: nop).
    pub fn site_target(&self, i: usize) -> usize {
        self.current[i]
    }

    /// Reads every non-FAILED site and returns how many differ from the
    /// canonical nop (or cannot be read).
    pub fn check_all_nops(&self) -> usize {
        let p: &dyn Platform = self.platform;
        self.records
            .as_slice()
            .iter()
            .filter(|r| !r.is_failed() && self.read_state(p, r, &[0]).is_none())
            .count()
    }

    /// True after a patch failure disabled tracing.
    pub fn is_killed(&self) -> bool {
        self.killed.is_some()
    }

    /// The failure that killed tracing.
    pub fn kill_reason(&self) -> Option<&SiteFailure> {
        self.killed.as_ref()
    }

    /// Registered callbacks, in registration order.
    pub fn registered(&self) -> &[&'static Ops] {
        &self.registered
    }

    /// The symbol view.
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    /// The arch backend.
    pub fn arch(&self) -> &A {
        &self.arch
    }

    /// The platform.
    pub fn platform(&self) -> &'static P {
        self.platform
    }

    /// The ops this engine's trampolines currently pass (mirrors
    /// [`FTRACE_TRACE_OP`], which is global).
    pub fn trace_op(&self) -> &'static Ops {
        // SAFETY: only ever set from `&'static Ops` (`set_trace`, `new`).
        unsafe { &*self.trace_op.load(Ordering::SeqCst) }
    }

    /// The C-ABI function this engine's trampolines currently call
    /// ([`ops::list_func_addr`] or [`ops::assist_func_addr`]; mirrors
    /// [`FTRACE_TRACE_FUNC`]).
    pub fn trace_func(&self) -> usize {
        self.trace_func.load(Ordering::SeqCst)
    }

    /// Recursive entries the dispatchers refused so far.
    pub fn recursions(&self) -> usize {
        self.dispatch.recursion.recursions()
    }
}
