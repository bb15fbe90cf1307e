//! x86 `test=abi` (x86_64 and every i686 variant): the register frame the
//! trampolines hand callbacks ([`FtraceRegs`]) checked against the calling
//! convention, argument changes through it, and return hooking
//! ([`ftrace::fgraph`]) checked against the return-value registers.
//!
//! Three traced functions take integer arguments and compute a value from
//! all of them, each argument with its own weight (an argument read from the
//! wrong place changes the result): [`abi_args6`] (6 arguments: all in
//! registers on x86_64), [`abi_args10`] (10: the last four on the stack on
//! x86_64) and [`abi_wide`] (4, returning a `u128`). On i686 every argument
//! is on the stack (the crate's `ARG_REGS` is empty there). They are called
//! through function pointers (`black_box`), so each is a real call with the
//! calling convention of its declaration.
//!
//! Each function is called untraced, then once per round:
//!
//! 1. a checking callback reads every argument (`regs.arg(n)` for register
//!    arguments, which must be `None` past them; the stack word at the
//!    convention's place, [`callconv::stack_arg_slot`], for the others),
//!    checks `ret_slot == sp`, that the word at `ret_slot` is `parent_ip`
//!    (the return address into [`call_functions`]), `regs.ip` (site + 5)
//!    and, in a full frame, the saved stack pointer; on one callback's own
//!    trampoline, its own full-frame trampoline, the shared list trampoline
//!    (a second, counting callback on the same functions) and the shared
//!    regs trampoline;
//! 2. a `SAVE_REGS` callback adds [`DELTA`] to argument 1 (on its own
//!    full-frame trampoline, then on the shared regs trampoline): with
//!    `set_arg` where the convention passes it in a register (x86_64);
//!    where it is on the stack (i686), `set_arg` must refuse (return false)
//!    and the callback writes the stack word instead
//!    ([`callconv::set_entry_word`]). The results must change by exactly
//!    what the reference formulas say. One exception, printed as
//!    `unchanged`: in the mcount builds (i686 `mcount`, `nodynamic`) the
//!    site follows a prologue that may already have loaded the argument
//!    ([`callconv::SITE_AFTER_PROLOGUE`]; with this toolchain `abi_wide`'s
//!    does), so there a result may also stay exactly the untraced one, never
//!    anything else. Changing arguments needs fentry sites, as in Linux;
//! 3. a graph user (entry handler returning true) hooks every return, alone
//!    (own trampoline), with the checking callback (list trampoline), and
//!    with the full-frame one (regs trampoline); its exit handler must see
//!    each result in the return-value registers (`retval`, and `retval2`
//!    for the high half of an x86_64 `u128` or an i686 `u64`; an i686
//!    `u128` comes back through the hidden result pointer in `retval`).
//!
//! Every round first checks that each function's site really calls the
//! round's trampoline. i686 `nodynamic` builds have no per-callback
//! trampolines: their sites always go through the list dispatcher (and its
//! full frame); their rounds print the same lines.
//!
//! The expected arguments and results are constants ([`ARGS`],
//! [`EXPECTED`], [`EXPECTED_SET`], computed at compile time by reference
//! formulas written apart from the functions), never values the traced code
//! produced. Safe code: the stack reads and the one stack write are
//! [`callconv`]'s.
//!
//! The functions live here, outside `kernel::arch`, because the x86 backend
//! keeps the sites of `kernel::arch` untraced (`filter_sites`).

use alloc::string::String;
use core::fmt::Write;
use core::hint::black_box;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ftrace::fgraph::{self, GraphEntry, GraphOps, GraphReturn};
use ftrace::{Arch, FtraceRegs, Ops, OpsFlags, Platform, SiteState};

use crate::arch::{FtraceArch, callconv};
use crate::kprintln;
use crate::tracing::{Engine, with_engine};

/// Argument `n` of every call is `ARGS[n]` (its low 32 bits on i686):
/// distinct words with distinct halves.
pub const ARGS: [u64; 10] = [
    0x1111_1111_1000_0001,
    0x2222_2222_2000_0002,
    0x3333_3333_3000_0003,
    0x4444_4444_4000_0004,
    0x5555_5555_5000_0005,
    0x6666_6666_6000_0006,
    0x7777_7777_7000_0007,
    0x8888_8888_8000_0008,
    0x9999_9999_9000_0009,
    0xaaaa_aaaa_a000_000a,
];

/// Weight of argument `n` in [`abi_args6`] and [`abi_args10`].
const WEIGHTS: [u64; 10] = [1, 3, 5, 7, 11, 13, 17, 19, 23, 29];

/// The argument the `set_arg` callback changes, and by how much.
pub const SET_ARG: usize = 1;
/// Added to argument [`SET_ARG`].
pub const DELTA: usize = 0x100;

/// Selects exactly the three test functions.
const FILTER: &str = "kernel::abi::abi_*";

/// Six integer arguments: all in registers on x86_64, on the stack on i686.
/// `Σ WEIGHTS[i] * arg_i` (wrapping, 64 bits).
#[inline(never)]
pub fn abi_args6(a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> u64 {
    (a as u64)
        .wrapping_add((b as u64).wrapping_mul(3))
        .wrapping_add((c as u64).wrapping_mul(5))
        .wrapping_add((d as u64).wrapping_mul(7))
        .wrapping_add((e as u64).wrapping_mul(11))
        .wrapping_add((f as u64).wrapping_mul(13))
}

/// Ten integer arguments: the last four on the stack on x86_64, all of them
/// on i686. `Σ WEIGHTS[i] * arg_i` (wrapping, 64 bits).
#[inline(never)]
#[expect(clippy::too_many_arguments, reason = "arguments on the stack")]
pub fn abi_args10(
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
    f: usize,
    g: usize,
    h: usize,
    i: usize,
    j: usize,
) -> u64 {
    (a as u64)
        .wrapping_add((b as u64).wrapping_mul(3))
        .wrapping_add((c as u64).wrapping_mul(5))
        .wrapping_add((d as u64).wrapping_mul(7))
        .wrapping_add((e as u64).wrapping_mul(11))
        .wrapping_add((f as u64).wrapping_mul(13))
        .wrapping_add((g as u64).wrapping_mul(17))
        .wrapping_add((h as u64).wrapping_mul(19))
        .wrapping_add((i as u64).wrapping_mul(23))
        .wrapping_add((j as u64).wrapping_mul(29))
}

/// A two-word result: `a * b + (c << 64) + 3 * d` (wrapping, 128 bits).
#[inline(never)]
pub fn abi_wide(a: usize, b: usize, c: usize, d: usize) -> u128 {
    (a as u128 * b as u128)
        .wrapping_add((c as u128) << 64)
        .wrapping_add(d as u128 * 3)
}

/// Argument `n` as passed, with [`SET_ARG`] increased by `delta`.
const fn arg_with(n: usize, delta: usize) -> usize {
    let a = ARGS[n] as usize;
    if n == SET_ARG {
        a.wrapping_add(delta)
    } else {
        a
    }
}

/// Argument `n` as the caller passes it.
const fn arg(n: usize) -> usize {
    arg_with(n, 0)
}

/// Reference for [`abi_args6`] (`n` = 6) and [`abi_args10`] (`n` = 10).
const fn weighted(n: usize, delta: usize) -> u128 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < n {
        sum = sum.wrapping_add((arg_with(i, delta) as u64).wrapping_mul(WEIGHTS[i]));
        i += 1;
    }
    sum as u128
}

/// Results of `[abi_args6, abi_args10, abi_wide]`.
pub type Results = [u128; 3];

/// The untraced results.
pub const EXPECTED: Results = [weighted(6, 0), weighted(10, 0), wide_ref(0)];
/// The results with argument [`SET_ARG`] increased by [`DELTA`].
pub const EXPECTED_SET: Results = [weighted(6, DELTA), weighted(10, DELTA), wide_ref(DELTA)];

/// Reference for [`abi_wide`].
const fn wide_ref(delta: usize) -> u128 {
    let (a, b, c, d) = (
        arg_with(0, delta) as u128,
        arg_with(1, delta) as u128,
        arg_with(2, delta) as u128,
        arg_with(3, delta) as u128,
    );
    (a * b).wrapping_add(c << 64).wrapping_add(d * 3)
}

/// A test function as the checks see it.
struct Func {
    name: &'static str,
    /// Its symbol (the record's name).
    symbol: &'static str,
    /// Integer arguments.
    nargs: usize,
    /// Hidden arguments before them ([`callconv::U128_HIDDEN_ARGS`]).
    hidden: usize,
}

const FUNCS: [Func; 3] = [
    Func {
        name: "args6",
        symbol: "kernel::abi::abi_args6",
        nargs: 6,
        hidden: 0,
    },
    Func {
        name: "args10",
        symbol: "kernel::abi::abi_args10",
        nargs: 10,
        hidden: 0,
    },
    Func {
        name: "wide",
        symbol: "kernel::abi::abi_wide",
        nargs: 4,
        hidden: callconv::U128_HIDDEN_ARGS,
    },
];
/// Index of [`abi_wide`] in [`FUNCS`].
const WIDE: usize = 2;

/// Calls the three functions through opaque function pointers (real calls
/// with their declared convention, from here: the parent every check
/// expects).
#[inline(never)]
fn call_functions() -> Results {
    let a = |n: usize| black_box(arg(n));
    let args6: fn(usize, usize, usize, usize, usize, usize) -> u64 = black_box(abi_args6);
    #[expect(clippy::type_complexity, reason = "the function's own type")]
    let args10: fn(
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
    ) -> u64 = black_box(abi_args10);
    let wide: fn(usize, usize, usize, usize) -> u128 = black_box(abi_wide);
    let r6 = args6(a(0), a(1), a(2), a(3), a(4), a(5));
    let r10 = args10(a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7), a(8), a(9));
    let rw = wide(a(0), a(1), a(2), a(3));
    black_box([u128::from(r6), u128::from(r10), rw])
}

/// Callback kinds ([`Ops::private`]), counted apart.
const CHECK_KIND: usize = 0;
const SET_KIND: usize = 1;
const COUNT_KIND: usize = 2;

/// Checks every argument and the frame (module docs).
static CHECK: Ops = Ops::with_private(check_call, OpsFlags::empty(), CHECK_KIND);
/// The same with the full frame.
static CHECK_REGS: Ops = Ops::with_private(check_call, OpsFlags::SAVE_REGS, CHECK_KIND);
/// Changes argument [`SET_ARG`].
static SET: Ops = Ops::with_private(set_call, OpsFlags::SAVE_REGS, SET_KIND);
/// Only counts: a second callback on the sites sends them to the list.
static COUNT: Ops = Ops::with_private(count_call, OpsFlags::empty(), COUNT_KIND);
/// Hooks every return of the test functions.
static GRAPH: GraphOps = GraphOps::new(graph_entry, graph_exit, 0);

/// Record `ip` of each test function (set before the rounds).
static SITES: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
/// `call_functions`' address range `[start, end)`.
static CALLER: [AtomicUsize; 2] = [const { AtomicUsize::new(0) }; 2];
/// The round's frames must be full.
static WANT_FULL: AtomicBool = AtomicBool::new(false);

/// Calls per callback kind and function in the current round.
static CALLS: [[AtomicUsize; 3]; 3] = [const { [const { AtomicUsize::new(0) }; 3] }; 3];
/// Failed checks per function in the current round.
static FUNC_BAD: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
/// Graph entries, returns and correct return values per function in the
/// current round.
static ENTRIES: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
static RETURNS: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
static RET_OK: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
/// Callback or handler calls for an `ip` that is no test function's.
static UNKNOWN: AtomicUsize = AtomicUsize::new(0);

/// Totals over all rounds.
static REG_ARGS: AtomicUsize = AtomicUsize::new(0);
static STACK_ARGS: AtomicUsize = AtomicUsize::new(0);
static FRAME: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);
static SET_REG: AtomicUsize = AtomicUsize::new(0);
static SET_STACK: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);
static RETURNS_SEEN: AtomicUsize = AtomicUsize::new(0);
static RETVALS_BAD: AtomicUsize = AtomicUsize::new(0);

/// The first failed check, printed after its round.
#[derive(Debug, Clone, Copy)]
struct Failure {
    func: usize,
    what: &'static str,
    n: usize,
    want: Option<u128>,
    got: Option<u128>,
}

static FIRST_FAILURE: spin::Mutex<Option<Failure>> = spin::Mutex::new(None);

/// Index in [`FUNCS`] of the function whose site is `ip`.
fn func_of(ip: usize) -> Option<usize> {
    SITES.iter().position(|s| s.load(Ordering::Relaxed) == ip)
}

fn bump(c: &AtomicUsize) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn fail(func: usize, what: &'static str, n: usize, want: Option<u128>, got: Option<u128>) {
    bump(&FAILED);
    if let Some(b) = FUNC_BAD.get(func) {
        bump(b);
    }
    FIRST_FAILURE.lock().get_or_insert(Failure {
        func,
        what,
        n,
        want,
        got,
    });
}

/// One check of `counter`'s kind: `got` must be `want`.
fn check(
    func: usize,
    counter: &AtomicUsize,
    what: &'static str,
    n: usize,
    want: Option<usize>,
    got: Option<usize>,
) {
    bump(counter);
    if got != want {
        let w = |v: Option<usize>| v.map(|x| x as u128);
        fail(func, what, n, w(want), w(got));
    }
}

/// [`CHECK`] and [`CHECK_REGS`]: every argument where the convention puts
/// it, and the frame.
extern "C" fn check_call(ip: usize, parent_ip: usize, ops: &Ops, regs: &mut FtraceRegs) {
    let Some(k) = func_of(ip) else {
        bump(&UNKNOWN);
        return;
    };
    bump(&CALLS[ops.private()][k]);
    let f = &FUNCS[k];
    for n in 0..f.nargs {
        let reg = regs.arg::<FtraceArch>(n);
        match callconv::stack_arg_slot(n, f.hidden) {
            None => check(k, &REG_ARGS, "register argument", n, Some(arg(n)), reg),
            Some(slot) => {
                // Past the register arguments: arg() has none, the stack
                // word is the value.
                let got = if reg.is_none() {
                    callconv::entry_word(regs, slot)
                } else {
                    reg
                };
                check(k, &STACK_ARGS, "stack argument", n, Some(arg(n)), got);
            }
        }
    }
    let sp = Some(regs.sp);
    check(k, &FRAME, "ret_slot (= sp)", 0, sp, Some(regs.ret_slot));
    let parent = Some(parent_ip);
    check(
        k,
        &FRAME,
        "word at ret_slot (= parent_ip)",
        0,
        parent,
        callconv::ret_slot_word(regs),
    );
    check(k, &FRAME, "regs.parent_ip", 0, parent, Some(regs.parent_ip));
    let [lo, hi] = CALLER.each_ref().map(|c| c.load(Ordering::Relaxed));
    let in_caller = (lo..hi).contains(&parent_ip);
    check(
        k,
        &FRAME,
        "parent_ip in call_functions",
        0,
        parent,
        in_caller.then_some(parent_ip),
    );
    let resume = ip.wrapping_add(callconv::SITE_CALL_LEN);
    check(
        k,
        &FRAME,
        "regs.ip (= site + 5)",
        0,
        Some(resume),
        Some(regs.ip),
    );
    if regs.is_full() {
        check(
            k,
            &FRAME,
            "saved stack pointer",
            0,
            sp,
            Some(regs.gpr[callconv::SP_GPR]),
        );
    } else if WANT_FULL.load(Ordering::Relaxed) {
        fail(k, "full frame", 0, Some(1), Some(0));
    }
}

/// [`SET`]: adds [`DELTA`] to argument [`SET_ARG`], with `set_arg` when the
/// convention passes it in a register, through its stack word otherwise
/// (after checking that `set_arg` refuses it).
extern "C" fn set_call(ip: usize, _parent_ip: usize, ops: &Ops, regs: &mut FtraceRegs) {
    let Some(k) = func_of(ip) else {
        bump(&UNKNOWN);
        return;
    };
    bump(&CALLS[ops.private()][k]);
    let n = SET_ARG;
    let (old, new) = (arg(n), arg(n).wrapping_add(DELTA));
    match callconv::stack_arg_slot(n, FUNCS[k].hidden) {
        None => {
            check(
                k,
                &SET_REG,
                "argument to change",
                n,
                Some(old),
                regs.arg::<FtraceArch>(n),
            );
            if !regs.set_arg::<FtraceArch>(n, new) {
                fail(k, "set_arg refused a register argument", n, None, None);
            }
            // The first argument past the registers: set_arg must refuse.
            if regs.set_arg::<FtraceArch>(callconv::REG_ARGS, 0) {
                fail(
                    k,
                    "set_arg accepted a stack argument",
                    callconv::REG_ARGS,
                    None,
                    None,
                );
            } else {
                bump(&REFUSED);
            }
        }
        Some(slot) => {
            if regs.set_arg::<FtraceArch>(n, new) {
                fail(k, "set_arg accepted a stack argument", n, None, None);
            } else {
                bump(&REFUSED);
            }
            let got = callconv::entry_word(regs, slot);
            check(k, &SET_STACK, "argument to change", n, Some(old), got);
            if !callconv::set_entry_word(regs, slot, new) {
                fail(k, "stack argument not writable", n, None, None);
            }
        }
    }
}

/// [`COUNT`].
extern "C" fn count_call(ip: usize, _parent_ip: usize, ops: &Ops, _regs: &mut FtraceRegs) {
    match func_of(ip) {
        Some(k) => bump(&CALLS[ops.private()][k]),
        None => bump(&UNKNOWN),
    }
}

/// [`GRAPH`]'s entry: wants every return.
fn graph_entry(_g: &GraphOps, ent: &GraphEntry<'_>, _regs: &mut FtraceRegs) -> bool {
    match func_of(ent.func) {
        Some(k) => bump(&ENTRIES[k]),
        None => bump(&UNKNOWN),
    }
    true
}

/// [`GRAPH`]'s exit: the result in the return-value registers must be the
/// expected one.
fn graph_exit(_g: &GraphOps, ret: &GraphReturn<'_>) {
    let Some(k) = func_of(ret.func) else {
        bump(&UNKNOWN);
        return;
    };
    bump(&RETURNS[k]);
    bump(&RETURNS_SEEN);
    let got = if k == WIDE {
        callconv::u128_result(ret.retval, ret.retval2)
    } else {
        Some(u128::from(callconv::u64_result(ret.retval, ret.retval2)))
    };
    if got == Some(EXPECTED[k]) {
        bump(&RET_OK[k]);
    } else {
        bump(&RETVALS_BAD);
        fail(k, "graph return value", 0, Some(EXPECTED[k]), got);
    }
}

/// The trampoline a round's sites must call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The only callback's own trampoline (its full-frame entry when it
    /// needs registers).
    PerCallback,
    /// The shared list trampoline (`ftrace_caller`).
    List,
    /// The shared regs trampoline (`ftrace_regs_caller`).
    ListRegs,
}

/// One traced run of the three functions.
struct Round {
    name: &'static str,
    /// Registered in this order (the list calls them in this order), then
    /// the graph user.
    ops: &'static [&'static Ops],
    graph: bool,
    path: Path,
    expect: &'static Results,
}

impl Round {
    /// Every callback of the round, the graph user's included.
    fn all_ops(&self) -> impl Iterator<Item = &'static Ops> + '_ {
        let g: &'static Ops = GRAPH.ops();
        self.ops.iter().copied().chain(self.graph.then_some(g))
    }

    fn needs_regs(&self) -> bool {
        self.all_ops().any(Ops::needs_regs)
    }
}

/// A [`Round`]: `name`, its callbacks, whether the graph user joins, the
/// trampoline its sites must call and the results it expects.
macro_rules! round {
    ($name:expr, [$($ops:ident),*], $graph:expr, $path:ident, $expect:ident) => {
        Round {
            name: $name,
            ops: &[$(&$ops),*],
            graph: $graph,
            path: Path::$path,
            expect: &$expect,
        }
    };
}

static CHECK_ROUNDS: [Round; 4] = [
    round!("per-callback", [CHECK], false, PerCallback, EXPECTED),
    round!(
        "per-callback regs",
        [CHECK_REGS],
        false,
        PerCallback,
        EXPECTED
    ),
    round!("list", [CHECK, COUNT], false, List, EXPECTED),
    round!("list regs", [CHECK_REGS, COUNT], false, ListRegs, EXPECTED),
];

static SET_ROUNDS: [Round; 2] = [
    round!(
        "set_arg per-callback regs",
        [SET],
        false,
        PerCallback,
        EXPECTED_SET
    ),
    round!(
        "set_arg list regs",
        [COUNT, SET],
        false,
        ListRegs,
        EXPECTED_SET
    ),
];

// The checking callback comes first: it reads the return address before the
// graph user replaces it.
static GRAPH_ROUNDS: [Round; 3] = [
    round!("graph per-callback", [], true, PerCallback, EXPECTED),
    round!("graph list", [CHECK], true, List, EXPECTED),
    round!("graph list regs", [CHECK_REGS], true, ListRegs, EXPECTED),
];

/// `abi: untraced: args6=0x… args10=0x… wide=0x…`'s values part.
fn format_results(r: &Results) -> String {
    let mut s = String::new();
    for (i, (f, v)) in FUNCS.iter().zip(r).enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(s, "{sep}{}={v:#x}", f.name);
    }
    s
}

/// Finds the test functions' records and `call_functions`' range.
fn locate(e: &Engine) -> Result<(), String> {
    for (f, site) in FUNCS.iter().zip(&SITES) {
        let i = (0..e.len())
            .find(|&i| e.record_name(i) == Some(f.symbol))
            .ok_or_else(|| alloc::format!("no site for {}", f.symbol))?;
        site.store(e.site(i).ip(), Ordering::Relaxed);
    }
    let table = e.symbols().table().ok_or("no symbol table")?;
    let caller = table
        .find("kernel::abi::call_functions")
        .filter(|s| s.size > 0)
        .ok_or("no symbol with a size for kernel::abi::call_functions")?;
    CALLER[0].store(caller.addr as usize, Ordering::Relaxed);
    CALLER[1].store(
        (caller.addr + u64::from(caller.size)) as usize,
        Ordering::Relaxed,
    );
    Ok(())
}

/// The site state `r` requires of every test function.
fn expected_state(e: &Engine, r: &Round) -> SiteState {
    let shared = if r.needs_regs() {
        SiteState::RegsCaller
    } else {
        SiteState::Caller
    };
    match r.path {
        Path::List => SiteState::Caller,
        Path::ListRegs => SiteState::RegsCaller,
        // No per-callback trampoline (i686 nodynamic): the list's.
        Path::PerCallback => match r.all_ops().next().and_then(|o| e.arch().ops_trampoline(o)) {
            Some(t) => SiteState::OpsTrampoline(t),
            None => shared,
        },
    }
}

/// Registers `r`'s callbacks on the three functions and checks that their
/// sites call the round's trampoline.
fn register(e: &mut Engine, r: &Round) -> Result<(), String> {
    let selected = |n: usize| {
        if n == FUNCS.len() {
            Ok(())
        } else {
            Err(alloc::format!("{FILTER} selects {n} functions"))
        }
    };
    for &o in r.ops {
        selected(
            e.set_filter(o, FILTER)
                .map_err(|err| alloc::format!("{err}"))?,
        )?;
        e.register(o).map_err(|err| alloc::format!("{err}"))?;
    }
    if r.graph {
        selected(
            e.set_filter(GRAPH.ops(), FILTER)
                .map_err(|err| alloc::format!("{err}"))?,
        )?;
        e.register_graph(&GRAPH)
            .map_err(|err| alloc::format!("{err}"))?;
    }
    let want = expected_state(e, r);
    for (f, site) in FUNCS.iter().zip(&SITES) {
        let i = e.record_index(site.load(Ordering::Relaxed));
        let state = i.map(|i| e.site_state(i));
        if state != Some(want) {
            return Err(alloc::format!(
                "{}: site is {state:?}, expected {want:?}",
                f.symbol
            ));
        }
    }
    Ok(())
}

/// Takes `r`'s callbacks off again; true when every site is the nop after.
fn unregister(e: &mut Engine, r: &Round) -> bool {
    let mut ok = true;
    if r.graph {
        ok &= e.unregister_graph(&GRAPH).is_ok() && e.clear_filter(GRAPH.ops()).is_ok();
    }
    for &o in r.ops {
        ok &= e.unregister(o).is_ok() && e.clear_filter(o).is_ok();
    }
    ok && e.check_all_nops() == 0
}

/// Runs one round and prints `abi: <name>: args6 ok, args10 ok, wide ok`;
/// returns the results and whether everything held.
fn run_round(r: &Round) -> (Results, bool) {
    for c in CALLS.iter().flatten().chain(&FUNC_BAD) {
        c.store(0, Ordering::Relaxed);
    }
    for c in ENTRIES.iter().chain(&RETURNS).chain(&RET_OK) {
        c.store(0, Ordering::Relaxed);
    }
    WANT_FULL.store(r.needs_regs(), Ordering::Relaxed);
    let registered = with_engine(|e| register(e, r));
    let results = call_functions();
    let off = with_engine(|e| unregister(e, r));
    let mut ok = off;
    // Calls each kind of callback must have seen per function.
    let mut want_calls = [0usize; 3];
    for o in r.ops {
        want_calls[o.private()] += 1;
    }
    // Where an mcount site follows a prologue that already loaded the
    // argument, changing its stack word cannot reach the function (module
    // docs): there, and only there, an unchanged result is accepted.
    let may_stay = core::ptr::eq(r.expect, &EXPECTED_SET) && callconv::SITE_AFTER_PROLOGUE;
    let mut line = String::new();
    let mut wrong_result = false;
    for (k, f) in FUNCS.iter().enumerate() {
        let calls = CALLS.each_ref().map(|c| c[k].load(Ordering::Relaxed));
        let mut checks = calls == want_calls && FUNC_BAD[k].load(Ordering::Relaxed) == 0;
        if r.graph {
            let seen = [&ENTRIES[k], &RETURNS[k], &RET_OK[k]].map(|c| c.load(Ordering::Relaxed));
            checks &= seen == [1, 1, 1];
        }
        let verdict = if results[k] == r.expect[k] {
            "ok"
        } else if may_stay && results[k] == EXPECTED[k] {
            "unchanged"
        } else {
            wrong_result = true;
            "FAILED"
        };
        let verdict = if checks { verdict } else { "FAILED" };
        ok &= verdict != "FAILED";
        let sep = if k == 0 { "" } else { ", " };
        let _ = write!(line, "{sep}{} {verdict}", f.name);
    }
    kprintln!("abi: {}: {line}", r.name);
    if let Err(err) = &registered {
        kprintln!("abi: {}: {err}", r.name);
    }
    if !off {
        kprintln!(
            "abi: {}: unregistering failed or sites not back to nop",
            r.name
        );
    }
    if let Some(f) = FIRST_FAILURE.lock().take() {
        let name = FUNCS.get(f.func).map_or("?", |x| x.name);
        kprintln!(
            "abi: {}: {name}: {} {}: expected {:x?}, found {:x?}",
            r.name,
            f.what,
            f.n,
            f.want,
            f.got
        );
    }
    if wrong_result {
        kprintln!(
            "abi: {}: results {}, expected {}",
            r.name,
            format_results(&results),
            format_results(r.expect)
        );
    }
    (results, ok && registered.is_ok())
}

/// `test=abi` on x86 (module docs).
pub fn run() -> bool {
    let untraced = call_functions();
    kprintln!("abi: untraced: {}", format_results(&untraced));
    let mut ok = untraced == EXPECTED;
    if let Err(err) = with_engine(|e| locate(e)) {
        kprintln!("abi: {err}");
        return false;
    }
    for r in &CHECK_ROUNDS {
        ok &= run_round(r).1;
    }
    let mut changed = EXPECTED;
    for r in &SET_ROUNDS {
        let (res, good) = run_round(r);
        ok &= good;
        changed = res;
    }
    let [reg, stack, refused] = [&SET_REG, &SET_STACK, &REFUSED].map(|c| c.load(Ordering::Relaxed));
    kprintln!(
        "abi: set_arg: argument {SET_ARG} += {DELTA:#x}: {}; {reg} in registers, {stack} on the stack, set_arg refused {refused} stack arguments",
        format_results(&changed)
    );
    ok &= reg + stack == SET_ROUNDS.len() * FUNCS.len() && refused == reg + stack;
    for r in &GRAPH_ROUNDS {
        ok &= run_round(r).1;
    }
    let depth = crate::platform::PLATFORM.shadow_stack().map(|s| s.depth());
    let graph_clean = depth == Some(0) && fgraph::mismatch().is_none() && !fgraph::is_stopped();
    let seen = RETURNS_SEEN.load(Ordering::Relaxed);
    let bad = RETVALS_BAD.load(Ordering::Relaxed);
    kprintln!(
        "abi: graph: returns seen {seen}, retvals {}",
        if bad == 0 { "ok" } else { "WRONG" }
    );
    if !graph_clean {
        kprintln!(
            "abi: graph: shadow stack depth {depth:?}, mismatch {:x?}, stopped {}",
            fgraph::mismatch(),
            fgraph::is_stopped()
        );
    }
    ok &= graph_clean && bad == 0 && seen == GRAPH_ROUNDS.len() * FUNCS.len();
    let [reg, stack, frame, failed, unknown] =
        [&REG_ARGS, &STACK_ARGS, &FRAME, &FAILED, &UNKNOWN].map(|c| c.load(Ordering::Relaxed));
    kprintln!(
        "abi: checks: {reg} register arguments, {stack} stack arguments, {frame} frame words, {failed} failed"
    );
    if unknown != 0 {
        kprintln!("abi: {unknown} callback calls for other functions");
    }
    ok && failed == 0 && unknown == 0 && reg + stack > 0
}
