//! The update engine (Linux's `ftrace_replace_code` and friends): owns the
//! records and registered callbacks, decides what every site should call and
//! patches only the sites that differ, in one batch.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use ftrace_abi::symtab::SymbolTable;

use crate::arch::{Arch, PatchError, SiteError, Trampoline, read_insn};
use crate::fgraph::{self, GraphOps};
use crate::filter;
use crate::ops::{self, Dispatch, FTRACE_TRACE_FUNC, FTRACE_TRACE_OP, IpSet, Ops, OpsList};
use crate::planner::{self, Want};
use crate::platform::Platform;
use crate::reclaim::{Item, Retired};
use crate::record::{REF_MASK, RecFlags, Record};
use crate::recursion::RecursionState;
use crate::region::{CodeRegion, RegionId, RegionReport};
use crate::site::{OutOfReach, Site, SiteTable, Targets, derived_flags};
use crate::symbols::Symbols;

pub use crate::error::{Error, InitReport, Phase, SiteFailure};

/// A region the engine knows: the caller's description (its site list
/// emptied: the site table holds the sites) and where its sites are.
#[derive(Debug)]
struct RegionEntry {
    id: RegionId,
    region: CodeRegion,
    /// The lowest and highest prepared site address; `None` without sites.
    /// No other site lies between them ([`Ftrace::add_region`] refuses
    /// overlaps), so the region's sites are contiguous in the table.
    span: Option<(usize, usize)>,
    /// Number of sites.
    count: usize,
}

impl RegionEntry {
    fn contains(&self, ip: usize) -> bool {
        self.span.is_some_and(|(lo, hi)| lo <= ip && ip <= hi)
    }
}

/// The stored flags a site gets from its plan (REGS, IPMODIFY, TRAMP).
fn want_flags(w: &Want) -> RecFlags {
    RecFlags::from_bits_truncate(w.state() & !REF_MASK)
}

/// Tables of at most this many sites are not counted for
/// [`Arch::batch_size_hint`]: their size is the hint (a queue of 256
/// changes is 6 KiB on x86_64).
const SMALL_TABLE: usize = 256;

/// A backend moved a site beyond 2 GiB of the table's base (it may move
/// one only within its function).
const MOVED_AWAY: PatchError = PatchError::Other("site moved beyond 2 GiB of the base");

impl From<OutOfReach> for Error {
    fn from(e: OutOfReach) -> Self {
        Error::OutOfReach {
            ip: e.ip,
            base: e.base,
        }
    }
}

/// Platforms (by address) that have an engine: one engine per kernel.
static ENGINES: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];

/// Forgets one engine of platform `key`.
fn release_engine(key: usize) {
    if let Some(e) = ENGINES.iter().find(|e| e.load(Ordering::Acquire) == key) {
        e.store(0, Ordering::Release);
    }
}

impl<A: Arch, P: Platform + 'static> Drop for Ftrace<A, P> {
    fn drop(&mut self) {
        // The fast path no longer finds this engine's recursion words.
        let _ = ops::FTRACE_FAST_WORDS.compare_exchange(
            self.dispatch.recursion.words_addr(),
            0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        release_engine(self.platform as *const P as *const () as usize);
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

/// Whether a site named `name` gets a record: never one of
/// [`NEVER_TRACED_CRATES`]; with [`Ftrace::only_crates`] (`only`), only one
/// of the crates named there; a site without a name (no symbol table)
/// always.
fn keeps(only: Option<&[String]>, name: Option<&str>) -> bool {
    let Some(name) = name else {
        return true;
    };
    !is_never_traced(name)
        && only.is_none_or(|o| crate_of(name).is_some_and(|c| o.iter().any(|k| k == c)))
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
/// extern "C" fn cb(_: usize, _: usize, _: &Ops, _: &mut ftrace::regs::FtraceRegs) {}
/// static OPS: Ops = Ops::new(cb, OpsFlags::empty());
///
/// let (platform, sites) = MockPlatform::with_sites(4);
/// let mut ft = Ftrace::new(MockArch::new(), platform, sites, None).unwrap();
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
    /// Every site: address, flags and count, current target (8 bytes
    /// each; the rest is derived, see [`crate::site`]).
    sites: SiteTable,
    /// Regions added after boot, in the order they were added.
    regions: Vec<RegionEntry>,
    /// Next [`RegionId`] to hand out.
    next_region: u32,
    /// How every ops' filter and notrace sets were built (see [`PatternLog`]).
    pattern_log: Vec<PatternLog>,
    symbols: Symbols,
    /// The crates [`only_crates`](Self::only_crates) keeps (`None`: all but
    /// [`NEVER_TRACED_CRATES`]); regions added later are held to it too.
    only: Option<Vec<String>>,
    registered: Vec<&'static Ops>,
    dispatch: &'static Dispatch,
    list_ops: &'static Ops,
    trace_op: AtomicPtr<Ops>,
    trace_func: AtomicUsize,
    /// Addresses the trampolines' inner calls are pointed at: the list and
    /// the single-callback dispatchers ([`with_dispatchers`](Self::with_dispatchers)).
    dispatchers: (usize, usize),
    retired: Retired,
    initialized: bool,
    killed: Option<SiteFailure>,
}

impl<A: Arch, P: Platform + 'static> Ftrace<A, P> {
    /// Builds the records from the site addresses (any order; zeros and
    /// duplicates dropped), 8 bytes each ([`crate::site`]). Nothing is read
    /// or written before [`init`](Self::init). A site more than 2 GiB above
    /// the lowest is refused with [`Error::OutOfReach`] (64-bit CPUs only;
    /// a kernel's text is far smaller).
    ///
    /// One engine per kernel: a second engine for the same platform is
    /// refused with [`Error::EngineExists`] (two engines would patch the same
    /// sites and free each other's snapshots) until the first is dropped.
    pub fn new(
        arch: A,
        platform: &'static P,
        sites: impl IntoIterator<Item = usize>,
        symbols: Option<SymbolTable<'static>>,
    ) -> Result<Self, Error> {
        let sites = SiteTable::from_addrs(sites, None)?;
        let key = platform as *const P as *const () as usize;
        if !ENGINES.iter().any(|e| {
            e.compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        }) {
            return Err(Error::EngineExists);
        }
        if ENGINES
            .iter()
            .filter(|e| e.load(Ordering::Acquire) == key)
            .count()
            > 1
        {
            release_engine(key);
            return Err(Error::EngineExists);
        }
        let empty: OpsList = Box::new([]);
        let dispatch: &'static Dispatch = Box::leak(Box::new(Dispatch {
            platform: crate::platform::HotPlatform::new(platform),
            list: AtomicPtr::new(Box::into_raw(Box::new(empty))),
            known: AtomicPtr::new(ptr::null_mut()),
            recursion: RecursionState::new(),
        }));
        let list_ops: &'static Ops = Box::leak(Box::new(Ops::new_list(dispatch)));
        let mut ft = Ftrace {
            arch,
            platform,
            sites,
            regions: Vec::new(),
            next_region: 1,
            pattern_log: Vec::new(),
            symbols: Symbols::new(symbols),
            only: None,
            registered: Vec::new(),
            dispatch,
            list_ops,
            trace_op: AtomicPtr::new(list_ops as *const Ops as *mut Ops),
            trace_func: AtomicUsize::new(0),
            dispatchers: (ops::list_func_addr(), ops::assist_func_addr()),
            retired: Retired::default(),
            initialized: false,
            killed: None,
        };
        let names = ft.names();
        ft.sites.retain(|i, _| keeps(None, names[i]));
        Ok(ft)
    }

    /// Keeps only the records of functions whose demangled path starts with
    /// one of `crates` (`crate_of`: `hello_kernel` for
    /// `hello_kernel::demo::leaf` and for
    /// `<hello_kernel::Foo as core::fmt::Debug>::fmt`); the others get no
    /// record, whatever filter is set later. Call it before
    /// [`init`](Self::init) (afterwards it does nothing).
    ///
    /// The safe default for an embedding kernel: pass its own crate name
    /// (`env!("CARGO_CRATE_NAME")`), so generic code of its dependencies
    /// (`x86_64`, `spin`, ...) that the compiler instantiated in the
    /// kernel's crate, with a patchable entry, is never traced unless
    /// asked for. Records are kept when the symbol table is missing (no
    /// names to decide by). [`NEVER_TRACED_CRATES`] are dropped whatever
    /// `crates` says (one rule decides both). Regions added
    /// later ([`add_region`](Self::add_region)) are held to the same list,
    /// so name their crates here too; a second call narrows the list.
    pub fn only_crates(mut self, crates: &[&str]) -> Self {
        if !self.initialized {
            let only: Vec<String> = crates
                .iter()
                .filter(|c| self.only.as_ref().is_none_or(|o| o.iter().any(|k| k == *c)))
                .map(|c| String::from(*c))
                .collect();
            let names = self.names();
            self.sites.retain(|i, _| keeps(Some(&only), names[i]));
            self.only = Some(only);
        }
        self
    }

    /// The wrapper that keeps the engine's own work out of every trace
    /// ([`RecursionState::quiet`]): held by every method that allocates
    /// or writes text.
    fn quiet(&self) -> Option<crate::recursion::QuietGuard<'static>> {
        let dispatch: &'static Dispatch = self.dispatch;
        dispatch.recursion.quiet(self.platform)
    }

    /// Points the trampolines' inner calls at `list` and `assist` instead of
    /// [`ops::ftrace_ops_list_func`] and [`ops::ftrace_ops_assist_func`]:
    /// for a kernel whose trampolines must reach the dispatchers through
    /// thunks placed near them, and for host tests whose simulated text is
    /// out of a call's reach of the real functions. Call before
    /// [`init`](Self::init); both must behave like the functions they stand
    /// for.
    pub fn with_dispatchers(mut self, list: usize, assist: usize) -> Self {
        self.dispatchers = (list, assist);
        self
    }

    /// Turns on the trampolines' fast path: the per-callback trampolines
    /// (a site wanted by one callback that does not need the full frame)
    /// read the CPU's index and context at the offsets `at` gives from the
    /// per-CPU base, take and release the recursion guard themselves and
    /// call the callback, instead of going through
    /// [`ftrace_ops_assist_func`](crate::ops::ftrace_ops_assist_func) and
    /// two calls into the platform. Same guard, same counts, same
    /// behaviour; fewer instructions (BENCHMARKS.md). Returns false (and
    /// changes nothing) when the backend has no fast path
    /// ([`Arch::CPU_LOCAL`]: x86_64 and i686 have one, with `%gs` as the
    /// base, ppc64 with `r13`), when another engine has it, or when a
    /// callback is registered: call it
    /// once at boot, before the first [`register`](Self::register), so
    /// that no CPU is in a trampoline while the offsets change.
    ///
    /// # Safety
    ///
    /// From this call on, whenever a traced function can be entered on any
    /// CPU, the `u32` at `at.cpu_offset` from that CPU's base (x86_64:
    /// `%gs:cpu_offset`) must equal [`Platform::cpu_id`] and the `u32` at
    /// `at.context_offset` must equal [`Platform::context`] as its index
    /// (`Context as u32`), both readable without a fault.
    pub unsafe fn use_cpu_local(&mut self, at: crate::ops::CpuLocal) -> bool {
        let words = self.dispatch.recursion.words_addr();
        let published = ops::FTRACE_FAST_WORDS.load(Ordering::Acquire);
        // One engine at a time: the trampolines and RECURSION callbacks
        // take the guard in the words published here.
        if !A::CPU_LOCAL || !self.registered.is_empty() || (published != 0 && published != words) {
            return false;
        }
        ops::FTRACE_FAST_CPU_OFF.store(at.cpu_offset, Ordering::Relaxed);
        ops::FTRACE_FAST_CTX_OFF.store(at.context_offset, Ordering::Relaxed);
        ops::FTRACE_FAST_WORDS.store(words, Ordering::Release);
        true
    }

    /// The dispatcher addresses the inner calls use: `(list, assist)`.
    pub fn dispatchers(&self) -> (usize, usize) {
        self.dispatchers
    }

    /// Every site's name, in site order (for pattern matching): one walk
    /// over the symbol table.
    fn names(&self) -> Vec<Option<&'static str>> {
        self.symbols.resolve_sorted(self.sites.ips())
    }

    /// Site `i`'s record as the arch hooks see it, with its arch word.
    fn rec(&self, i: usize) -> Record {
        let mut r = self.sites.record(i);
        if A::SITE_WORD {
            r.arch = self.site_word(i, r.ip);
        }
        r
    }

    /// [`Arch::site_word`] of site `i` (at `ip`): its rank within its
    /// region, or within the boot table (whose sites are the others).
    fn site_word(&self, i: usize, ip: usize) -> usize {
        match self.region_at(ip) {
            Some(r) => {
                let first = r.span.map_or(i, |(lo, _)| self.sites.partition_point(lo));
                self.arch.site_word(Some(&r.region.stubs), i - first)
            }
            None => {
                let below: usize = self
                    .regions
                    .iter()
                    .filter(|r| r.span.is_some_and(|(_, hi)| hi < ip))
                    .map(|r| r.count)
                    .sum();
                self.arch.site_word(None, i - below)
            }
        }
    }

    /// The region holding the site at `ip`; `None` for the boot table.
    fn region_at(&self, ip: usize) -> Option<&RegionEntry> {
        self.regions.iter().find(|r| r.contains(ip))
    }

    /// The indices of region `r`'s sites.
    fn region_indices(&self, r: &RegionEntry) -> core::ops::Range<usize> {
        match r.span {
            Some((lo, _)) => {
                let first = self.sites.partition_point(lo);
                first..first + r.count
            }
            None => 0..0,
        }
    }

    /// The shared trampolines' addresses.
    fn targets(&self) -> Targets {
        Targets {
            caller: self.arch.trampoline_addr(Trampoline::Caller),
            regs_caller: self.arch.trampoline_addr(Trampoline::RegsCaller),
        }
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
    ///
    /// Call it before any other CPU can execute instrumented code (Linux
    /// runs `ftrace_init` before `smp_init`): preparing a site rewrites the
    /// compiler's sequence with plain writes, which is only safe while no
    /// CPU executes it. Some sequences cannot be replaced safely once they
    /// may be executing, whatever the protocol: i686's `66 90 66 90 90` is
    /// three instructions, and a CPU interrupted between two of them would
    /// resume inside the new nop.
    pub fn init(&mut self) -> InitReport {
        let _quiet = self.quiet();
        if self.initialized {
            return InitReport {
                total: self.sites.len(),
                failed: Vec::new(),
            };
        }
        let p: &dyn Platform = self.platform;
        let mut failed = Vec::new();
        for i in 0..self.sites.len() {
            let mut rec = self.rec(i);
            let mut r = self.arch.init_site(p, &mut rec);
            // The backend may have moved the address (also when it failed).
            if self.sites.store(i, &rec).is_err() {
                r = r.and(Err(MOVED_AWAY));
            }
            if let Err(e) = r {
                self.sites.set_unprepared(i);
                failed.push(self.failure(Phase::Init, rec.ip, e));
            }
        }
        self.sites.resort();
        self.initialized = true;
        if self.arch.calls_unrecorded() {
            let ips: Box<[usize]> = self.sites.ips().collect();
            let known = Box::leak(Box::new(IpSet::from_sorted(ips)));
            self.dispatch.known.store(known, Ordering::Release);
        }
        if let Err(f) = self.set_trace(self.list_ops, self.dispatchers.0) {
            failed.push(f);
            self.kill(f);
        }
        InitReport {
            total: self.sites.len(),
            failed,
        }
    }

    /// Claims `ops` for this engine, or refuses it when another engine
    /// owns it (its snapshots are that engine's to free).
    fn claim(&self, ops: &'static Ops) -> Result<(), Error> {
        match ops.owner() {
            Some(d) if !ptr::eq(d, self.dispatch) => Err(Error::OtherEngine),
            Some(_) => Ok(()),
            None => {
                ops.set_owner(self.dispatch);
                Ok(())
            }
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
        let _quiet = self.quiet();
        self.usable()?;
        if ops.is_enabled() || self.registered.iter().any(|o| ptr::eq(*o, ops)) {
            return Err(Error::AlreadyRegistered);
        }
        self.claim(ops)?;
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
        let _quiet = self.quiet();
        self.usable()?;
        let Some(pos) = self.registered.iter().position(|o| ptr::eq(*o, ops)) else {
            return Err(Error::NotRegistered);
        };
        let mut list = self.registered.clone();
        list.remove(pos);
        let plan = self.plan(&list, &[])?;
        ops.set_enabled(false);
        self.registered = list;
        let r = self.commit(plan);
        // Grace period even when nothing was retired: no CPU may still be
        // inside the callback when we return (its buffer may be reused).
        self.reclaim();
        r
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
        let _quiet = self.quiet();
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
        let _quiet = self.quiet();
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
        let mut sel = vec![false; self.sites.len()];
        filter::apply(&pats, &self.names(), &mut sel).map_err(Error::Filter)?;
        let ips: Box<[usize]> = self
            .sites
            .ips()
            .zip(&sel)
            .filter(|(_, s)| **s)
            .map(|(ip, _)| ip)
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
        let _quiet = self.quiet();
        self.usable()?;
        self.claim(ops)?;
        let new: Option<Box<IpSet>> = match patterns {
            None => None,
            Some(s) => {
                let pats = filter::parse(s).map_err(Error::Filter)?;
                let mut sel = vec![false; self.sites.len()];
                let old = if notrace {
                    ops.notrace_ptr()
                } else {
                    ops.filter_ptr()
                };
                // SAFETY: the engine is the only writer of published sets,
                // so `old` stays live while we hold `&mut self`.
                if let (true, Some(old)) = (append, unsafe { old.as_ref() }) {
                    for (s, ip) in sel.iter_mut().zip(self.sites.ips()) {
                        *s = old.contains(ip);
                    }
                }
                filter::apply(&pats, &self.names(), &mut sel).map_err(Error::Filter)?;
                let ips: Box<[usize]> = self
                    .sites
                    .ips()
                    .zip(&sel)
                    .filter(|(_, s)| **s)
                    .map(|(ip, _)| ip)
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
            self.retired.push(Item::Set(old));
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

    /// Computes what every site should call with `list` registered (and
    /// `changes` applied to their sets): [`planner::plan`] over the
    /// published sets. Fails on an IPMODIFY conflict.
    fn plan(&self, list: &[&'static Ops], changes: &[SetChange<'_>]) -> Result<Vec<Want>, Error> {
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
        // SAFETY: published sets stay live while the engine (the only
        // writer) is borrowed; the sets in `changes` are ours, unpublished.
        let wants = |i: usize, ip: usize| unsafe { Ops::selects(sets[i].0, sets[i].1, ip) };
        // SAFETY: as for `wants`.
        let every = |i: usize| unsafe { Ops::selects_every(sets[i].0, sets[i].1) };
        planner::plan(
            self.sites.ips_failed(),
            list,
            &every,
            &wants,
            self.targets(),
            &mut |o| self.arch.ops_trampoline(o),
        )
        .map_err(|c| Error::IpmodifyConflict {
            ip: c.ip,
            function: self.symbols.display(c.ip),
        })
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
        self.arch
            .update_ftrace_funcs(p, func)
            .map_err(|(which, e)| {
                self.failure(Phase::Update, self.arch.trampoline_addr(which), e)
            })?;
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
            self.retired.push(Item::List(old));
        }
    }

    /// Applies a plan: list dispatcher first (it filters, so sites about to
    /// change are handled correctly whatever they call), then one patch batch,
    /// then the single-callback fast path if it applies.
    fn commit(&mut self, plan: Vec<Want>) -> Result<(), Error> {
        if let Err(f) = self.set_trace(self.list_ops, self.dispatchers.0) {
            return Err(self.kill(f));
        }
        self.publish_list();
        let p: &dyn Platform = self.platform;
        self.arch.begin_batch(p);
        // The wanted state of every site now (a failed batch kills
        // tracing, which clears every site's state again); the targets
        // once written.
        // The sites' states are stored once the batch is written (a failed
        // batch kills tracing, which clears every site's state).
        if A::WANTS_BATCH_SIZE {
            // Counting costs a pass over every site: worth it only where
            // an upper bound would make too much room.
            let changed = if plan.len() <= SMALL_TABLE {
                plan.len()
            } else {
                self.sites.count_changes(&plan, |w| w.target)
            };
            self.arch.batch_size_hint(changed);
        }
        let (arch, sites) = (&self.arch, &self.sites);
        let patched = sites.try_each_change(
            &plan,
            |w| w.target,
            |i, rec, old, new| {
                let mut with_word;
                let rec = if A::SITE_WORD {
                    with_word = *rec;
                    with_word.arch = self.site_word(i, rec.ip);
                    &with_word
                } else {
                    rec
                };
                match (old, new) {
                    (0, t) => arch.make_call(p, rec, t),
                    (o, 0) => arch.make_nop(p, rec, o),
                    (o, t) => arch.modify_call(p, rec, o, t),
                }
                .map_err(|e| (rec.ip, e))
            },
        );
        if let Err((queued, (ip, e))) = patched {
            self.arch.abort_batch(p);
            return Err(self.fail_batch(ip, e, Some(queued), &plan));
        }
        if let Err(SiteError { ip, error }) = self.arch.finish_batch(p) {
            return Err(self.fail_batch(ip, error, None, &plan));
        }
        self.sites.commit_plan(&plan);
        if let [only] = self.registered[..]
            && let Err(f) = self.set_trace(only, self.dispatchers.1)
        {
            return Err(self.kill(f));
        }
        self.reclaim();
        Ok(())
    }

    /// Sets site `i`'s wanted-state flags and count (what it calls is its
    /// target; the flags derived from that are computed, never stored).
    fn set_rec_state(&mut self, i: usize, want: Option<&Want>) {
        let w = want.copied().unwrap_or_default();
        let f = (self.sites.rec_flags(i) & RecFlags::FAILED) | want_flags(&w);
        self.sites.set_state(i, f, w.count());
    }

    /// A batch failed at `ip`: find out what each touched site now holds
    /// (the first `touched` sites whose target the plan changes, all of
    /// them when `None`), mark the failing one FAILED, kill tracing.
    fn fail_batch(
        &mut self,
        ip: usize,
        error: PatchError,
        touched: Option<usize>,
        plan: &[Want],
    ) -> Error {
        let p: &dyn Platform = self.platform;
        let touched = self.sites.changes(plan, |w| w.target, touched);
        for (i, old) in touched {
            let rec = self.rec(i);
            let new = plan[i].target;
            let now = self.read_state(p, &rec, &[old, new]);
            match now {
                Some(t) => self.sites.set_target(i, t),
                None => self.sites.set_failed(i),
            }
        }
        if let Some(i) = self.sites.index_of(ip) {
            self.sites.set_failed(i);
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
        let _ = self.set_trace(self.list_ops, self.dispatchers.0);
        for i in 0..self.sites.len() {
            self.set_rec_state(i, None);
        }
        self.killed = Some(f);
        Error::Patch(f)
    }

    /// Adds a region of code registered after boot (Linux's module load):
    /// records its sites, prepares each with [`Arch::init_region_site`]
    /// (failures are marked FAILED and reported, as by [`init`](Self::init)),
    /// and enables the new sites the registered callbacks want, in one batch.
    /// As for [`init`](Self::init), no CPU may execute the region's code
    /// before this returns (a module's code runs only once it is loaded).
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
    /// boot table or another region), when its stub area overlaps another
    /// region's, or when one of its sites lies more than 2 GiB from the
    /// lowest boot site ([`Error::OutOfReach`]: records keep 32-bit
    /// offsets; load modules near the kernel's text, as x86_64 must anyway
    /// for `call rel32`); on an IPMODIFY conflict over the new sites the region is
    /// removed again (stubs released). A patch failure kills tracing and
    /// the region is forgotten without touching its text again.
    pub fn add_region(&mut self, region: CodeRegion) -> Result<RegionReport, Error> {
        let _quiet = self.quiet();
        self.usable()?;
        self.check_overlap(&region)?;
        let p: &dyn Platform = self.platform;
        // Offsets from the boot table's base (from the region's own lowest
        // site when the engine has no site yet).
        let base = (self.sites.len() > 0).then(|| self.sites.base());
        let mut new = SiteTable::from_addrs(region.sites.iter().copied(), base)?;
        let id = RegionId(self.next_region);
        self.next_region += 1;
        // Names first, and the sites that get no record dropped before
        // init: an arch's region init may claim resources (ppc64 writes a
        // stub) that only a kept record would release.
        let syms = self.symbols;
        let names = syms.resolve_sorted(new.ips());
        let only = self.only.as_deref();
        new.retain(|i, _| keeps(only, names[i]));
        let mut failed = Vec::new();
        for index in 0..new.len() {
            let mut rec = new.record(index);
            if A::SITE_WORD {
                rec.arch = self.arch.site_word(Some(&region.stubs), index);
            }
            let mut r = self.arch.init_region_site(p, &mut rec, &region, index);
            if new.store(index, &rec).is_err() {
                r = r.and(Err(MOVED_AWAY));
            }
            if let Err(e) = r {
                new.set_unprepared(index);
                failed.push(self.failure(Phase::Init, rec.ip, e));
            }
        }
        // (The arch may move a site within its function, ppc64 past the TOC
        // set-up: the name stays the function's, as for boot sites.)
        new.resort();
        let total = new.len();
        let name = region.name;
        let span = (total > 0).then(|| (new.ip(0), new.ip(total - 1)));
        self.regions.push(RegionEntry {
            id,
            region: CodeRegion {
                sites: Vec::new(),
                ..region
            },
            span,
            count: total,
        });
        let new_names = syms.resolve_sorted(new.ips());
        let changes = self.replay_patterns(&new, &new_names);
        // Merge into the site table.
        self.sites.merge(&new);
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
                self.retired.push(Item::Set(old));
            }
        }
        if let Err(e) = self.commit(plan) {
            let _ = self.forget_region(id, false);
            return Err(e);
        }
        let enabled = self
            .regions
            .iter()
            .find(|r| r.id == id)
            .map_or(0..0, |r| self.region_indices(r))
            .filter(|&i| self.sites.is_enabled(i))
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
        let _quiet = self.quiet();
        if !self.initialized {
            return Err(Error::NotInitialized);
        }
        let Some(r) = self.regions.iter().find(|r| r.id == id) else {
            return Err(Error::NoSuchRegion);
        };
        let range = self.region_indices(r);
        if self.killed.is_some() {
            let _ = self.forget_region(id, false);
            return Ok(());
        }
        let mut plan = self.plan(&self.registered, &[])?;
        for want in &mut plan[range] {
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

    /// The regions added and not removed, in the order they were added
    /// (their [`CodeRegion::sites`] are not kept: the site table holds
    /// them).
    pub fn regions(&self) -> impl Iterator<Item = (RegionId, &CodeRegion)> {
        self.regions.iter().map(|r| (r.id, &r.region))
    }

    /// The region of record `i`; `None` for the boot site table.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn record_region(&self, i: usize) -> Option<RegionId> {
        self.region_at(self.sites.ip(i)).map(|r| r.id)
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
        for r in &self.regions {
            let spans_meet = match (span, r.span) {
                (Some((lo, hi)), Some((rlo, rhi))) => lo <= rhi && rlo <= hi,
                _ => false,
            };
            if spans_meet || stubs_meet(&region.stubs, &r.region.stubs) {
                return overlap(r.region.name);
            }
        }
        if let Some((lo, hi)) = span {
            let i = self.sites.partition_point(lo);
            if i < self.sites.len() && self.sites.ip(i) <= hi {
                let ip = self.sites.ip(i);
                return overlap(self.region_at(ip).map_or("kernel", |r| r.region.name));
            }
        }
        Ok(())
    }

    /// Replays every pattern history over the new records `recs` (named
    /// `names`): for each set that gains sites, the new set, unpublished.
    fn replay_patterns(
        &self,
        recs: &SiteTable,
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
            let picked = (0..recs.len())
                .filter(|&i| sel[i] && !recs.is_failed(i))
                .map(|i| recs.ip(i));
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
        let range = self
            .regions
            .iter()
            .find(|r| r.id == id)
            .map_or(0..0, |r| self.region_indices(r));
        for i in range.clone() {
            let rec = self.rec(i);
            ips.push(rec.ip);
            if release
                && !self.sites.is_unprepared(i)
                && let Err(e) = self.arch.release_site(p, &rec)
            {
                first_failure.get_or_insert(self.failure(Phase::Release, rec.ip, e));
            }
        }
        if release && !ips.is_empty() {
            p.sync_cores();
        }
        self.sites.retain(|i, _| !range.contains(&i));
        self.regions.retain(|r| r.id != id);
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
                self.retired.push(Item::Set(old));
            }
        }
        self.reclaim();
        first_failure
    }

    /// Waits for a grace period (every CPU that was inside a dispatcher has
    /// left it since: [`RecursionState::synchronize`]) and frees the
    /// snapshots retired before it. Runs at the end of every update, so the
    /// backlog is bounded by one update's replacements. Called from inside a
    /// callback (which cannot wait for itself) it frees nothing and returns
    /// false; the snapshots stay retired until the next update.
    pub fn reclaim(&mut self) -> bool {
        let _quiet = self.quiet();
        let own = self.platform.cpu_id();
        self.retired.free_after_grace(&self.dispatch.recursion, own)
    }

    /// True when `ops`' current filter and notrace sets select the site at
    /// `ip` (whether or not `ops` is registered).
    pub fn ops_wants(&self, ops: &Ops, ip: usize) -> bool {
        // The engine is the only writer of published sets and is borrowed.
        ops.wants(ip)
    }

    /// `ops`' current filter set (`None` or empty: every function), as
    /// published for the dispatchers; Linux's `set_ftrace_filter` contents.
    pub fn ops_filter(&self, ops: &Ops) -> Option<&IpSet> {
        // SAFETY: the engine is the only writer of published sets and it is
        // borrowed for as long as the reference lives, so the set is neither
        // replaced nor freed meanwhile.
        unsafe { ops.filter_ptr().as_ref() }
    }

    /// `ops`' current notrace set (`None` or empty: none); Linux's
    /// `set_ftrace_notrace` contents.
    pub fn ops_notrace(&self, ops: &Ops) -> Option<&IpSet> {
        // SAFETY: as in `ops_filter`.
        unsafe { ops.notrace_ptr().as_ref() }
    }

    /// Snapshots retired and not yet freed (0 after every update that
    /// completed its grace period).
    pub fn retired_len(&self) -> usize {
        self.retired.len()
    }

    /// Number of sites.
    pub fn len(&self) -> usize {
        self.sites.len()
    }

    /// True when there is no site.
    pub fn is_empty(&self) -> bool {
        self.sites.len() == 0
    }

    /// Every site (record, current target, region, name), in address
    /// order, each assembled from the stored entry ([`site`](Self::site)).
    pub fn sites(&self) -> impl ExactSizeIterator<Item = Site> + '_ {
        let names = self.names();
        (0..self.sites.len()).map(move |i| Site {
            name: names[i],
            ..self.site_unnamed(i)
        })
    }

    /// Every site's address, in order.
    pub fn site_ips(&self) -> impl ExactSizeIterator<Item = usize> + Clone + '_ {
        self.sites.ips()
    }

    /// Site `i`: its record (with the arch word), current target, region
    /// and name.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn site(&self, i: usize) -> Site {
        let s = self.site_unnamed(i);
        Site {
            name: self.symbols.resolve(s.rec.ip).map(|(n, _)| n),
            ..s
        }
    }

    fn site_unnamed(&self, i: usize) -> Site {
        let rec = self.rec(i);
        Site {
            rec,
            target: self.sites.target(i),
            region: self.region_at(rec.ip).map_or(0, |r| r.id.0),
            name: None,
        }
    }

    /// Site `i`'s flags: the record's stored ones with the state derived
    /// from what it calls ([`Site::flags`]).
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn site_flags(&self, i: usize) -> RecFlags {
        derived_flags(
            self.sites.rec_flags(i),
            self.sites.target(i),
            &self.targets(),
        )
    }

    /// Index of the site at `ip`. O(log n).
    pub fn record_index(&self, ip: usize) -> Option<usize> {
        self.sites.index_of(ip)
    }

    /// Name of site `i`'s function, when symbols are known.
    pub fn record_name(&self, i: usize) -> Option<&'static str> {
        if i >= self.sites.len() {
            return None;
        }
        self.symbols.resolve(self.sites.ip(i)).map(|(n, _)| n)
    }

    /// Every site's function name, in site order (one walk over the symbol
    /// table: cheaper than [`record_name`](Self::record_name) for each).
    pub fn record_names(&self) -> Vec<Option<&'static str>> {
        self.names()
    }

    /// Number of sites currently calling a trampoline.
    pub fn enabled_count(&self) -> usize {
        (0..self.sites.len())
            .filter(|&i| self.sites.is_enabled(i))
            .count()
    }

    /// Number of FAILED sites.
    pub fn failed_count(&self) -> usize {
        (0..self.sites.len())
            .filter(|&i| self.sites.is_failed(i))
            .count()
    }

    /// What site `i` calls.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn site_state(&self, i: usize) -> SiteState {
        let t = self.sites.target(i);
        let targets = self.targets();
        if self.sites.is_failed(i) {
            SiteState::Failed
        } else if t == 0 {
            SiteState::Nop
        } else if t == targets.caller {
            SiteState::Caller
        } else if t == targets.regs_caller {
            SiteState::RegsCaller
        } else {
            SiteState::OpsTrampoline(t)
        }
    }

    /// Current call target of site `i` (0: nop).
    pub fn site_target(&self, i: usize) -> usize {
        self.sites.target(i)
    }

    /// Reads every non-FAILED site and returns how many differ from the
    /// canonical nop (or cannot be read).
    pub fn check_all_nops(&self) -> usize {
        let p: &dyn Platform = self.platform;
        (0..self.sites.len())
            .filter(|&i| {
                !self.sites.is_failed(i) && self.read_state(p, &self.rec(i), &[0]).is_none()
            })
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
