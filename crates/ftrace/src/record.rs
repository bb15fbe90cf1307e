//! Patch-site records (Linux's `struct dyn_ftrace`).
//!
//! A [`Record`] is a site as the arch hooks see it: its address, its
//! flags with the reference count, and the arch word. The engine stores
//! less (8 bytes per site, see [`crate::site`]) and builds a record when a
//! hook needs one.

bitflags::bitflags! {
    /// State bits of a [`Record`], packed with the reference count (the
    /// number of callbacks that want the site) in the low [`REF_BITS`] bits
    /// of the same `u32`, as Linux does.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct RecFlags: u32 {
        /// The site failed a check; it is never touched again.
        const FAILED = 1 << 31;
        /// The site currently calls a trampoline.
        const ENABLED = 1 << 30;
        /// A callback that wants the site needs the full register frame.
        const REGS = 1 << 29;
        /// The site currently calls [`Trampoline::RegsCaller`](crate::arch::Trampoline::RegsCaller).
        const REGS_EN = 1 << 28;
        /// A callback that may change the resume address wants the site.
        const IPMODIFY = 1 << 27;
        /// Exactly one callback with its own trampoline wants the site.
        const TRAMP = 1 << 26;
        /// The site currently calls a callback's own trampoline.
        const TRAMP_EN = 1 << 25;
    }
}

/// Bits of [`Record::flags`] holding the reference count (the number of
/// callbacks wanting a site; saturates at [`REF_MASK`]).
pub const REF_BITS: u32 = 16;
/// Mask of the reference count in [`Record::flags`].
pub const REF_MASK: u32 = (1 << REF_BITS) - 1;

/// One patchable site, as the arch hooks see it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Address of the site (the first byte the backend patches). Private:
    /// the arch hooks write text at a record's address, so safe code must
    /// not be able to point a record elsewhere (read it with
    /// [`ip`](Self::ip)).
    pub(crate) ip: usize,
    /// [`RecFlags`] in the high bits, reference count in the low
    /// [`REF_BITS`] bits.
    pub flags: u32,
    /// Padding, kept explicit so the layout is obvious; always zero.
    _pad: u32,
    /// Arch-private word the engine derives for the backend
    /// ([`Arch::site_word`](crate::Arch::site_word); ppc64: the address of
    /// the site's stub); read it with [`arch_word`](Self::arch_word).
    pub(crate) arch: usize,
}

impl Record {
    /// A record for the site at `ip` made outside the engine (tests,
    /// tools): no flags, count 0.
    ///
    /// # Safety
    ///
    /// The arch hooks ([`crate::Arch::init_site`], `make_call`, ...) read and
    /// write text at a record's address: `ip` must be a patch site from the
    /// kernel's site table (the compiler's patchable entry of a function),
    /// mapped, and not concurrently patched by an engine.
    pub const unsafe fn from_site(ip: usize) -> Self {
        Self::new(ip)
    }

    /// Address of the site.
    pub const fn ip(&self) -> usize {
        self.ip
    }

    /// The arch-private word (ppc64: the address of the site's stub).
    pub const fn arch_word(&self) -> usize {
        self.arch
    }

    /// A fresh record for the site at `ip`: no flags, count 0.
    pub(crate) const fn new(ip: usize) -> Self {
        Self::with_flags(ip, 0)
    }

    /// A record for the site at `ip` with this flags word.
    pub(crate) const fn with_flags(ip: usize, flags: u32) -> Self {
        Record {
            ip,
            flags,
            _pad: 0,
            arch: 0,
        }
    }

    /// The state bits.
    pub fn rec_flags(&self) -> RecFlags {
        RecFlags::from_bits_truncate(self.flags)
    }

    /// Number of callbacks that want the site.
    pub fn refcount(&self) -> u32 {
        self.flags & REF_MASK
    }

    /// True when the site failed and is never touched again.
    pub fn is_failed(&self) -> bool {
        self.rec_flags().contains(RecFlags::FAILED)
    }

    /// Replaces the state bits, keeping the count.
    pub fn set_rec_flags(&mut self, f: RecFlags) {
        self.flags = (self.flags & REF_MASK) | f.bits();
    }

    /// Sets or clears some state bits, keeping the others and the count.
    pub fn set(&mut self, f: RecFlags, on: bool) {
        let mut cur = self.rec_flags();
        cur.set(f, on);
        self.set_rec_flags(cur);
    }

    /// Replaces the count (saturating at [`REF_MASK`]), keeping the bits.
    pub fn set_refcount(&mut self, n: u32) {
        self.flags = (self.flags & !REF_MASK) | n.min(REF_MASK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_count() {
        let mut r = Record::new(0x10);
        r.set_refcount(3);
        r.set(RecFlags::IPMODIFY | RecFlags::REGS, true);
        assert_eq!(r.refcount(), 3);
        r.set(RecFlags::REGS, false);
        assert_eq!(r.rec_flags(), RecFlags::IPMODIFY);
        r.set_refcount(0);
        assert_eq!(r.rec_flags(), RecFlags::IPMODIFY);
    }

    #[test]
    fn sorted_lookup() {
        let t = crate::site::SiteTable::from_addrs([0x30, 0, 0x10, 0x20, 0x10], None).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.index_of(0x20), Some(1));
        assert_eq!(t.index_of(0x21), None);
    }
}
