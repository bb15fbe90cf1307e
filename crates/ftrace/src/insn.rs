//! Instructions and patch errors: what a site holds, and why a patch
//! failed (fixed meanings across backends). Kept apart from [`crate::arch`]
//! so that modules reporting errors need not depend on the arch contract.

use core::fmt;

/// Largest instruction (sequence) an [`Insn`] holds.
pub const INSN_MAX: usize = 8;

/// A small, fixed-size instruction buffer: what a site holds or should hold.
///
/// Displayed as space-separated hex bytes (`0f 1f 44 00 00`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Insn {
    bytes: [u8; INSN_MAX],
    len: u8,
}

impl Insn {
    /// An instruction of the given bytes.
    ///
    /// # Panics
    /// When `bytes` is longer than [`INSN_MAX`].
    pub const fn new(bytes: &[u8]) -> Self {
        assert!(bytes.len() <= INSN_MAX, "instruction longer than INSN_MAX");
        let mut b = [0u8; INSN_MAX];
        let mut i = 0;
        while i < bytes.len() {
            b[i] = bytes[i];
            i += 1;
        }
        Insn {
            bytes: b,
            len: bytes.len() as u8,
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Number of bytes.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True for a zero-length instruction.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.as_bytes().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Insn({self})")
    }
}

/// Why a site could not be patched. The meaning is fixed across backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchError {
    /// Reading the site faulted.
    ReadFault,
    /// The site does not hold what its state says; nothing was written.
    Mismatch {
        /// Bytes the record's state requires.
        expected: Insn,
        /// Bytes actually found.
        found: Insn,
    },
    /// Writing the site faulted (the site may hold the old bytes or, for
    /// backends that write in steps, an intermediate executable state).
    WriteFault,
    /// The target cannot be reached from the site with the site's
    /// instruction (e.g. beyond a rel32 or a 24-bit branch).
    OutOfRange {
        /// The site address.
        site: usize,
        /// The unreachable target.
        target: usize,
    },
    /// Backend-specific failure.
    Other(&'static str),
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchError::ReadFault => f.write_str("fault reading the site"),
            PatchError::Mismatch { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            PatchError::WriteFault => f.write_str("fault writing the site"),
            PatchError::OutOfRange { site, target } => {
                write!(f, "target {target:#x} out of range of site {site:#x}")
            }
            PatchError::Other(s) => f.write_str(s),
        }
    }
}

/// A patch error located at a site, as returned by [`Arch::finish_batch`](crate::Arch::finish_batch)
/// (which commits many sites at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteError {
    /// Record `ip` of the site that failed.
    pub ip: usize,
    /// What went wrong.
    pub error: PatchError,
}
