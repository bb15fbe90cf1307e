//! The Open Firmware client interface (VOF or SLOF) at boot: the command
//! line from `/chosen`, the RTAS tokens from `/rtas` and the CPUs' ids
//! from `/cpus`.
//!
//! Only at boot: the firmware's code lies at real address 0, where
//! `smp::install_vectors` later puts the exception vectors; [`disable`]
//! makes every call after that return `None` instead of jumping into it.
//!
//! A client-interface call passes one array of 32-bit cells,
//! `{service name, nargs, nret, args[nargs], rets[nret]}`; every address in
//! it must fit in 32 bits, which holds for this kernel (linked at 4 MiB,
//! statics and stack included).

use core::sync::atomic::{AtomicUsize, Ordering};

unsafe extern "C" {
    /// boot/ppc64.S: calls the client interface at `entry` in 32-bit mode
    /// with r3 = `args`, preserving all non-volatile registers in full.
    fn ppc64_of_call(args: *mut u32, entry: usize) -> i32;
}

/// Client-interface entry handed over in r5; 0 until [`init`].
static ENTRY: AtomicUsize = AtomicUsize::new(0);

/// Most input plus output cells a call here uses.
const MAX_CELLS: usize = 8;

/// A firmware package handle (`phandle`).
#[derive(Clone, Copy)]
pub struct Phandle(u32);

/// Records the client-interface entry point from boot.
pub fn init(entry: usize) {
    ENTRY.store(entry, Ordering::Relaxed);
}

/// No more client-interface calls: the firmware's memory is reused (see
/// the module docs).
pub fn disable() {
    ENTRY.store(0, Ordering::Relaxed);
}

/// The 32-bit cell holding address `addr`.
fn cell(addr: usize) -> u32 {
    u32::try_from(addr).expect("ppc64: client-interface address above 4 GiB")
}

/// Calls client-interface service `service` (NUL-terminated) with `args`,
/// writing its results into `rets`. `None` if there is no client interface
/// or it reports failure.
fn call(service: &'static [u8], args: &[u32], rets: &mut [u32]) -> Option<()> {
    assert!(
        service.last() == Some(&0),
        "service name must be NUL-terminated"
    );
    assert!(args.len() + rets.len() <= MAX_CELLS);
    let entry = ENTRY.load(Ordering::Relaxed);
    if entry == 0 {
        return None;
    }
    let mut buf = [0u32; 3 + MAX_CELLS];
    buf[0] = cell(service.as_ptr() as usize);
    buf[1] = args.len() as u32;
    buf[2] = rets.len() as u32;
    buf[3..3 + args.len()].copy_from_slice(args);
    // SAFETY: `buf` is a complete argument array for `service` and every
    // address in it (the service name, and whatever buffers the caller
    // passed in `args`, see `getprop`) is valid for the access the service
    // makes; `entry` is the client interface the firmware handed over.
    let status = unsafe { ppc64_of_call(buf.as_mut_ptr(), entry) };
    if status != 0 {
        return None;
    }
    let first = 3 + args.len();
    rets.copy_from_slice(&buf[first..first + rets.len()]);
    Some(())
}

/// `finddevice(path)`: the package at `path` (NUL-terminated).
pub fn finddevice(path: &'static [u8]) -> Option<Phandle> {
    assert!(path.last() == Some(&0), "path must be NUL-terminated");
    let mut ph = [0u32];
    call(b"finddevice\0", &[cell(path.as_ptr() as usize)], &mut ph)?;
    // -1 (all ones) means "no such package".
    (ph[0] != u32::MAX && ph[0] != 0).then_some(Phandle(ph[0]))
}

/// `getprop(ph, name, buf)`: copies property `name` (NUL-terminated) into
/// `buf` and returns its full length (which may exceed `buf.len()`: only
/// `buf.len()` bytes were copied). `None` if the property is absent.
pub fn getprop(ph: Phandle, name: &'static [u8], buf: &mut [u8]) -> Option<usize> {
    assert!(
        name.last() == Some(&0),
        "property name must be NUL-terminated"
    );
    let mut len = [0u32];
    let args = [
        ph.0,
        cell(name.as_ptr() as usize),
        cell(buf.as_mut_ptr() as usize),
        cell(buf.len()),
    ];
    // The firmware writes at most buf.len() bytes into `buf`, which we
    // borrow mutably for the call.
    call(b"getprop\0", &args, &mut len)?;
    // -1 means "no such property".
    (len[0] != u32::MAX).then_some(len[0] as usize)
}

/// A 32-bit property of package `ph`, if present and at least 4 bytes.
pub fn getprop_u32(ph: Phandle, name: &'static [u8]) -> Option<u32> {
    let mut buf = [0u8; 4];
    let len = getprop(ph, name, &mut buf)?;
    (len >= 4).then_some(u32::from_be_bytes(buf))
}

/// `child(ph)`: the first child package of `ph`, if any.
pub fn child(ph: Phandle) -> Option<Phandle> {
    let mut c = [0u32];
    call(b"child\0", &[ph.0], &mut c)?;
    // 0 means "no child".
    (c[0] != 0 && c[0] != u32::MAX).then_some(Phandle(c[0]))
}

/// `peer(ph)`: the next sibling of package `ph`, if any.
pub fn peer(ph: Phandle) -> Option<Phandle> {
    let mut p = [0u32];
    call(b"peer\0", &[ph.0], &mut p)?;
    // 0 means "no more siblings".
    (p[0] != 0 && p[0] != u32::MAX).then_some(Phandle(p[0]))
}
