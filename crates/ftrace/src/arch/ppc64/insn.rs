//! Instruction words of the ppc64 backend: encoders, the branch decoder and
//! the `b`/`bl` range check. Pure functions of addresses and words, built
//! and tested on every host.
//!
//! Words are `u32` values; [`to_insn`] turns one into the big-endian bytes
//! the backend reads and writes (this backend targets big-endian ELFv2).

use crate::arch::{Insn, PatchError};

/// `nop` (`ori r0,r0,0`): what every disabled site holds.
pub const NOP: u32 = 0x6000_0000;
/// `mflr r0`: first word of a stub (the traced function's return address
/// into r0).
pub const MFLR_R0: u32 = 0x7c08_02a6;
/// `mtlr r0`: third word of a stub (puts the return address back).
pub const MTLR_R0: u32 = 0x7c08_03a6;
/// `trap` (`tw 31,0,0`): what the linker fills unused stub space with.
pub const TRAP: u32 = 0x7fe0_0008;

/// Primary opcode of the I-form branch (`b`, `bl`, `ba`, `bla`), in the top
/// six bits.
const OPCODE_BRANCH: u32 = 18 << 26;
/// Mask of the primary opcode.
const OPCODE_MASK: u32 = 0x3f << 26;
/// The LI field of an I-form branch: a word offset, bits 2..25.
const LI_MASK: u32 = 0x03ff_fffc;
/// AA bit: absolute target (never used here).
const AA: u32 = 1 << 1;
/// LK bit: set LR to the address after the branch (`bl`).
const LK: u32 = 1 << 0;

/// Upper byte of `addis r2,r12,imm`, the first word of the TOC set-up pair
/// at a global entry (`0x3c4c_xxxx`).
const ADDIS_R2_R12: u32 = 0x3c4c;
/// Upper byte of `addi r2,r2,imm`, the second word of the pair
/// (`0x3842_xxxx`).
const ADDI_R2_R2: u32 = 0x3842;

/// Smallest displacement a `b`/`bl` reaches: -32 MiB.
pub const BRANCH_MIN: i64 = -(1 << 25);
/// Largest displacement a `b`/`bl` reaches: 32 MiB - 4.
pub const BRANCH_MAX: i64 = (1 << 25) - 4;

/// The big-endian bytes of `word`, as an [`Insn`].
pub fn to_insn(word: u32) -> Insn {
    Insn::new(&word.to_be_bytes())
}

/// The word an [`Insn`] of four bytes holds; `None` for any other length.
pub fn from_insn(insn: &Insn) -> Option<u32> {
    let b: [u8; 4] = insn.as_bytes().try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// True when a relative branch at `from` reaches `to`: the displacement is
/// a multiple of 4 within [`BRANCH_MIN`]..=[`BRANCH_MAX`].
#[inline]
pub fn in_range(from: usize, to: usize) -> bool {
    // The difference modulo the address space; it is the exact one unless
    // its sign disagrees with the addresses' order. A branch that would
    // only reach by wrapping around the address space is out of range.
    let disp = to.wrapping_sub(from) as isize;
    let exact = (to >= from) == (disp >= 0);
    exact
        && (BRANCH_MIN as isize..=BRANCH_MAX as isize).contains(&disp)
        && (disp | from as isize) & 3 == 0
}

/// Encodes a relative I-form branch at `from` to `to`: `b` or, with `link`,
/// `bl`. Fails with [`PatchError::OutOfRange`] beyond +-32 MiB or for a
/// misaligned address, never producing a wrong branch.
pub fn branch(from: usize, to: usize, link: bool) -> Result<u32, PatchError> {
    branch_in_line(from, to, link)
}

/// [`branch`], always in line: for the engine's per-site loop (elsewhere,
/// as at boot, a call costs less than the check repeated in line).
#[inline(always)]
pub(crate) fn branch_in_line(from: usize, to: usize, link: bool) -> Result<u32, PatchError> {
    if !in_range(from, to) {
        return Err(PatchError::OutOfRange {
            site: from,
            target: to,
        });
    }
    let disp = (to as i64).wrapping_sub(from as i64) as u32;
    Ok(OPCODE_BRANCH | (disp & LI_MASK) | if link { LK } else { 0 })
}

/// [`branch`] for two addresses whose reach was checked before (a site
/// and its stub, checked when the stub was written): no range check.
#[inline(always)]
pub fn branch_reaching(from: usize, to: usize, link: bool) -> u32 {
    debug_assert!(in_range(from, to));
    let disp = (to as i64).wrapping_sub(from as i64) as u32;
    OPCODE_BRANCH | (disp & LI_MASK) | if link { LK } else { 0 }
}

/// Decodes `word` at address `at` as a relative I-form branch: returns its
/// target and whether it links (`bl`). `None` for any other instruction,
/// including absolute branches (`ba`, `bla`).
pub fn decode_branch(at: usize, word: u32) -> Option<(usize, bool)> {
    if word & OPCODE_MASK != OPCODE_BRANCH || word & AA != 0 {
        return None;
    }
    // Sign-extend the 26-bit byte displacement (LI || 0b00).
    let disp = (((word & LI_MASK) << 6) as i32 >> 6) as i64;
    Some(((at as i64).wrapping_add(disp) as usize, word & LK != 0))
}

/// True when `w0, w1` are the ELFv2 TOC set-up pair a global entry starts
/// with: `addis r2,r12,hi; addi r2,r2,lo`.
pub fn is_toc_setup(w0: u32, w1: u32) -> bool {
    w0 >> 16 == ADDIS_R2_R12 && w1 >> 16 == ADDI_R2_R2
}

/// The local entry of a function whose global entry is `global` and whose
/// first two words are `w0, w1`: 8 bytes in when it sets up the TOC, the
/// global entry otherwise (rustc's functions have no other layout).
pub fn local_entry(global: usize, w0: u32, w1: u32) -> usize {
    if is_toc_setup(w0, w1) {
        global + 8
    } else {
        global
    }
}

/// Bytes of one stub (`ftrace_abi::PPC64_STUB_SIZE`).
pub const STUB_SIZE: usize = ftrace_abi::PPC64_STUB_SIZE;
/// Word index of the stub's `bl <trampoline>`: the only word rewritten
/// after init.
pub const STUB_BL: usize = 1;
/// Word index of the stub's `b <site+4>`, which trampolines decode.
pub const STUB_RESUME: usize = 3;

const _: () = assert!(STUB_SIZE == 16 && STUB_BL * 4 == 4 && STUB_RESUME * 4 == 12);

/// The four words of the stub at `stub` serving the site at `site` and
/// calling `tramp`:
///
/// ```text
/// stub+0   mflr r0          return address of the traced function
/// stub+4   bl   tramp       LR = stub+8
/// stub+8   mtlr r0          restore it (the trampoline may have changed r0)
/// stub+12  b    site+4      continue the traced function
/// ```
pub fn stub_words(stub: usize, site: usize, tramp: usize) -> Result<[u32; 4], PatchError> {
    Ok([
        MFLR_R0,
        branch(stub + 4, tramp, true)?,
        MTLR_R0,
        branch(stub + 12, site + 4, false)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_encodings() {
        // Known encodings (checked against llvm-objdump): b .+8, bl .-4.
        assert_eq!(branch(0x1000, 0x1008, false), Ok(0x4800_0008));
        assert_eq!(branch(0x1000, 0x0ffc, true), Ok(0x4bff_fffd));
        assert_eq!(branch(0x1000, 0x1000, false), Ok(0x4800_0000));
        // The extremes.
        assert_eq!(
            branch(0x400_0000, 0x400_0000 + (1 << 25) - 4, false),
            Ok(0x49ff_fffc)
        );
        assert_eq!(
            branch(0x400_0000, 0x400_0000 - (1 << 25), true),
            Ok(0x4a00_0001)
        );
    }

    proptest::proptest! {
        /// The range check agrees with the exact (128-bit) difference,
        /// near the ends of the address space and the branch's reach.
        #[test]
        fn range_check_matches_the_exact_difference(
            from in proptest::prop_oneof![
                proptest::num::usize::ANY,
                0usize..0x100,
                (usize::MAX - 0x100)..=usize::MAX,
            ],
            delta in proptest::prop_oneof![
                -(1i64 << 26)..(1i64 << 26),
                proptest::num::i64::ANY,
            ],
        ) {
            let to = from.wrapping_add(delta as usize);
            let disp = to as i128 - from as i128;
            let exact = disp % 4 == 0
                && (BRANCH_MIN as i128..=BRANCH_MAX as i128).contains(&disp)
                && from % 4 == 0;
            proptest::prop_assert_eq!(in_range(from, to), exact);
        }
    }

    #[test]
    fn range_check() {
        let base = 0x1000_0000;
        assert!(in_range(base, base + (1 << 25) - 4));
        assert!(!in_range(base, base + (1 << 25)));
        assert!(in_range(base, base - (1 << 25)));
        assert!(!in_range(base, base - (1 << 25) - 4));
        assert!(!in_range(base, base + 2), "misaligned target");
        assert!(!in_range(base + 2, base + 8), "misaligned site");
        assert!(!in_range(0, usize::MAX - 3), "wrapping distances are far");
        assert_eq!(
            branch(base, base + (1 << 25), true),
            Err(PatchError::OutOfRange {
                site: base,
                target: base + (1 << 25)
            })
        );
        assert_eq!(
            branch(base, base - (1 << 25) - 4, false),
            Err(PatchError::OutOfRange {
                site: base,
                target: base - (1 << 25) - 4
            })
        );
    }

    #[test]
    fn decode_round_trip() {
        let base = 0x0400_0000usize;
        for disp in [
            -(1i64 << 25),
            -4,
            0,
            4,
            0x1234_5678 & 0x01ff_fffc,
            (1 << 25) - 4,
        ] {
            let to = (base as i64 + disp) as usize;
            for link in [false, true] {
                let w = branch(base, to, link).unwrap();
                assert_eq!(decode_branch(base, w), Some((to, link)), "disp {disp:#x}");
            }
        }
        assert_eq!(decode_branch(0x1000, NOP), None);
        assert_eq!(decode_branch(0x1000, MFLR_R0), None);
        assert_eq!(decode_branch(0x1000, 0x4800_0002), None, "ba is absolute");
        assert_eq!(decode_branch(0x1000, 0x4000_0000), None, "bc is not I-form");
    }

    #[test]
    fn toc_pair_and_local_entry() {
        // From this kernel's disassembly: addis 2,12,10; addi 2,2,-25948.
        assert!(is_toc_setup(0x3c4c_000a, 0x3842_9aa4));
        assert_eq!(local_entry(0x400efc, 0x3c4c_000a, 0x3842_9aa4), 0x400f04);
        assert!(!is_toc_setup(NOP, 0x3842_9aa4));
        assert!(!is_toc_setup(0x3c4c_000a, NOP));
        assert_eq!(local_entry(0x400efc, NOP, MFLR_R0), 0x400efc);
    }

    #[test]
    fn stub_layout() {
        let (stub, site, tramp) = (0x40_9000, 0x40_0f04, 0x40_8000);
        let w = stub_words(stub, site, tramp).unwrap();
        assert_eq!(w[0], MFLR_R0);
        assert_eq!(w[2], MTLR_R0);
        assert_eq!(decode_branch(stub + 4, w[STUB_BL]), Some((tramp, true)));
        assert_eq!(
            decode_branch(stub + 12, w[STUB_RESUME]),
            Some((site + 4, false))
        );
        assert!(matches!(
            stub_words(stub, site + (64 << 20), tramp),
            Err(PatchError::OutOfRange { .. })
        ));
    }

    #[test]
    fn insn_bytes_are_big_endian() {
        assert_eq!(to_insn(NOP).as_bytes(), &[0x60, 0, 0, 0]);
        assert_eq!(from_insn(&to_insn(0x4bff_fffd)), Some(0x4bff_fffd));
        assert_eq!(from_insn(&Insn::new(&[1, 2, 3])), None);
    }
}
