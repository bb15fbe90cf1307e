//! Host tests of the x86 encoders, the `int3` batch protocol, the `#BP`
//! helper and both backends driven by the engine over simulated text.

use std::string::String;
use std::sync::Mutex;
use std::vec::Vec;

use super::*;
use crate::Ftrace;
use crate::arch::SiteError;
use crate::arch::{Arch, Trampoline};
use crate::mock::{MockPlatform, TEXT_BASE};
use crate::ops::{Ops, OpsFlags};
use crate::platform::{Context, TextFault};
use crate::record::Record;
use crate::regs::FtraceRegs;
use x86_64::Trampolines;

/// The batch in flight is global: tests committing batches run one at a
/// time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn call_round_trip() {
    let site = 0x1000_0000usize;
    for target in [
        site + 5,
        site,
        site + 0x7fff_0000,
        site - 0x1000,
        0x2000_0000,
    ] {
        let insn = encode_call(site, target).unwrap();
        assert_eq!(insn.as_bytes()[0], 0xe8);
        assert_eq!(decode_call(site, insn.as_bytes()), Some(target));
    }
    assert_eq!(
        encode_call(site, site + 5).unwrap().as_bytes(),
        &[0xe8, 0, 0, 0, 0]
    );
    assert_eq!(
        encode_call(site, site).unwrap().as_bytes(),
        &[0xe8, 0xfb, 0xff, 0xff, 0xff]
    );
    assert!(matches!(
        encode_call(0x1000, 0x1_0000_1000),
        Err(PatchError::OutOfRange { .. })
    ));
    assert_eq!(decode_call(site, &NOP5), None);
    assert_eq!(decode_call(site, &[0xe8, 0, 0, 0]), None);
}

#[test]
fn emulation_decodes_sites() {
    assert_eq!(emulation_of(0x100, &NOP5), Some(Emulation::Nop));
    assert_eq!(
        emulation_of(0x100, &NOP3_I686_COMPILER),
        Some(Emulation::Nop)
    );
    assert_eq!(
        emulation_of(0x100, &[0xe8, 0x10, 0, 0, 0]),
        Some(Emulation::Call(0x115))
    );
    assert_eq!(emulation_of(0x100, &[0xcc; 5]), None);
}

/// Simulated text with an event log, and a "CPU" that executes every
/// queued site at each core synchronisation, checking that it always finds
/// an instruction it can run: the old one, the new one, or an int3 the
/// helper emulates.
/// A site executed at every sync: address, allowed old and new bytes.
type Watched = (usize, [u8; 5], [u8; 5]);

struct LogPlatform {
    inner: &'static MockPlatform,
    log: Mutex<Vec<String>>,
    /// Sites executed at every sync, with the allowed (old, new) bytes.
    watch: Mutex<Vec<Watched>>,
    fail_write_at: Mutex<Option<(usize, usize)>>,
}

struct Frame {
    ip: usize,
    stack: Vec<usize>,
    /// What `site_byte` returns (simulated text is not at its address).
    byte: std::cell::RefCell<std::boxed::Box<dyn FnMut() -> u8>>,
}

impl Frame {
    /// A frame trapped on the int3 at `site`, where `text` holds the
    /// simulated bytes.
    fn at(site: usize, text: &'static MockPlatform) -> Self {
        Frame {
            ip: site + 1,
            stack: Vec::new(),
            byte: std::cell::RefCell::new(std::boxed::Box::new(move || text.peek(site, 1)[0])),
        }
    }
}

impl TrapFrame for Frame {
    fn ip(&self) -> usize {
        self.ip
    }
    fn set_ip(&mut self, ip: usize) {
        self.ip = ip;
    }
    fn push(&mut self, value: usize) {
        self.stack.push(value);
    }
    fn site_byte(&self, site: usize) -> u8 {
        assert_eq!(site, self.ip - 1, "site_byte of another address");
        (self.byte.borrow_mut())()
    }
}

impl LogPlatform {
    fn new(len: usize) -> &'static Self {
        std::boxed::Box::leak(std::boxed::Box::new(LogPlatform {
            inner: std::boxed::Box::leak(std::boxed::Box::new(MockPlatform::new(len))),
            log: Mutex::new(Vec::new()),
            watch: Mutex::new(Vec::new()),
            fail_write_at: Mutex::new(None),
        }))
    }

    /// Executes the site at `addr` once, returning what it did.
    fn execute(&self, addr: usize) -> Option<Emulation> {
        let bytes = self.inner.peek(addr, 5);
        if bytes[0] == INT3 {
            let mut f = Frame::at(addr, self.inner);
            if !poke_int3_handler(&mut f) {
                return None;
            }
            return Some(match f.stack[..] {
                [] => {
                    assert_eq!(f.ip, addr + 5);
                    Emulation::Nop
                }
                [ret] => {
                    assert_eq!(ret, addr + 5);
                    Emulation::Call(f.ip)
                }
                _ => panic!("pushed twice"),
            });
        }
        emulation_of(addr, &bytes)
    }
}

// SAFETY: a simulation; one CPU; see MockPlatform.
unsafe impl Platform for LogPlatform {
    fn cpu_id(&self) -> usize {
        0
    }
    fn nr_cpus(&self) -> usize {
        1
    }
    fn clock_ns(&self) -> u64 {
        0
    }
    fn context(&self) -> Context {
        Context::Normal
    }
    unsafe fn text_read(&self, addr: usize, buf: &mut [u8]) -> Result<(), TextFault> {
        // SAFETY: forwarded.
        unsafe { self.inner.text_read(addr, buf) }
    }
    unsafe fn text_write(&self, addr: usize, bytes: &[u8]) -> Result<(), TextFault> {
        let mut fail = self.fail_write_at.lock().unwrap();
        if let Some((a, n)) = *fail
            && (addr..addr + bytes.len()).contains(&a)
        {
            if n == 0 {
                return Err(TextFault);
            }
            *fail = Some((a, n - 1));
        }
        drop(fail);
        self.log.lock().unwrap().push(std::format!(
            "w {:x} {}",
            addr - TEXT_BASE,
            Insn::new(bytes)
        ));
        // SAFETY: forwarded.
        unsafe { self.inner.text_write(addr, bytes) }
    }
    fn sync_cores(&self) {
        self.log.lock().unwrap().push("sync".into());
        for &(addr, old, new) in self.watch.lock().unwrap().iter() {
            let did = self.execute(addr).expect("site not executable at a sync");
            let ok = [old, new]
                .iter()
                .any(|b| emulation_of(addr, b) == Some(did));
            assert!(ok, "site {addr:#x} did {did:?}");
        }
    }
}

fn call_bytes(site: usize, target: usize) -> [u8; 5] {
    encode_call(site, target)
        .unwrap()
        .as_bytes()
        .try_into()
        .unwrap()
}

#[test]
fn batch_writes_three_phases_with_one_sync_each() {
    let _s = serial();
    let p = LogPlatform::new(64);
    let (a, b) = (TEXT_BASE, TEXT_BASE + 16);
    let t = TEXT_BASE + 0x1000;
    p.inner.poke(a, &NOP5);
    p.inner.poke(b, &call_bytes(b, t));
    p.watch
        .lock()
        .unwrap()
        .extend([(a, NOP5, call_bytes(a, t)), (b, call_bytes(b, t), NOP5)]);
    let batch = Batch::new();
    mock_queue(&batch, p, a, &Insn::new(&NOP5), &encode_call(a, t).unwrap()).unwrap();
    mock_queue(&batch, p, b, &encode_call(b, t).unwrap(), &Insn::new(&NOP5)).unwrap();
    assert!(p.log.lock().unwrap().is_empty(), "queueing writes nothing");
    // SAFETY: simulated text.
    unsafe { batch.commit(p) }.unwrap();
    let log = p.log.lock().unwrap().clone();
    let ca = Insn::new(&call_bytes(a, t));
    let expected: Vec<String> = [
        "w 0 cc".into(),
        "w 10 cc".into(),
        "sync".into(),
        std::format!("w 1 {}", Insn::new(&ca.as_bytes()[1..])),
        "w 11 1f 44 00 00".into(),
        "sync".into(),
        "w 0 e8".into(),
        "w 10 0f".into(),
        "sync".into(),
    ]
    .to_vec();
    assert_eq!(log, expected);
    assert_eq!(p.inner.peek(a, 5), ca.as_bytes());
    assert_eq!(p.inner.peek(b, 5), NOP5);
    assert!(batch.is_empty());
    // Nothing in flight any more and the int3 gone: the CPU re-executes
    // the site, which holds the new call.
    let mut f = Frame::at(a, p.inner);
    assert_eq!(poke_int3(&mut f), Int3::Gone { byte: CALL_OPCODE });
    assert_eq!((f.ip, f.stack.len()), (a, 0));
    // An int3 that is there and in no batch is someone else's: the frame
    // is left alone.
    let c = TEXT_BASE + 32;
    p.inner.poke(c, &[INT3]);
    let mut f = Frame::at(c, p.inner);
    assert_eq!(poke_int3(&mut f), Int3::NotOurs);
    assert!(!poke_int3_handler(&mut Frame::at(c, p.inner)));
    assert_eq!((f.ip, f.stack.len()), (c + 1, 0));
}

/// A site queued twice in one batch gets the later new bytes, written once
/// over the original old ones; queueing stays O(1) per site (the merge is
/// done by the commit's sort).
#[test]
fn a_site_queued_twice_takes_the_later_change() {
    let _s = serial();
    let p = LogPlatform::new(64);
    let (a, b) = (TEXT_BASE, TEXT_BASE + 16);
    let (t1, t2) = (TEXT_BASE + 0x1000, TEXT_BASE + 0x2000);
    p.inner.poke(a, &NOP5);
    p.inner.poke(b, &NOP5);
    let batch = Batch::new();
    let nop = Insn::new(&NOP5);
    mock_queue(&batch, p, b, &nop, &encode_call(b, t1).unwrap()).unwrap();
    mock_queue(&batch, p, a, &nop, &encode_call(a, t1).unwrap()).unwrap();
    mock_queue(&batch, p, b, &nop, &encode_call(b, t2).unwrap()).unwrap();
    assert_eq!(batch.len(), 3);
    // SAFETY: simulated text.
    unsafe { batch.commit(p) }.unwrap();
    assert_eq!(p.inner.peek(a, 5), call_bytes(a, t1));
    assert_eq!(p.inner.peek(b, 5), call_bytes(b, t2));
    let writes = p
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("w 10 ") || l.starts_with("w 11 "))
        .count();
    assert_eq!(
        writes, 3,
        "b written once per phase (int3, tail, first byte)"
    );
}

#[test]
fn queue_checks_old_bytes_and_skips_no_ops() {
    let _s = serial();
    let p = LogPlatform::new(64);
    p.inner.poke(TEXT_BASE, &[0x66, 0x66, 0x66, 0x66, 0x90]);
    let batch = Batch::new();
    let e = mock_queue(
        &batch,
        p,
        TEXT_BASE,
        &Insn::new(&NOP5),
        &encode_call(TEXT_BASE, TEXT_BASE + 64).unwrap(),
    );
    assert_eq!(
        e,
        Err(PatchError::Mismatch {
            expected: Insn::new(&NOP5),
            found: Insn::new(&[0x66, 0x66, 0x66, 0x66, 0x90])
        })
    );
    p.inner.poke(TEXT_BASE, &NOP5);
    mock_queue(&batch, p, TEXT_BASE, &Insn::new(&NOP5), &Insn::new(&NOP5)).unwrap();
    assert!(batch.is_empty());
    // SAFETY: simulated text.
    unsafe { batch.commit(p) }.unwrap();
    assert!(
        p.log.lock().unwrap().is_empty(),
        "an empty batch does not even sync"
    );
}

#[test]
fn int3_handler_emulates_the_new_instruction_mid_batch() {
    let _s = serial();
    let p = LogPlatform::new(64);
    let (a, b) = (TEXT_BASE, TEXT_BASE + 16);
    let t = TEXT_BASE + 0x1000;
    p.inner.poke(a, &NOP5);
    p.inner.poke(b, &call_bytes(b, t));
    let batch = Batch::new();
    mock_queue(&batch, p, a, &Insn::new(&NOP5), &encode_call(a, t).unwrap()).unwrap();
    mock_queue(&batch, p, b, &encode_call(b, t).unwrap(), &Insn::new(&NOP5)).unwrap();
    // Check at each sync that the helper emulates the *new* instruction
    // while the int3 is there (the watch asserts executability).
    p.watch
        .lock()
        .unwrap()
        .extend([(a, NOP5, call_bytes(a, t)), (b, call_bytes(b, t), NOP5)]);
    let before = emulated_count();
    // SAFETY: simulated text.
    unsafe { batch.commit(p) }.unwrap();
    // Two syncs with int3 in place, two sites each.
    assert_eq!(emulated_count() - before, 4);
    // After the batch: the int3 is gone, the site is re-executed.
    let mut f = Frame::at(a, p.inner);
    assert_eq!(poke_int3(&mut f), Int3::Gone { byte: CALL_OPCODE });
    assert_eq!(f.ip, a);
}

/// A CPU executes an int3 late (a stale translation on an emulator) while
/// no batch is in flight; before its handler reads the site, the next
/// batch publishes itself and writes int3 there. The handler must find
/// that batch (the site holds int3, so a batch holding it is published)
/// instead of reporting the int3 as someone else's.
#[test]
fn int3_handler_finds_a_batch_published_while_it_looked() {
    let _s = serial();
    let p = LogPlatform::new(64);
    let a = TEXT_BASE;
    let t = TEXT_BASE + 0x1000;
    p.inner.poke(a, &NOP5);
    let batch: &'static Batch = std::boxed::Box::leak(std::boxed::Box::new(Batch::new()));
    mock_queue(batch, p, a, &Insn::new(&NOP5), &encode_call(a, t).unwrap()).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    type Committer = std::thread::JoinHandle<Result<(), SiteError>>;
    let committer: std::sync::Arc<Mutex<Option<Committer>>> = Default::default();
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut f = Frame::at(a, p.inner);
    // The first lookup has missed when the handler reads the byte: only
    // then does the batch start, and the read waits until its phase 1
    // (table published, int3 written) is done.
    let mut start = Some((ready_tx, go_rx));
    let (c, r) = (committer.clone(), reads.clone());
    f.byte = std::cell::RefCell::new(std::boxed::Box::new(move || {
        r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some((ready, go)) = start.take() {
            *c.lock().unwrap() = Some(std::thread::spawn(move || {
                let mut observe = |phase: u8| {
                    if phase == 1 {
                        ready.send(()).unwrap();
                        go.recv().unwrap();
                    }
                };
                // SAFETY: simulated text.
                unsafe { batch.commit_observed(p, &mut observe) }
            }));
            ready_rx.recv().unwrap();
        }
        p.inner.peek(a, 1)[0]
    }));
    let before = emulated_count();
    assert!(
        poke_int3_handler(&mut f),
        "int3 of the new batch not emulated"
    );
    assert_eq!(reads.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(emulated_count() - before, 1);
    assert_eq!((f.ip, &f.stack[..]), (t, &[a + 5][..]));
    go_tx.send(()).unwrap();
    drop(f);
    let handle = committer.lock().unwrap().take().unwrap();
    handle.join().unwrap().unwrap();
    assert_eq!(p.inner.peek(a, 5), call_bytes(a, t));
    // With nothing in flight and the int3 gone, the CPU re-executes the
    // site (the new call).
    let mut f = Frame::at(a, p.inner);
    assert_eq!(poke_int3(&mut f), Int3::Gone { byte: CALL_OPCODE });
    assert_eq!((f.ip, f.stack.len()), (a, 0));
}

/// The other interleaving (seen in CI): a late int3 traps while nothing is
/// in flight and the site holds its new instruction; right after the
/// handler read that byte, a new batch writes int3 there. The handler's
/// decision rests on the byte it read (gone: re-execute the site), never
/// on a second read, and the re-execution traps into the new batch, which
/// is published by then and emulated.
#[test]
fn a_gone_int3_is_re_executed_into_the_next_batch() {
    let _s = serial();
    let p = LogPlatform::new(64);
    let a = TEXT_BASE;
    let t = TEXT_BASE + 0x1000;
    p.inner.poke(a, &NOP5);
    let mut f = Frame::at(a, p.inner);
    assert_eq!(poke_int3(&mut f), Int3::Gone { byte: NOP5[0] });
    assert_eq!((f.ip, f.stack.len()), (a, 0));
    // The next batch, paused after its phase 1 (published, int3 written).
    let batch: &'static Batch = std::boxed::Box::leak(std::boxed::Box::new(Batch::new()));
    mock_queue(batch, p, a, &Insn::new(&NOP5), &encode_call(a, t).unwrap()).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let committer = std::thread::spawn(move || {
        let mut observe = |phase: u8| {
            if phase == 1 {
                ready_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            }
        };
        // SAFETY: simulated text.
        unsafe { batch.commit_observed(p, &mut observe) }
    });
    ready_rx.recv().unwrap();
    // The re-executed site traps again, into the published batch.
    assert_eq!(p.inner.peek(a, 1)[0], INT3);
    let mut again = Frame::at(a, p.inner);
    assert_eq!(poke_int3(&mut again), Int3::Emulated);
    assert_eq!((again.ip, &again.stack[..]), (t, &[a + 5][..]));
    go_tx.send(()).unwrap();
    committer.join().unwrap().unwrap();
    assert_eq!(p.inner.peek(a, 5), call_bytes(a, t));
}

#[test]
fn write_fault_in_phase_one_restores_first_bytes() {
    let _s = serial();
    let p = LogPlatform::new(64);
    let (a, b) = (TEXT_BASE, TEXT_BASE + 16);
    let t = TEXT_BASE + 0x1000;
    p.inner.poke(a, &NOP5);
    p.inner.poke(b, &NOP5);
    let batch = Batch::new();
    mock_queue(&batch, p, a, &Insn::new(&NOP5), &encode_call(a, t).unwrap()).unwrap();
    mock_queue(&batch, p, b, &Insn::new(&NOP5), &encode_call(b, t).unwrap()).unwrap();
    *p.fail_write_at.lock().unwrap() = Some((b, 0));
    // SAFETY: simulated text.
    let e = unsafe { batch.commit(p) }.unwrap_err();
    assert_eq!(
        e,
        SiteError {
            ip: b,
            error: PatchError::WriteFault
        }
    );
    assert_eq!(p.inner.peek(a, 5), NOP5);
    assert_eq!(p.inner.peek(b, 5), NOP5);
}

#[test]
fn write_fault_in_phase_two_restores_old_instructions() {
    let _s = serial();
    let p = LogPlatform::new(64);
    let (a, b) = (TEXT_BASE, TEXT_BASE + 16);
    let t = TEXT_BASE + 0x1000;
    p.inner.poke(a, &NOP5);
    p.inner.poke(b, &NOP5);
    let batch = Batch::new();
    mock_queue(&batch, p, a, &Insn::new(&NOP5), &encode_call(a, t).unwrap()).unwrap();
    mock_queue(&batch, p, b, &Insn::new(&NOP5), &encode_call(b, t).unwrap()).unwrap();
    // b+1 is written first in phase 2: fail that one.
    *p.fail_write_at.lock().unwrap() = Some((b + 1, 0));
    // SAFETY: simulated text.
    let e = unsafe { batch.commit(p) }.unwrap_err();
    assert_eq!(e.ip, b + 1);
    assert_eq!(p.inner.peek(a, 5), NOP5);
    // b's tail could not be written at all: the first byte is back.
    assert_eq!(p.inner.peek(b, 5), NOP5);
}

fn tramps() -> Trampolines {
    Trampolines {
        caller: TEXT_BASE + 0x800,
        regs_caller: TEXT_BASE + 0x900,
        caller_call: TEXT_BASE + 0x820,
        regs_call: TEXT_BASE + 0x920,
        stub: TEXT_BASE + 0x7f0,
    }
}

extern "C" fn cb(_: usize, _: usize, _: &Ops, _: &mut FtraceRegs) {}

/// Stand-ins for the dispatchers within `call rel32` reach of the simulated
/// text (the real functions are host code, gigabytes away): the engine's
/// [`Ftrace::with_dispatchers`] seam points the trampolines' inner calls at
/// these. Nothing executes them.
const SIM_LIST: usize = TEXT_BASE + 0x600;
const SIM_ASSIST: usize = TEXT_BASE + 0x680;

fn engine_round_trip<A: Arch>(arch: A, compiler: [u8; 5], nop_after_init: [u8; 5]) -> Vec<u8> {
    let p = LogPlatform::new(0x1000);
    let t = tramps();
    p.inner
        .poke(t.caller_call, &call_bytes(t.caller_call, t.stub));
    p.inner.poke(t.regs_call, &call_bytes(t.regs_call, t.stub));
    let sites: Vec<usize> = (0..4).map(|i| TEXT_BASE + 0x40 * i).collect();
    for &s in &sites {
        p.inner.poke(s, &compiler);
    }
    let ops: &'static Ops =
        std::boxed::Box::leak(std::boxed::Box::new(Ops::new(cb, OpsFlags::empty())));
    let mut ft = Ftrace::new(arch, p, sites.clone(), None)
        .unwrap()
        .with_dispatchers(SIM_LIST, SIM_ASSIST);
    assert!(ft.init().failed.is_empty());
    for &s in &sites {
        assert_eq!(p.inner.peek(s, 5), nop_after_init);
    }
    ft.register(ops).unwrap();
    let snapshot = p.inner.peek(sites[0], 5);
    ft.unregister(ops).unwrap();
    assert_eq!(ft.check_all_nops(), 0);
    for &s in &sites {
        assert_eq!(p.inner.peek(s, 5), nop_after_init);
    }
    snapshot
}

#[test]
fn x86_64_backend_through_the_engine() {
    let _s = serial();
    let t = tramps();
    let got = engine_round_trip(X86_64::with_trampolines(t), NOP5_X86_64_COMPILER, NOP5);
    assert_eq!(got, call_bytes(TEXT_BASE, t.caller));
}

/// A backend whose two inner calls both call `ftrace_stub`.
fn inner_calls_at_stub() -> (&'static LogPlatform, Trampolines, X86_64) {
    let p = LogPlatform::new(0x1000);
    let t = tramps();
    p.inner
        .poke(t.caller_call, &call_bytes(t.caller_call, t.stub));
    p.inner.poke(t.regs_call, &call_bytes(t.regs_call, t.stub));
    (p, t, X86_64::with_trampolines(t))
}

#[test]
fn x86_64_inner_call_is_repointed() {
    let _s = serial();
    let (p, t, a) = inner_calls_at_stub();
    assert_eq!(a.inner_target(p, Trampoline::Caller), Some(t.stub));
    a.update_ftrace_func(p, Trampoline::Caller, TEXT_BASE + 0x400)
        .unwrap();
    assert_eq!(
        a.inner_target(p, Trampoline::Caller),
        Some(TEXT_BASE + 0x400)
    );
    assert_eq!(a.inner_target(p, Trampoline::RegsCaller), Some(t.stub));
    // Someone else changed it: refused.
    p.inner.poke(t.caller_call, &NOP5);
    assert!(matches!(
        a.update_ftrace_func(p, Trampoline::Caller, TEXT_BASE + 0x500),
        Err(PatchError::Mismatch { .. })
    ));
}

#[test]
fn x86_64_both_inner_calls_change_in_one_batch() {
    let _s = serial();
    let (p, t, a) = inner_calls_at_stub();
    p.log.lock().unwrap().clear();
    let func = TEXT_BASE + 0x400;
    a.update_ftrace_funcs(p, func).unwrap();
    assert_eq!(
        p.inner.peek(t.caller_call, 5),
        call_bytes(t.caller_call, func)
    );
    assert_eq!(p.inner.peek(t.regs_call, 5), call_bytes(t.regs_call, func));
    let syncs = p
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| *l == "sync")
        .count();
    assert_eq!(syncs, 3, "one int3 batch: three core synchronisations");
    // The regs caller's call was changed behind our back: refused, named,
    // and nothing written to either.
    p.inner.poke(t.regs_call, &NOP5);
    p.log.lock().unwrap().clear();
    assert!(matches!(
        a.update_ftrace_funcs(p, TEXT_BASE + 0x500),
        Err((Trampoline::RegsCaller, PatchError::Mismatch { .. }))
    ));
    assert!(p.log.lock().unwrap().iter().all(|l| !l.starts_with('w')));
    assert_eq!(
        p.inner.peek(t.caller_call, 5),
        call_bytes(t.caller_call, func)
    );
    // Unchanged targets are not queued: nothing to do, nothing written.
    p.inner.poke(t.regs_call, &call_bytes(t.regs_call, func));
    a.update_ftrace_funcs(p, func).unwrap();
    assert!(p.log.lock().unwrap().is_empty());
}

#[test]
fn i686_fentry_rewrites_three_nops() {
    let _s = serial();
    let t = tramps();
    let got = engine_round_trip(
        I686::with_trampolines(I686Mode::Fentry, t, None),
        NOP3_I686_COMPILER,
        NOP5,
    );
    assert_eq!(got, call_bytes(TEXT_BASE, t.caller));
}

#[test]
fn i686_mcount_sites_become_nops() {
    let _s = serial();
    let t = tramps();
    let mcount = TEXT_BASE + 0x700;
    let p = LogPlatform::new(0x1000);
    let site = TEXT_BASE + 0x43;
    p.inner.poke(site, &call_bytes(site, mcount));
    let a = I686::with_trampolines(I686Mode::Mcount { mcount }, t, None);
    let mut rec = Record::new(site);
    a.init_site(p, &mut rec).unwrap();
    assert_eq!(p.inner.peek(site, 5), NOP5);
    // A call to something else is not an mcount site.
    p.inner.poke(site, &call_bytes(site, mcount + 1));
    assert!(matches!(
        a.init_site(p, &mut rec),
        Err(PatchError::Mismatch { .. })
    ));
}

#[test]
fn i686_nodynamic_never_writes_and_flips_the_pointer() {
    let _s = serial();
    static SLOT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(1);
    let t = tramps();
    let mcount = TEXT_BASE + 0x700;
    let p = LogPlatform::new(0x1000);
    let sites: Vec<usize> = (0..3).map(|i| TEXT_BASE + 0x40 * i + 3).collect();
    for &s in &sites {
        p.inner.poke(s, &call_bytes(s, mcount));
    }
    let nodyn = i686::NoDynPointer {
        slot: &SLOT,
        stub: 1,
        func: 2,
    };
    let arch = I686::with_trampolines(I686Mode::NoDynamic { mcount }, t, Some(nodyn));
    let ops: &'static Ops =
        std::boxed::Box::leak(std::boxed::Box::new(Ops::new(cb, OpsFlags::empty())));
    let mut ft = Ftrace::new(arch, p, sites.clone(), None).unwrap();
    assert!(ft.init().failed.is_empty());
    ft.register(ops).unwrap();
    assert_eq!(SLOT.load(core::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(ft.arch().nodyn_enabled(), 3);
    ft.unregister(ops).unwrap();
    assert_eq!(SLOT.load(core::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(ft.check_all_nops(), 0);
    assert!(
        p.log.lock().unwrap().iter().all(|l| !l.starts_with('w')),
        "no site written"
    );
    for &s in &sites {
        assert_eq!(p.inner.peek(s, 5), call_bytes(s, mcount));
    }
}

#[test]
fn i686_prologue_pushes_are_decoded() {
    // demo_leaf on i686 with -Zinstrument-mcount.
    let code = [
        0x55, 0x89, 0xe5, 0x57, 0x56, 0x83, 0xe4, 0xf8, 0x83, 0xec, 0x18, 0x8b, 0x75, 0x08,
    ];
    assert_eq!(
        i686::prologue_pushes(&code),
        Some(([i686::gpr::EDI, i686::gpr::ESI, 0], 2))
    );
    let bare = [0x90, 0x55, 0x89, 0xe5, 0x83, 0xec, 0x08];
    assert_eq!(i686::prologue_pushes(&bare).map(|p| p.1), Some(0));
    assert_eq!(i686::prologue_pushes(&[0x90; 8]), None);
    // The last prologue before the site wins.
    let two = [0x55, 0x89, 0xe5, 0x53, 0xc3, 0x55, 0x89, 0xe5, 0x56, 0x31];
    assert_eq!(
        i686::prologue_pushes(&two),
        Some(([i686::gpr::ESI, 0, 0], 1))
    );
}

/// A pool of two slots with entries 0x100 apart after the trampolines.
fn x86_pool() -> crate::tramp::OpsTrampPool {
    use core::sync::atomic::AtomicUsize;

    use crate::tramp::{OpsSlots, OpsTrampPool};
    let table: &'static [AtomicUsize] = std::boxed::Box::leak(std::boxed::Box::new([
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]));
    let base = tramps().caller + 0x1000;
    OpsTrampPool::new(
        OpsSlots::new(table),
        core::array::from_fn(|i| base + 0x100 * i),
        core::array::from_fn(|i| base + 0x100 * i + 0x80),
    )
}

extern "C" fn nop_cb_x86(_: usize, _: usize, _: &Ops, _: &mut FtraceRegs) {}

#[test]
fn ops_trampolines_per_mode() {
    static PLAIN: Ops = Ops::new(nop_cb_x86, OpsFlags::empty());
    static REGS: Ops = Ops::new(nop_cb_x86, OpsFlags::SAVE_REGS);
    let base = tramps().caller + 0x1000;
    assert_eq!(
        X86_64::with_trampolines(tramps()).ops_trampoline(&PLAIN),
        None,
        "no pool, no trampoline"
    );
    let a = X86_64::with_trampolines(tramps()).with_ops_pool(x86_pool());
    assert_eq!(a.ops_trampoline(&PLAIN), Some(base));
    assert_eq!(a.ops_trampoline(&REGS), Some(base + 0x180));
    let fentry = I686::with_trampolines(I686Mode::Fentry, tramps(), None).with_ops_pool(x86_pool());
    assert_eq!(fentry.ops_trampoline(&REGS), Some(base + 0x80));
    let mcount = I686::with_trampolines(I686Mode::Mcount { mcount: base }, tramps(), None)
        .with_ops_pool(x86_pool());
    assert_eq!(mcount.ops_trampoline(&PLAIN), Some(base));
    let nodyn = I686::with_trampolines(I686Mode::NoDynamic { mcount: base }, tramps(), None)
        .with_ops_pool(x86_pool());
    assert_eq!(
        nodyn.ops_trampoline(&PLAIN),
        None,
        "nodynamic sites are never patched"
    );
}

/// `Batch::queue` on the mock platform's simulated text.
fn mock_queue(
    batch: &Batch,
    p: &dyn crate::platform::Platform,
    addr: usize,
    old: &Insn,
    new: &Insn,
) -> Result<(), PatchError> {
    // SAFETY: the mock platform's text is a bounds-checked vector; no real
    // memory is read or written.
    unsafe { batch.queue(p, addr, old, new) }
}

#[test]
fn the_fast_path_is_published_by_backends_that_have_it_and_ends_with_its_engine() {
    use crate::mock::{MockArch, MockPlatform};
    use crate::ops::{CpuLocal, FTRACE_FAST_CPU_OFF, FTRACE_FAST_CTX_OFF, FTRACE_FAST_WORDS};
    use core::sync::atomic::Ordering;
    let _s = serial();
    let at = CpuLocal {
        cpu_offset: 0x10,
        context_offset: 0x24,
    };
    // A backend without the fast path: nothing is published.
    let mp: &'static MockPlatform =
        std::boxed::Box::leak(std::boxed::Box::new(MockPlatform::new(16)));
    let mut ft = Ftrace::new(MockArch::new(), mp, [crate::mock::TEXT_BASE], None).unwrap();
    // SAFETY: nothing executes the host's simulated trampolines.
    assert!(!unsafe { ft.use_cpu_local(at) });
    assert_eq!(FTRACE_FAST_WORDS.load(Ordering::Acquire), 0);
    drop(ft);
    for i686 in [false, true] {
        let p = LogPlatform::new(0x1000);
        let ft = if i686 {
            let a = I686::with_trampolines(I686Mode::Fentry, tramps(), None);
            let mut ft = Ftrace::new(a, p, [TEXT_BASE], None).unwrap();
            // SAFETY: as above.
            assert!(unsafe { ft.use_cpu_local(at) });
            Err(ft)
        } else {
            let a = X86_64::with_trampolines(tramps());
            let mut ft = Ftrace::new(a, p, [TEXT_BASE], None).unwrap();
            // SAFETY: as above.
            assert!(unsafe { ft.use_cpu_local(at) });
            Ok(ft)
        };
        let words = FTRACE_FAST_WORDS.load(Ordering::Acquire);
        assert_ne!(words, 0);
        assert_eq!(words % 128, 0, "CPU words are cache-line aligned");
        assert_eq!(FTRACE_FAST_CPU_OFF.load(Ordering::Relaxed), 0x10);
        assert_eq!(FTRACE_FAST_CTX_OFF.load(Ordering::Relaxed), 0x24);
        drop(ft);
        assert_eq!(
            FTRACE_FAST_WORDS.load(Ordering::Acquire),
            0,
            "a dropped engine's recursion words are no longer published"
        );
    }
}

/// An x86_64 engine over simulated text: the two trampolines' inner calls
/// and one site, initialised.
fn one_site_x86_64_engine() -> Ftrace<X86_64, LogPlatform> {
    let p = LogPlatform::new(0x1000);
    let t = tramps();
    p.inner
        .poke(t.caller_call, &call_bytes(t.caller_call, t.stub));
    p.inner.poke(t.regs_call, &call_bytes(t.regs_call, t.stub));
    p.inner.poke(TEXT_BASE, &NOP5_X86_64_COMPILER);
    let mut ft = Ftrace::new(X86_64::with_trampolines(t), p, [TEXT_BASE], None)
        .unwrap()
        .with_dispatchers(SIM_LIST, SIM_ASSIST);
    assert!(ft.init().failed.is_empty());
    ft
}

/// What the trampolines' fast path reads in an [`Ops`] (`OPS_OFF_FUNC`,
/// `OPS_OFF_STATE`, `OPS_ENABLED_BIT`), read here the same way, through
/// raw offsets: the state word is the bit exactly while registered,
/// and the word at the callback's offset is the callback, called as the
/// assembly calls it.
#[test]
fn the_fast_path_finds_the_callback_and_its_enabled_bit_at_the_published_offsets() {
    use crate::ops::{OPS_ENABLED_BIT, OPS_OFF_FUNC, OPS_OFF_STATE};
    use core::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn count(ip: usize, parent: usize, _: &Ops, regs: &mut FtraceRegs) {
        assert_eq!((ip, parent, regs.cpu()), (0x1234, 0x5678, 3));
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
    /// What the assembly's guarded path does: the state word compared
    /// with the bit, then the callback.
    fn fast_path(ops: &'static Ops, regs: &mut FtraceRegs) -> bool {
        let base = ops as *const Ops as *const u8;
        // SAFETY: both offsets are inside the live `Ops` (offset_of!), at
        // a u32 and a function pointer respectively.
        let (state, func) = unsafe {
            (
                (base.add(OPS_OFF_STATE) as *const u32).read_volatile(),
                (base.add(OPS_OFF_FUNC) as *const usize).read_volatile(),
            )
        };
        if state != OPS_ENABLED_BIT {
            return false;
        }
        // SAFETY: the word at OPS_OFF_FUNC is the Ops' FtraceFunc.
        let f: crate::ops::FtraceFunc = unsafe { core::mem::transmute(func) };
        f(0x1234, 0x5678, ops, regs);
        true
    }
    let _s = serial();
    let ops: &'static Ops =
        std::boxed::Box::leak(std::boxed::Box::new(Ops::new(count, OpsFlags::empty())));
    assert_eq!(
        ops.func() as usize,
        count as extern "C" fn(_, _, _, _) as usize
    );
    let mut regs = FtraceRegs::zeroed();
    regs.spare[0] = 3;
    assert!(!fast_path(ops, &mut regs), "not registered: not enabled");
    assert_eq!(CALLS.load(Ordering::Relaxed), 0);
    let mut ft = one_site_x86_64_engine();
    ft.register(ops).unwrap();
    assert!(fast_path(ops, &mut regs), "registered: enabled");
    assert_eq!(CALLS.load(Ordering::Relaxed), 1, "enabled: called once");
    let at = crate::ops::CpuLocal {
        cpu_offset: 0,
        context_offset: 4,
    };
    // SAFETY: nothing executes the host's simulated trampolines.
    let took = unsafe { ft.use_cpu_local(at) };
    assert!(!took, "refused while a callback is registered");
    ft.unregister(ops).unwrap();
    assert!(!fast_path(ops, &mut regs), "unregistered: not enabled");
    assert_eq!(CALLS.load(Ordering::Relaxed), 1);
}

/// A [`OpsFlags::RECURSION`] callback: its state word tells the
/// trampolines to call it without the guard only once the engine has the
/// fast path (before, it is called under the dispatcher's guard, which
/// [`Ops::guard`] finds held); called without, it takes the guard itself,
/// refuses (and counts) a recursion, and refuses a call after
/// unregistration.
#[test]
fn a_recursion_callback_is_called_unguarded_only_with_the_fast_path_and_guards_itself() {
    use crate::ops::{CpuLocal, OPS_ENABLED_BIT, OPS_OFF_STATE, OPS_STATE_SELF_GUARDED};
    use core::sync::atomic::{AtomicUsize, Ordering};
    // [entered, guarded, nested refusals seen by the callback]
    static SEEN: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
    extern "C" fn cb(ip: usize, parent: usize, ops: &Ops, regs: &mut FtraceRegs) {
        assert_eq!(parent, 0x5678);
        SEEN[0].fetch_add(1, Ordering::Relaxed);
        let Some(g) = ops.guard(regs) else {
            SEEN[2].fetch_add(1, Ordering::Relaxed);
            return;
        };
        assert_eq!((g.cpu(), g.context()), (0, Context::Normal));
        SEEN[1].fetch_add(1, Ordering::Relaxed);
        if ip == 0x1000 {
            // Under the guard, the same callback again (traced code it
            // called): refused.
            let mut inner = FtraceRegs::zeroed();
            cb(0x2000, parent, ops, &mut inner);
        }
    }
    fn state(ops: &Ops) -> u32 {
        // SAFETY: OPS_OFF_STATE is the u32 state word inside the live Ops.
        unsafe {
            ((ops as *const Ops as *const u8).add(OPS_OFF_STATE) as *const u32).read_volatile()
        }
    }
    fn seen() -> [usize; 3] {
        SEEN.each_ref().map(|a| a.load(Ordering::Relaxed))
    }
    let _s = serial();
    let ops: &'static Ops =
        std::boxed::Box::leak(std::boxed::Box::new(Ops::new(cb, OpsFlags::RECURSION)));
    let mut ft = one_site_x86_64_engine();

    // Without the fast path: the plain enabled word, and the dispatcher's
    // guard (the assist function's, as the careful path calls it).
    ft.register(ops).unwrap();
    assert_eq!(state(ops), OPS_ENABLED_BIT);
    let mut regs = FtraceRegs::zeroed();
    // SAFETY: a registered 'static Ops and a frame nothing else uses.
    unsafe { crate::ops::ftrace_ops_assist_func(0x1000, 0x5678, ops, &mut regs) };
    assert!(regs.is_guarded());
    assert_eq!(
        seen(),
        [2, 1, 1],
        "held guard used; the nested call refused"
    );
    ft.unregister(ops).unwrap();
    assert_eq!(state(ops), 0);

    // With the fast path: the word the trampolines call unguarded for.
    let at = CpuLocal {
        cpu_offset: 0,
        context_offset: 4,
    };
    // SAFETY: nothing executes the host's simulated trampolines.
    assert!(unsafe { ft.use_cpu_local(at) });
    ft.register(ops).unwrap();
    assert_eq!(state(ops), OPS_STATE_SELF_GUARDED);
    let before = ft.recursions();
    let mut regs = FtraceRegs::zeroed();
    cb(0x1000, 0x5678, ops, &mut regs);
    assert!(
        !regs.is_guarded(),
        "the callback's own guard leaves the frame alone"
    );
    assert_eq!(
        seen(),
        [4, 2, 2],
        "own guard taken; the nested call refused"
    );
    assert_eq!(ft.recursions(), before + 1, "the refusal is counted");
    ft.unregister(ops).unwrap();
    assert_eq!(state(ops), 0);
    // A CPU that found it enabled before unregistration: refused, uncounted.
    cb(0x3000, 0x5678, ops, &mut FtraceRegs::zeroed());
    assert_eq!(seen(), [5, 2, 3]);
    assert_eq!(ft.recursions(), before + 1);
    drop(ft);
}
