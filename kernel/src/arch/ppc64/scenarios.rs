//! ppc64-only `test=` scenarios: the stub encoding (`test=stubs`) and the
//! ELFv2 calling convention across the trampolines, shared and per-callback
//! (`test=abi`). Safe code.

use core::hint::black_box;
use core::sync::atomic::{AtomicUsize, Ordering};

use alloc::string::String;
use core::fmt::Write;

use ftrace::{FtraceRegs, Ops, OpsFlags, SiteState, Trampoline};

use crate::kprintln;
use crate::tracing::{Engine, with_engine};

/// Counts the call in the ops' counter, then clobbers the integer argument
/// registers. (Not the floating-point ones: callbacks run with MSR.FP
/// clear and must not use floating point, `test=fp-callback`; the traced
/// functions' float arguments survive because nothing can change them.)
extern "C" fn count_call(_ip: usize, _parent: usize, ops: &Ops, _regs: &mut FtraceRegs) {
    counter_of(ops).fetch_add(1, Ordering::Relaxed);
    let v = black_box(0xdead_0000u64);
    black_box(int_sink(v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6, v + 7));
}

/// Loads r3-r10 with values of its own.
#[inline(never)]
#[expect(
    clippy::too_many_arguments,
    reason = "fills every integer argument register"
)]
fn int_sink(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64) -> u64 {
    a ^ b ^ c ^ d ^ e ^ f ^ g ^ h
}

static PLAIN_CALLS: AtomicUsize = AtomicUsize::new(0);
static REGS_CALLS: AtomicUsize = AtomicUsize::new(0);
static SHARED_CALLS: AtomicUsize = AtomicUsize::new(0);
/// Argument registers only: alone on a site, its own trampoline
/// (`ftrace_ops_tramp_<i>`), else `ftrace_caller`.
static PLAIN: Ops = Ops::new(count_call, OpsFlags::empty());
/// Full frame: alone, `ftrace_ops_regs_tramp_<i>`, else `ftrace_regs_caller`.
static REGS: Ops = Ops::new(count_call, OpsFlags::SAVE_REGS);
/// A second callback on the same sites sends them to the shared
/// trampolines (`test=abi`).
static SHARED: Ops = Ops::new(count_call, OpsFlags::empty());

/// Which counter an ops counts in.
fn counter_of(ops: &Ops) -> &'static AtomicUsize {
    if core::ptr::eq(ops, &REGS) {
        &REGS_CALLS
    } else if core::ptr::eq(ops, &SHARED) {
        &SHARED_CALLS
    } else {
        &PLAIN_CALLS
    }
}

/// Counts sites and stubs that match the encoding for their current state
/// and prints `ppc64: <phase>: N stubs match the expected encoding, M differ`.
fn check_stubs(e: &Engine, phase: &str) -> bool {
    let arch = e.arch();
    let p = e.platform();
    let (mut good, mut bad) = (0usize, 0usize);
    for (i, rec) in e.sites().map(|s| *s.record()).enumerate() {
        if rec.is_failed() {
            continue;
        }
        // An enabled site's stub calls the site's target; a disabled one's
        // still calls the trampoline it called last (after init:
        // `ftrace_caller`).
        let targets = match e.site_state(i) {
            SiteState::Nop => [arch.layout().caller, arch.layout().regs_caller]
                .into_iter()
                .chain(
                    [&PLAIN, &REGS]
                        .into_iter()
                        .filter_map(|o| ftrace::Arch::ops_trampoline(arch, o)),
                )
                .collect(),
            _ => alloc::vec![e.site_target(i)],
        };
        let site_ok = e.site_state(i) == SiteState::Nop || arch_site_branches_to_stub(e, i);
        let check = targets
            .iter()
            .map(|&t| arch.check_stub(p, &rec, t))
            .find(|r| *r == Ok(None));
        match check.unwrap_or_else(|| arch.check_stub(p, &rec, targets[0])) {
            Ok(None) if site_ok => good += 1,
            Ok(None) => {
                bad += 1;
                kprintln!(
                    "ppc64: site {:#x} does not branch to its stub {:#x}",
                    rec.ip(),
                    rec.arch_word()
                );
            }
            Ok(Some(m)) => {
                bad += 1;
                kprintln!(
                    "ppc64: stub word at {:#x}: expected {:#010x}, found {:#010x}",
                    m.addr,
                    m.expected,
                    m.found
                );
            }
            Err(err) => {
                bad += 1;
                kprintln!("ppc64: stub of {:#x}: {err}", rec.ip());
            }
        }
    }
    kprintln!("ppc64: {phase}: {good} stubs match the expected encoding, {bad} differ");
    bad == 0 && good > 0
}

/// True when enabled site `i` holds exactly `b <its stub>`.
fn arch_site_branches_to_stub(e: &Engine, i: usize) -> bool {
    use ftrace::Arch;
    let rec = *e.site(i).record();
    let want = e
        .arch()
        .expected_insn(&rec, Some(e.arch().trampoline_addr(Trampoline::Caller)));
    let found = crate::platform::read_insn(rec.ip(), 4);
    matches!((want, found), (Ok(w), Ok(f)) if w == f)
}

/// `test=stubs`: every used stub holds `mflr r0; bl <trampoline>; mtlr r0;
/// b <site+4>` exactly, after init, with every site calling one callback's
/// own trampoline, then `ftrace_regs_caller` (two callbacks), and after
/// disabling.
pub fn stubs() -> bool {
    let mut ok = with_engine(|e| check_stubs(e, "init"));
    ok &= with_engine(|e| e.register(&PLAIN).is_ok() && check_stubs(e, "ops trampoline"));
    ok &= with_engine(|e| e.register(&REGS).is_ok() && check_stubs(e, "ftrace_regs_caller"));
    let (outer, fib) = crate::demo::demo_run();
    kprintln!("demo: outer={outer} fib={fib}");
    ok &= (outer, fib) == (12, 55);
    ok &= with_engine(|e| e.unregister(&REGS).is_ok() && e.unregister(&PLAIN).is_ok());
    ok &= with_engine(|e| check_stubs(e, "disabled") && e.check_all_nops() == 0);
    ok &= byte_exact_toggle();
    ok
}

/// Every site word and the whole stub area, in address order.
fn text_snapshot(e: &Engine) -> alloc::vec::Vec<u8> {
    let l = e.arch().layout();
    let mut out = alloc::vec::Vec::new();
    for rec in e.sites().map(|s| *s.record()) {
        out.extend_from_slice(
            crate::platform::read_insn(rec.ip(), 4)
                .unwrap_or(ftrace::Insn::new(&[]))
                .as_bytes(),
        );
    }
    for at in (l.stubs_start..l.stubs_end).step_by(4) {
        out.extend_from_slice(
            crate::platform::read_insn(at, 4)
                .unwrap_or(ftrace::Insn::new(&[]))
                .as_bytes(),
        );
    }
    out
}

/// Enable (caller), switch (regs), disable, enable, disable: the sites and
/// the stub area end byte-identical to how they were before.
fn byte_exact_toggle() -> bool {
    let before = with_engine(|e| text_snapshot(e));
    let mut ok = true;
    for _ in 0..2 {
        ok &= with_engine(|e| e.register(&PLAIN).is_ok() && e.register(&REGS).is_ok());
        ok &= with_engine(|e| e.unregister(&REGS).is_ok() && e.unregister(&PLAIN).is_ok());
    }
    let after = with_engine(|e| text_snapshot(e));
    let differ = before.iter().zip(&after).filter(|(a, b)| a != b).count()
        + before.len().abs_diff(after.len());
    kprintln!(
        "ppc64: enable/disable twice: {} bytes of sites and stubs compared, {differ} differ",
        before.len()
    );
    ok && differ == 0
}

/// Eight integer arguments: all of r3-r10.
#[inline(never)]
#[expect(
    clippy::too_many_arguments,
    reason = "fills every integer argument register"
)]
pub fn abi_args8(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64) -> u64 {
    a.wrapping_mul(3)
        ^ b.rotate_left(7)
        ^ c.wrapping_add(d << 3)
        ^ e.wrapping_mul(f | 1)
        ^ g.rotate_right(11)
        ^ h
}

/// Ten integer arguments: the last two in the caller's parameter save area.
#[inline(never)]
#[expect(clippy::too_many_arguments, reason = "two arguments on the stack")]
pub fn abi_args10(
    a: u64,
    b: u64,
    c: u64,
    d: u64,
    e: u64,
    f: u64,
    g: u64,
    h: u64,
    i: u64,
    j: u64,
) -> u64 {
    abi_args8(a, b, c, d, e, f, g, h)
        .wrapping_mul(i | 1)
        .wrapping_add(j)
}

/// Floating-point and integer arguments mixed: f1-f13 and r3-r5.
#[inline(never)]
#[expect(
    clippy::too_many_arguments,
    reason = "fills every float argument register"
)]
pub fn abi_floats(
    a: f64,
    b: f64,
    c: f64,
    d: f64,
    e: f64,
    f: f64,
    g: f64,
    n: u64,
    h: f64,
    i: f64,
    j: f64,
    k: f64,
    l: f64,
    m: f64,
    o: u64,
) -> f64 {
    a - b * 2.0 + c * 3.0 - d * 4.0 + e * 5.0 - f * 6.0 + g * 7.0 - h * 8.0 + i * 9.0 - j * 10.0
        + k * 11.0
        - l * 12.0
        + m * 13.0
        + (n as f64) * 0.5
        - (o as f64) * 0.25
}

/// Read through the TOC by [`abi_toc`].
static ABI_TABLE: [u64; 8] = [
    0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666, 0x7777, 0x8888,
];
static ABI_COUNTER: AtomicUsize = AtomicUsize::new(7);

/// Reads statics through the TOC (r2): its global entry sets up r2.
#[inline(never)]
pub fn abi_toc(i: usize) -> u64 {
    ABI_TABLE[i % ABI_TABLE.len()] ^ ABI_COUNTER.load(Ordering::Relaxed) as u64
}

/// Calls each ABI function once (arguments through `black_box`) and
/// formats the results.
fn call_abi_functions() -> String {
    let v = |x: u64| black_box(x);
    let f = |x: f64| black_box(x);
    let r8 = abi_args8(
        v(1),
        v(0x22),
        v(0x333),
        v(0x4444),
        v(0x5_5555),
        v(0x66_6666),
        v(0x777_7777),
        v(0x8888_8888),
    );
    let r10 = abi_args10(v(10), v(9), v(8), v(7), v(6), v(5), v(4), v(3), v(2), v(1));
    let rf = abi_floats(
        f(1.25),
        f(2.5),
        f(3.75),
        f(4.0),
        f(5.5),
        f(6.25),
        f(7.0),
        v(100),
        f(8.5),
        f(9.75),
        f(10.0),
        f(11.25),
        f(12.5),
        f(13.75),
        v(40),
    );
    let rt = abi_toc(black_box(3));
    let mut s = String::new();
    let _ = write!(s, "args8={r8:#x} args10={r10:#x} floats={rf} toc={rt:#x}");
    s
}

/// `test=abi`: the ABI functions give identical results untraced, traced
/// through one callback's own trampoline (argument registers, then full
/// frame) and, with a second callback on the same functions, through
/// `ftrace_caller` and `ftrace_regs_caller`.
pub fn abi() -> bool {
    let untraced = call_abi_functions();
    kprintln!("ppc64: abi untraced: {untraced}");
    let mut ok = true;
    let rounds: [(&'static Ops, Option<&'static Ops>, &str); 4] = [
        (&PLAIN, None, "ftrace_ops_tramp"),
        (&REGS, None, "ftrace_ops_regs_tramp"),
        (&PLAIN, Some(&SHARED), "ftrace_caller"),
        (&REGS, Some(&SHARED), "ftrace_regs_caller"),
    ];
    for (ops, second, name) in rounds {
        let counter = counter_of(ops);
        counter.store(0, Ordering::Relaxed);
        let all = [Some(ops), second];
        let set = with_engine(|e| {
            let mut set = 0;
            for o in all.into_iter().flatten() {
                match e
                    .set_filter(o, "*::abi_*")
                    .and_then(|n| e.register(o).map(|()| n))
                {
                    Ok(n) => set = n,
                    Err(err) => kprintln!("ppc64: abi: {err}"),
                }
            }
            set
        });
        let traced = call_abi_functions();
        let unreg = with_engine(|e| {
            all.into_iter()
                .flatten()
                .all(|o| e.unregister(o).is_ok() && e.clear_filter(o).is_ok())
        });
        let calls = counter.load(Ordering::Relaxed);
        kprintln!("ppc64: abi {name} ({set} functions, {calls} calls traced): {traced}");
        ok &= unreg && set == 4 && calls == 5 && traced == untraced;
    }
    kprintln!(
        "ppc64: abi: results {}",
        if ok { "identical" } else { "DIFFER" }
    );
    ok
}

/// A callback that uses floating point: the trampolines run callbacks with
/// MSR.FP clear, so its first floating-point instruction must trap.
extern "C" fn fp_call(ip: usize, _parent_ip: usize, _ops: &Ops, _regs: &mut FtraceRegs) {
    let x = black_box(ip as f64);
    black_box(x * 0.5);
}

static FP_OPS: Ops = Ops::new(fp_call, OpsFlags::empty());

/// `test=fp-callback`: registers [`fp_call`] on `demo_leaf` and calls it.
/// The floating-point-unavailable interrupt must stop the kernel with its
/// report (`smp::fp_unavailable`); returning at all is a failure.
pub fn fp_callback() -> bool {
    let registered = with_engine(|e| {
        e.set_filter(&FP_OPS, "demo_leaf")
            .and_then(|_| e.register(&FP_OPS))
    });
    if let Err(err) = registered {
        kprintln!("ppc64: fp-callback: cannot register: {err}");
        return false;
    }
    kprintln!("ppc64: fp-callback: calling demo_leaf with a floating-point callback");
    let r = crate::demo::demo_leaf(black_box(3));
    kprintln!("ppc64: fp-callback: returned {r}: the floating-point instruction did not trap");
    false
}
