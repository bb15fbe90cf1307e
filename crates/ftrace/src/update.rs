//! The update engine (Linux's `ftrace_replace_code` and friends): owns the
//! records and registered callbacks, decides what every site should call and
//! patches only the sites that differ, in one batch.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use ftrace_abi::symtab::SymbolTable;

use crate::arch::{Arch, PatchError, SiteError, Trampoline, read_insn};
use crate::fgraph::{self, GraphOps};
use crate::filter::{self, FilterError};
use crate::ops::{self, Dispatch, FTRACE_TRACE_FUNC, FTRACE_TRACE_OP, IpSet, Ops, OpsList};
use crate::platform::Platform;
use crate::record::{RecFlags, Record, Records};
use crate::recursion::RecursionState;
use crate::region::{CodeRegion, RegionId, RegionReport};
use crate::symbols::{SymAddr, Symbols};

/// When a site failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// While preparing the site at boot ([`Ftrace::init`]).
    Init,
    /// While enabling, disabling or retargeting it.
    Update,
    /// While releasing its backend resources after its region was removed
    /// ([`Arch::release_site`]).
    Release,
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
            Phase::Release => "release",
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
        write!(
            f,
            "ftrace: {} sites, {} failed",
            self.total,
            self.failed.len()
        )
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
    /// [`Ftrace::add_region`]: the region's sites or stubs overlap code the
    /// engine already knows; nothing changed.
    RegionOverlap {
        /// The region being added.
        name: &'static str,
        /// What it overlaps: another region's name, or `kernel` for the
        /// boot site table.
        with: &'static str,
    },
    /// [`Ftrace::remove_region`]: no region with this id.
    NoSuchRegion,
    /// [`Ftrace::register_graph`]: the arch backend cannot hook returns
    /// ([`Arch::return_hook`] is `None`).
    GraphUnsupported,
    /// [`Ftrace::register_graph`]: every one of the
    /// [`MAX_GRAPH_USERS`](crate::fgraph::MAX_GRAPH_USERS) slots is taken.
    GraphUsersFull,
    /// [`Ftrace::remove_region`]: the region is removed and its sites are
    /// nops, but the backend could not release a site's resources
    /// ([`Arch::release_site`]; the first failure). Tracing goes on.
    Release(SiteFailure),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInitialized => f.write_str("ftrace: not initialised"),
            Error::Killed => f.write_str("ftrace: tracing disabled after an earlier failure"),
            Error::AlreadyRegistered => f.write_str("ftrace: ops already registered"),
            Error::NotRegistered => f.write_str("ftrace: ops not registered"),
            Error::IpmodifyConflict { ip, function } => {
                write!(
                    f,
                    "ftrace: two IPMODIFY callbacks would share {function} at {ip:#x}"
                )
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
            Error::RegionOverlap { name, with } => {
                write!(f, "ftrace: region {name} overlaps {with}")
            }
            Error::NoSuchRegion => f.write_str("ftrace: no such region"),
            Error::GraphUnsupported => {
                f.write_str("ftrace: this arch backend cannot hook function returns")
            }
            Error::GraphUsersFull => write!(
                f,
                "ftrace: all {} graph user slots are taken",
                crate::fgraph::MAX_GRAPH_USERS
            ),
            Error::Release(s) => write!(f, "{s}"),
        }
    }
}

/// Crates whose functions never get a record, even when the compiler gave
/// them a patchable entry (generic code instantiated in a traced crate):
/// the tracer itself and the language's own runtime, which the tracer's
/// paths call.
/// (`__rustc` holds the allocator shims the compiler generates.)
pub const NEVER_TRACED_CRATES: &[&str] = &[
    "ftrace",
    "ftrace_abi",
    "core",
    "alloc",
    "compiler_builtins",
    "__rustc",
];

/// The crate a demangled Rust path belongs to: `kernel` for
/// `kernel::demo::f`, `ftrace` for `<ftrace::platform::FnPlatform as
/// ftrace::platform::Platform>::text_read`; `None` when the path does not
/// start with a crate name (`<&T as core::fmt::Debug>::fmt`).
pub fn crate_of(name: &str) -> Option<&str> {
    let n = name.trim_start_matches('<');
    let end = n
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(n.len());
    (end > 0 && n[end..].starts_with("::")).then(|| &n[..end])
}

/// True when `name` (a demangled path) belongs to [`NEVER_TRACED_CRATES`].
pub fn is_never_traced(name: &str) -> bool {
    crate_of(name).is_some_and(|c| NEVER_TRACED_CRATES.contains(&c))
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

/// The pattern strings that built one of an ops' sets since it was last
/// replaced ([`Ftrace::set_filter`] starts a history, [`Ftrace::add_filter`]
/// extends it, clearing drops it): replayed over the sites of regions added
/// later.
struct PatternLog {
    ops: &'static Ops,
    notrace: bool,
    history: Vec<String>,
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
    /// Region of each record: 0 for the boot table, else a [`RegionId`].
    region_of: Vec<u32>,
    /// Regions added after boot, in the order they were added.
    regions: Vec<(RegionId, CodeRegion)>,
    /// Next [`RegionId`] to hand out.
    next_region: u32,
    /// How every ops' filter and notrace sets were built (see [`PatternLog`]).
    pattern_log: Vec<PatternLog>,
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
            known: AtomicPtr::new(ptr::null_mut()),
            recursion: RecursionState::new(),
        }));
        let list_ops: &'static Ops = Box::leak(Box::new(Ops::new_list(dispatch)));
        let n = records.len();
        let mut ft = Ftrace {
            arch,
            platform,
            records,
            current: vec![0; n],
            region_of: vec![0; n],
            regions: Vec::new(),
            next_region: 1,
            pattern_log: Vec::new(),
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
        ft.drop_excluded();
        ft
    }

    /// Drops the records of functions that belong to
    /// [`NEVER_TRACED_CRATES`]: generic code of the tracer itself (and of
    /// `core`/`alloc`) monomorphised into the kernel's crate gets patchable
    /// entries there, but the tracer must never call traced code from its
    /// own paths, whatever filter is set.
    fn drop_excluded(&mut self) {
        let keep: Vec<bool> = self
            .names
            .iter()
            .map(|n| !n.is_some_and(is_never_traced))
            .collect();
        if keep.iter().all(|&k| k) {
            return;
        }
        let recs: Vec<Record> = self
            .records
            .as_slice()
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(r, _)| *r)
            .collect();
        let n = recs.len();
        self.records.replace(recs);
        self.current = vec![0; n];
        self.region_of = vec![0; n];
        self.resolve_names();
    }

    fn resolve_names(&mut self) {
        let syms = self.symbols;
        self.names = self
            .records
            .as_slice()
            .iter()
            .map(|r| syms.resolve(r.ip).map(|(n, _)| n))
            .collect();
    }

    fn failure(&self, phase: Phase, ip: usize, error: PatchError) -> SiteFailure {
        SiteFailure {
            phase,
            ip,
            function: self.symbols.display(ip),
            error,
        }
    }

    /// Prepares every site with [`Arch::init_site`]. Sites holding anything
    /// unexpected are marked FAILED, left unwritten and reported; all others
    /// stay traceable. Also points the trampolines at the list dispatcher.
    /// Runs once; later calls return an empty report.
    pub fn init(&mut self) -> InitReport {
        if self.initialized {
            return InitReport {
                total: self.records.len(),
                failed: Vec::new(),
            };
        }
        let p: &dyn Platform = self.platform;
        let mut failed = Vec::new();
        for rec in self.records.as_mut_slice() {
            if let Err(e) = self.arch.init_site(p, rec) {
                rec.set(RecFlags::FAILED, true);
                failed.push(SiteFailure {
                    phase: Phase::Init,
                    ip: rec.ip,
                    function: self.symbols.display(rec.ip),
                    error: e,
                });
            }
        }
        self.records.resort();
        self.resolve_names();
        self.initialized = true;
        if self.arch.calls_unrecorded() {
            let ips: Box<[usize]> = self.records.as_slice().iter().map(|r| r.ip).collect();
            let known = Box::leak(Box::new(IpSet::from_sorted(ips)));
            self.dispatch.known.store(known, Ordering::Release);
        }
        if let Err(f) = self.set_trace(self.list_ops, ops::list_func_addr()) {
            failed.push(f);
            self.kill(f);
        }
        InitReport {
            total: self.records.len(),
            failed,
        }
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
        let plan = self.plan(&list, &[])?;
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
        let plan = self.plan(&list, &[])?;
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

    /// Registers a graph user ([`crate::fgraph`]): the functions its
    /// [`GraphOps::ops`] filters select get their entries and returns
    /// hooked. Fails with [`Error::GraphUnsupported`] when the backend has
    /// no return hook and [`Error::GraphUsersFull`] when every slot is
    /// taken; nothing changes then.
    pub fn register_graph(&mut self, g: &'static GraphOps) -> Result<(), Error> {
        self.usable()?;
        let hook = self.arch.return_hook().ok_or(Error::GraphUnsupported)?;
        if g.slot().is_some() {
            return Err(Error::AlreadyRegistered);
        }
        let p: &'static dyn Platform = self.platform;
        fgraph::attach(p, self.dispatch, hook, g).ok_or(Error::GraphUsersFull)?;
        let ops: &'static Ops = g.ops();
        self.register(ops).inspect_err(|_| fgraph::detach(g))
    }

    /// Unregisters a graph user: no new call is hooked for it; calls hooked
    /// earlier still return through their frames.
    pub fn unregister_graph(&mut self, g: &'static GraphOps) -> Result<(), Error> {
        let ops: &'static Ops = g.ops();
        self.unregister(ops)?;
        fgraph::detach(g);
        Ok(())
    }

    /// The sites whose functions `patterns` selects (the syntax of
    /// [`set_filter`](Self::set_filter)), as a set, without attaching it to
    /// any callback: for tracers with filters of their own (the
    /// function_graph tracer's `set_graph_function`).
    pub fn match_set(&self, patterns: &str) -> Result<IpSet, Error> {
        let pats = filter::parse(patterns).map_err(Error::Filter)?;
        let recs = self.records.as_slice();
        let mut sel = vec![false; recs.len()];
        filter::apply(&pats, &self.names, &mut sel).map_err(Error::Filter)?;
        let ips: Box<[usize]> = recs
            .iter()
            .zip(&sel)
            .filter(|(_, s)| **s)
            .map(|(r, _)| r.ip)
            .collect();
        Ok(IpSet::from_sorted(ips))
    }

    fn change_set(
        &mut self,
        ops: &'static Ops,
        notrace: bool,
        patterns: Option<&str>,
        append: bool,
    ) -> Result<usize, Error> {
        self.usable()?;
        let new: Option<Box<IpSet>> = match patterns {
            None => None,
            Some(s) => {
                let pats = filter::parse(s).map_err(Error::Filter)?;
                let recs = self.records.as_slice();
                let mut sel = vec![false; recs.len()];
                let old = if notrace {
                    ops.notrace_ptr()
                } else {
                    ops.filter_ptr()
                };
                // SAFETY: the engine is the only writer of published sets,
                // so `old` stays live while we hold `&mut self`.
                if let (true, Some(old)) = (append, unsafe { old.as_ref() }) {
                    for (s, r) in sel.iter_mut().zip(recs) {
                        *s = old.contains(r.ip);
                    }
                }
                filter::apply(&pats, &self.names, &mut sel).map_err(Error::Filter)?;
                let ips: Box<[usize]> = recs
                    .iter()
                    .zip(&sel)
                    .filter(|(_, s)| **s)
                    .map(|(r, _)| r.ip)
                    .collect();
                Some(Box::new(IpSet::from_sorted(ips)))
            }
        };
        let len = new.as_ref().map_or(0, |s| s.len());
        let new_ptr = new.map_or(ptr::null_mut(), Box::into_raw);
        let registered = self.registered.iter().any(|o| ptr::eq(*o, ops));
        let plan = if registered {
            match self.plan(
                &self.registered,
                &[SetChange {
                    ops,
                    notrace,
                    set: new_ptr,
                }],
            ) {
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
        self.log_patterns(ops, notrace, patterns, append);
        match plan {
            Some(plan) => self.commit(plan).map(|()| len),
            None => {
                self.reclaim();
                Ok(len)
            }
        }
    }

    /// Records how `ops`' filter (or notrace) set was just built.
    fn log_patterns(
        &mut self,
        ops: &'static Ops,
        notrace: bool,
        patterns: Option<&str>,
        append: bool,
    ) {
        let pos = self
            .pattern_log
            .iter()
            .position(|l| ptr::eq(l.ops, ops) && l.notrace == notrace);
        match (patterns, pos) {
            (None, Some(i)) => {
                self.pattern_log.swap_remove(i);
            }
            (None, None) => {}
            (Some(s), Some(i)) if append => self.pattern_log[i].history.push(s.into()),
            (Some(s), Some(i)) => self.pattern_log[i].history = vec![s.into()],
            (Some(s), None) => self.pattern_log.push(PatternLog {
                ops,
                notrace,
                history: vec![s.into()],
            }),
        }
    }

    /// Computes what every record should call with `list` registered (and
    /// `changes` applied to their sets). Fails on an IPMODIFY conflict.
    fn plan(&self, list: &[&'static Ops], changes: &[SetChange<'_>]) -> Result<Vec<Want>, Error> {
        let caller = self.arch.trampoline_addr(Trampoline::Caller);
        let regs_caller = self.arch.trampoline_addr(Trampoline::RegsCaller);
        let sets: Vec<(*const IpSet, *const IpSet)> = list
            .iter()
            .map(|o| {
                let (mut f, mut n) = (
                    o.filter_ptr() as *const IpSet,
                    o.notrace_ptr() as *const IpSet,
                );
                for c in changes.iter().filter(|c| ptr::eq(c.ops, *o)) {
                    if c.notrace { n = c.set } else { f = c.set }
                }
                (f, n)
            })
            .collect();
        // Asked only for callbacks that are alone on some site: a backend
        // with a bounded pool (crate::tramp) gives slots to those only.
        let mut tramps: Vec<Option<Option<usize>>> = vec![None; list.len()];
        let mut plan = vec![Want::default(); self.records.len()];
        for (rec, want) in self.records.as_slice().iter().zip(plan.iter_mut()) {
            if rec.is_failed() {
                continue;
            }
            let mut single = None;
            let mut ipmodify = false;
            for (i, o) in list.iter().enumerate() {
                // SAFETY: published sets stay live while the engine (the
                // only writer) is borrowed; the sets in `changes` are ours.
                if !unsafe { Ops::selects(sets[i].0, sets[i].1, rec.ip) } {
                    continue;
                }
                if o.flags().contains(crate::ops::OpsFlags::IPMODIFY) {
                    if ipmodify {
                        return Err(Error::IpmodifyConflict {
                            ip: rec.ip,
                            function: self.symbols.display(rec.ip),
                        });
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
                (1, Some(i))
                    if tramps[i]
                        .get_or_insert_with(|| self.arch.ops_trampoline(list[i]))
                        .is_some() =>
                {
                    want.tramp = true;
                    tramps[i].flatten().unwrap_or(0)
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
        if self.trace_func.swap(func, Ordering::SeqCst) == func
            && FTRACE_TRACE_FUNC.load(Ordering::SeqCst) == func
        {
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
        let old = self
            .dispatch
            .list
            .swap(Box::into_raw(Box::new(list)), Ordering::SeqCst);
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
        f.set(
            RecFlags::TRAMP_EN,
            target != 0 && target != caller && target != regs_caller,
        );
        f.set(RecFlags::REGS, w.regs);
        f.set(RecFlags::IPMODIFY, w.ipmodify);
        f.set(RecFlags::TRAMP, w.tramp);
        rec.set_rec_flags(f);
        rec.set_refcount(w.count);
    }

    /// A batch failed at `ip`: find out what each touched site now holds,
    /// mark the failing one FAILED, kill tracing.
    fn fail_batch(
        &mut self,
        ip: usize,
        error: PatchError,
        touched: &[usize],
        plan: &[Want],
    ) -> Error {
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
            want.is_ok_and(|w| {
                w.as_bytes() == &found.as_bytes()[..w.len().min(found.len())]
                    && w.len() <= found.len()
            })
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

    /// Adds a region of code registered after boot (Linux's module load):
    /// records its sites, prepares each with [`Arch::init_region_site`]
    /// (failures are marked FAILED and reported, as by [`init`](Self::init)),
    /// and enables the new sites the registered callbacks want, in one batch.
    ///
    /// Filters and new sites: a callback without a filter wants every
    /// function, so it wants the region's too. For callbacks with filter or
    /// notrace patterns the engine keeps the pattern strings that built each
    /// set and replays them over the new sites (Linux re-applies patterns to
    /// a module only for its `:mod:` commands; replaying is what a user who
    /// wrote `region_*` means). A replayed pattern that matches nothing in
    /// the region is not an error. A filter that is empty (every function)
    /// stays empty: a region never narrows it.
    ///
    /// Fails without changing anything when the engine is not initialised
    /// or killed, when the region's sites overlap sites already known (the
    /// boot table or another region), or when its stub area overlaps another
    /// region's; on an IPMODIFY conflict over the new sites the region is
    /// removed again (stubs released). A patch failure kills tracing and
    /// the region is forgotten without touching its text again.
    pub fn add_region(&mut self, region: CodeRegion) -> Result<RegionReport, Error> {
        self.usable()?;
        self.check_overlap(&region)?;
        let id = RegionId(self.next_region);
        self.next_region += 1;
        let p: &dyn Platform = self.platform;
        let mut recs = Records::from_sites(region.sites.iter().copied());
        let mut failed = Vec::new();
        for (index, rec) in recs.as_mut_slice().iter_mut().enumerate() {
            if let Err(e) = self.arch.init_region_site(p, rec, &region, index) {
                rec.set(RecFlags::FAILED, true);
                failed.push(self.failure(Phase::Init, rec.ip, e));
            }
        }
        recs.resort();
        let total = recs.len();
        let name = region.name;
        self.regions.push((id, region));
        let syms = self.symbols;
        let new_names: Vec<Option<&'static str>> = recs
            .as_slice()
            .iter()
            .map(|r| syms.resolve(r.ip).map(|(n, _)| n))
            .collect();
        let changes = self.replay_patterns(recs.as_slice(), &new_names);
        // Merge into the sorted tables.
        let mut all: Vec<(Record, usize, Option<&'static str>, u32)> = (0..self.records.len())
            .map(|i| {
                (
                    self.records.as_slice()[i],
                    self.current[i],
                    self.names[i],
                    self.region_of[i],
                )
            })
            .chain(
                recs.as_slice()
                    .iter()
                    .zip(new_names)
                    .map(|(r, n)| (*r, 0, n, id.0)),
            )
            .collect();
        all.sort_by_key(|t| t.0.ip);
        debug_assert!(
            all.windows(2).all(|w| w[0].0.ip < w[1].0.ip),
            "overlap check missed a duplicate site"
        );
        self.records.replace(all.iter().map(|t| t.0).collect());
        self.current = all.iter().map(|t| t.1).collect();
        self.names = all.iter().map(|t| t.2).collect();
        self.region_of = all.iter().map(|t| t.3).collect();
        let plan = match self.plan(&self.registered, &changes) {
            Ok(plan) => plan,
            Err(e) => {
                for c in changes {
                    // SAFETY: never published, from `Box::into_raw` in
                    // `replay_patterns`.
                    drop(unsafe { Box::from_raw(c.set as *mut IpSet) });
                }
                let _ = self.forget_region(id, true);
                return Err(e);
            }
        };
        for c in &changes {
            let old = c.ops.swap_set(c.notrace, c.set as *mut IpSet);
            if let Some(old) = NonNull::new(old) {
                self.retired.push(Retired::Set(old));
            }
        }
        if let Err(e) = self.commit(plan) {
            let _ = self.forget_region(id, false);
            return Err(e);
        }
        let enabled = (0..self.records.len())
            .filter(|&i| self.region_of[i] == id.0 && self.records.as_slice()[i].is_enabled())
            .count();
        Ok(RegionReport {
            id,
            name,
            total,
            failed,
            enabled,
        })
    }

    /// Removes a region added with [`add_region`](Self::add_region)
    /// (Linux's module unload): turns every enabled site of the region back
    /// into the nop in one batch, then lets the backend release each site
    /// ([`Arch::release_site`]; ppc64 writes `trap` over its stub), and
    /// forgets the records, their names and their entries in every filter
    /// and notrace set. A filter that loses its last sites this way selects
    /// nothing rather than turning into "every function" (Linux keeps such
    /// entries as ip 0 for the same reason).
    ///
    /// After a kill the region is forgotten without touching its text.
    /// A patch failure while disabling kills tracing ([`Error::Patch`]); the
    /// region is forgotten then too. A release failure is reported as
    /// [`Error::Release`] after the removal completed.
    pub fn remove_region(&mut self, id: RegionId) -> Result<(), Error> {
        if !self.initialized {
            return Err(Error::NotInitialized);
        }
        if !self.regions.iter().any(|(r, _)| *r == id) {
            return Err(Error::NoSuchRegion);
        }
        if self.killed.is_some() {
            let _ = self.forget_region(id, false);
            return Ok(());
        }
        let mut plan = self.plan(&self.registered, &[])?;
        for (want, _) in plan
            .iter_mut()
            .zip(&self.region_of)
            .filter(|(_, r)| **r == id.0)
        {
            *want = Want::default();
        }
        if let Err(e) = self.commit(plan) {
            let _ = self.forget_region(id, false);
            return Err(e);
        }
        match self.forget_region(id, true) {
            Some(f) => Err(Error::Release(f)),
            None => Ok(()),
        }
    }

    /// The regions added and not removed, in the order they were added.
    pub fn regions(&self) -> impl Iterator<Item = (RegionId, &CodeRegion)> {
        self.regions.iter().map(|(id, r)| (*id, r))
    }

    /// The region of record `i`; `None` for the boot site table.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn record_region(&self, i: usize) -> Option<RegionId> {
        match self.region_of[i] {
            0 => None,
            r => Some(RegionId(r)),
        }
    }

    /// Rejects a region whose sites fall within the span of known sites or
    /// whose stubs overlap another region's.
    fn check_overlap(&self, region: &CodeRegion) -> Result<(), Error> {
        let overlap = |with| {
            Err(Error::RegionOverlap {
                name: region.name,
                with,
            })
        };
        let stubs_meet = |a: &core::ops::Range<usize>, b: &core::ops::Range<usize>| {
            !a.is_empty() && !b.is_empty() && a.start < b.end && b.start < a.end
        };
        let span = region.span();
        for (_, r) in &self.regions {
            let spans_meet = match (span, r.span()) {
                (Some((lo, hi)), Some((rlo, rhi))) => lo <= rhi && rlo <= hi,
                _ => false,
            };
            if spans_meet || stubs_meet(&region.stubs, &r.stubs) {
                return overlap(r.name);
            }
        }
        if let Some((lo, hi)) = span {
            let recs = self.records.as_slice();
            let i = recs.partition_point(|r| r.ip < lo);
            if recs.get(i).is_some_and(|r| r.ip <= hi) {
                return overlap(match self.region_of[i] {
                    0 => "kernel",
                    id => self
                        .regions
                        .iter()
                        .find(|(r, _)| r.0 == id)
                        .map_or("kernel", |(_, r)| r.name),
                });
            }
        }
        Ok(())
    }

    /// Replays every pattern history over the new records `recs` (named
    /// `names`): for each set that gains sites, the new set, unpublished.
    fn replay_patterns(
        &self,
        recs: &[Record],
        names: &[Option<&'static str>],
    ) -> Vec<SetChange<'static>> {
        let mut changes = Vec::new();
        for log in &self.pattern_log {
            let mut sel = vec![false; recs.len()];
            for h in &log.history {
                // Each string parsed when it was set; patterns matching
                // nothing in the region are fine here.
                if let Ok(pats) = filter::parse(h) {
                    let _ = filter::apply(&pats, names, &mut sel);
                }
            }
            let picked = recs
                .iter()
                .zip(&sel)
                .filter(|(r, s)| **s && !r.is_failed())
                .map(|(r, _)| r.ip);
            let old = if log.notrace {
                log.ops.notrace_ptr()
            } else {
                log.ops.filter_ptr()
            };
            // SAFETY: the engine is the only writer of published sets, so
            // `old` stays live while we hold `&self`.
            let Some(old) = (unsafe { old.as_ref() }) else {
                continue;
            };
            if !log.notrace && old.is_empty() {
                continue;
            }
            let mut ips: Vec<usize> = old.as_slice().iter().copied().chain(picked).collect();
            if ips.len() == old.len() {
                continue;
            }
            ips.sort_unstable();
            ips.dedup();
            let set = Box::into_raw(Box::new(IpSet::from_sorted(ips.into_boxed_slice())));
            changes.push(SetChange {
                ops: log.ops,
                notrace: log.notrace,
                set,
            });
        }
        changes
    }

    /// Drops region `id`'s records (after [`Arch::release_site`] on each
    /// when `release`) and removes their addresses from every published
    /// set. Returns the first release failure.
    fn forget_region(&mut self, id: RegionId, release: bool) -> Option<SiteFailure> {
        let p: &dyn Platform = self.platform;
        let mut first_failure = None;
        let mut ips = Vec::new();
        for (rec, _) in self
            .records
            .as_slice()
            .iter()
            .zip(&self.region_of)
            .filter(|(_, r)| **r == id.0)
        {
            ips.push(rec.ip);
            if release && let Err(e) = self.arch.release_site(p, rec) {
                first_failure.get_or_insert(self.failure(Phase::Release, rec.ip, e));
            }
        }
        if release && !ips.is_empty() {
            p.sync_cores();
        }
        let keep: Vec<bool> = self.region_of.iter().map(|&r| r != id.0).collect();
        let mut k = keep.iter();
        self.records.replace(
            self.records
                .as_slice()
                .iter()
                .filter(|_| *k.next().unwrap_or(&true))
                .copied()
                .collect(),
        );
        let mut k = keep.iter();
        self.current.retain(|_| *k.next().unwrap_or(&true));
        let mut k = keep.iter();
        self.names.retain(|_| *k.next().unwrap_or(&true));
        self.region_of.retain(|&r| r != id.0);
        self.regions.retain(|(r, _)| *r != id);
        // `ips` is sorted (records are).
        for i in 0..self.pattern_log.len() {
            let (ops, notrace) = (self.pattern_log[i].ops, self.pattern_log[i].notrace);
            let old = if notrace {
                ops.notrace_ptr()
            } else {
                ops.filter_ptr()
            };
            // SAFETY: as in `replay_patterns`; we hold `&mut self`.
            let Some(old_set) = (unsafe { old.as_ref() }) else {
                continue;
            };
            let mut left: Vec<usize> = old_set
                .as_slice()
                .iter()
                .copied()
                .filter(|ip| ips.binary_search(ip).is_err())
                .collect();
            if left.len() == old_set.len() {
                continue;
            }
            if left.is_empty() && !notrace {
                // Selects nothing (0 is never a site), unlike an empty filter.
                left.push(0);
            }
            let new = Box::into_raw(Box::new(IpSet::from_sorted(left.into_boxed_slice())));
            let old = ops.swap_set(notrace, new);
            if let Some(old) = NonNull::new(old) {
                self.retired.push(Retired::Set(old));
            }
        }
        self.reclaim();
        first_failure
    }

    /// Frees retired snapshots if no dispatcher is reading right now (tried
    /// a bounded number of times). Called after every update. The list that
    /// held them is freed too: snapshots pile up while dispatchers keep
    /// reading (several CPUs in traced code), and its grown capacity would
    /// otherwise stay allocated for good.
    pub fn reclaim(&mut self) {
        if self.retired.is_empty() {
            return;
        }
        for _ in 0..1000 {
            if self.dispatch.readers.load(Ordering::SeqCst) == 0 {
                for r in core::mem::take(&mut self.retired) {
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
        self.records
            .as_slice()
            .iter()
            .filter(|r| r.is_enabled())
            .count()
    }

    /// Number of FAILED sites.
    pub fn failed_count(&self) -> usize {
        self.records
            .as_slice()
            .iter()
            .filter(|r| r.is_failed())
            .count()
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

#[cfg(test)]
mod crate_tests {
    use super::{crate_of, is_never_traced};

    #[test]
    fn crates_of_demangled_paths() {
        assert_eq!(crate_of("kernel::demo::demo_leaf"), Some("kernel"));
        assert_eq!(
            crate_of("<ftrace::platform::FnPlatform as ftrace::platform::Platform>::text_read"),
            Some("ftrace")
        );
        assert_eq!(crate_of("<&T as core::fmt::Debug>::fmt"), None);
        assert_eq!(crate_of("demo_leaf"), None);
        assert!(is_never_traced("__rustc::__rust_dealloc"));
        assert!(is_never_traced(
            "<alloc::vec::Vec<u8> as core::clone::Clone>::clone"
        ));
        assert!(!is_never_traced("kernel::tracing::workload"));
    }
}
