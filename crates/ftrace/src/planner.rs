//! The planner: what every site should call, given the registered callbacks
//! and which functions each one wants. Pure: no text is read or written,
//! no state changes; the engine ([`crate::update`]) commits what it plans.

use alloc::vec::Vec;

use crate::ops::Ops;
use crate::record::{REF_MASK, RecFlags};
use crate::site::Targets;

/// At most this many callbacks get their own trampoline in one plan; the
/// others use the shared ones. The site table codes each target in use in
/// 8 bits (the nop, two shared trampolines, the callbacks' own), and while
/// an update is committed the old plan's targets and the new one's are
/// both in use. Real pools are far smaller (`crate::tramp`: 8 slots).
pub const MAX_OWN_TRAMPOLINES: usize = 120;

/// What one site should be: its call target and its packed state, the
/// [`RecFlags`] REGS, IPMODIFY and TRAMP with the number of callbacks in
/// the low [`REF_BITS`](crate::record::REF_BITS) bits (saturating at
/// [`REF_MASK`]), as a site record stores them. Two words, so that the
/// engine compares and stores a whole plan entry cheaply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Want {
    /// Call target; 0 for the nop.
    pub target: usize,
    state: u32,
}

impl Want {
    /// Callbacks that want the site.
    pub fn count(&self) -> u32 {
        self.state & REF_MASK
    }

    /// One of them needs the full register frame.
    pub fn regs(&self) -> bool {
        self.state & RecFlags::REGS.bits() != 0
    }

    /// One of them may change the resume address.
    pub fn ipmodify(&self) -> bool {
        self.state & RecFlags::IPMODIFY.bits() != 0
    }

    /// The site calls its only callback's own trampoline.
    pub fn tramp(&self) -> bool {
        self.state & RecFlags::TRAMP.bits() != 0
    }

    /// The flags and count packed as in a record ([`Record::flags`](crate::Record)).
    pub fn state(&self) -> u32 {
        self.state
    }

    /// One more callback wants the site; `regs` when it needs the full
    /// frame, `ipmodify` when it may change the resume address.
    fn add(&mut self, regs: bool, ipmodify: bool) {
        if self.count() < REF_MASK {
            self.state += 1;
        }
        self.set(RecFlags::REGS, regs);
        self.set(RecFlags::IPMODIFY, ipmodify);
    }

    fn set(&mut self, flag: RecFlags, on: bool) {
        self.state |= flag.bits() * u32::from(on);
    }
}

/// Two callbacks that may change the resume address want the site at `ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict {
    /// The first site they share.
    pub ip: usize,
}

/// What one callback brings to the sites it wants.
struct PerOps {
    /// It wants every site (no filter, no notrace).
    every: bool,
    ipmodify: bool,
    /// It needs the full register frame.
    regs: bool,
    /// Its own trampoline, once asked for.
    tramp: Option<Option<usize>>,
}

/// Plans every site of `sites` (address and whether it is FAILED, in
/// order) for the callbacks `list`:
///
/// - a site nobody wants is the nop; a FAILED site is left alone (nop);
/// - a site wanted by exactly one callback calls that callback's own
///   trampoline when `ops_trampoline` gives one (asked at most once per
///   callback, and only for callbacks alone on some site: a bounded pool
///   serves those first);
/// - otherwise the regs trampoline when any callback there needs the full
///   frame, the plain one if not.
///
/// `wants(i, ip)` says whether callback `list[i]` selects the site at `ip`
/// (its filter and notrace sets); it is not asked for a callback for which
/// `every(i)` is true (it selects every site: no filter, no notrace).
/// `every` is asked once per callback.
/// Fails when two IPMODIFY callbacks want one site.
pub fn plan(
    sites: impl ExactSizeIterator<Item = (usize, bool)>,
    list: &[&'static Ops],
    every: &dyn Fn(usize) -> bool,
    wants: &dyn Fn(usize, usize) -> bool,
    targets: Targets,
    ops_trampoline: &mut dyn FnMut(&'static Ops) -> Option<usize>,
) -> Result<Vec<Want>, Conflict> {
    let mut own = 0;
    // What each callback brings to a site it wants, looked up once, and
    // its own trampoline once asked for (one allocation for both).
    let mut per: Vec<PerOps> = list
        .iter()
        .enumerate()
        .map(|(i, o)| PerOps {
            every: every(i),
            ipmodify: o.flags().contains(crate::ops::OpsFlags::IPMODIFY),
            regs: o.needs_regs(),
            tramp: None,
        })
        .collect();
    // The callbacks that want every site contribute the same to each:
    // summed once. Only the others are asked per site.
    let mut base = Want::default();
    let mut base_single = None;
    let mut base_conflict = false;
    let mut filtered = Vec::new();
    for (i, o) in per.iter().enumerate() {
        let (all, ipmodify, regs) = (o.every, o.ipmodify, o.regs);
        if !all {
            filtered.push((i, ipmodify, regs));
            continue;
        }
        base_conflict |= ipmodify && base.ipmodify();
        base.add(regs, ipmodify);
        base_single = Some(i);
    }
    let mut target_of = |want: &mut Want, single: Option<usize>| {
        want.target = match (want.count(), single) {
            (0, _) => 0,
            (1, Some(i))
                if per[i]
                    .tramp
                    .get_or_insert_with(|| {
                        // Bounded: the site table codes every target in use
                        // in 8 bits (`MAX_OWN_TRAMPOLINES`).
                        let t = (own < MAX_OWN_TRAMPOLINES).then(|| ops_trampoline(list[i]));
                        let t = t.flatten();
                        own += usize::from(t.is_some());
                        t
                    })
                    .is_some() =>
            {
                want.set(RecFlags::TRAMP, true);
                per[i].tramp.flatten().unwrap_or(0)
            }
            _ if want.regs() => targets.regs_caller,
            _ => targets.caller,
        };
    };
    let mut plan = Vec::with_capacity(sites.len());
    if filtered.is_empty() {
        // Every site that is not FAILED gets the same state: planned once
        // (only when there is such a site, so that a plan of FAILED sites
        // asks for no trampoline), then copied.
        let mut sites = sites;
        let mut uniform = None;
        for (ip, failed) in sites.by_ref() {
            if failed {
                plan.push(Want::default());
                continue;
            }
            if base_conflict {
                return Err(Conflict { ip });
            }
            let mut w = base;
            target_of(&mut w, base_single);
            plan.push(w);
            uniform = Some(w);
            break;
        }
        if let Some(w) = uniform {
            // Indexed rather than branched: one copy of a whole `Want`.
            let choice = [w, Want::default()];
            plan.extend(sites.map(|(_, failed)| choice[usize::from(failed)]));
        }
        return Ok(plan);
    }
    for (ip, failed) in sites {
        if failed {
            plan.push(Want::default());
            continue;
        }
        if base_conflict {
            return Err(Conflict { ip });
        }
        let mut want = base;
        let mut single = base_single;
        for &(i, ipmodify, regs) in &filtered {
            if !wants(i, ip) {
                continue;
            }
            if ipmodify && want.ipmodify() {
                return Err(Conflict { ip });
            }
            want.add(regs, ipmodify);
            single = Some(i);
        }
        target_of(&mut want, single);
        plan.push(want);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::OpsFlags;
    use crate::regs::FtraceRegs;
    use alloc::boxed::Box;
    use alloc::vec;

    extern "C" fn cb(_: usize, _: usize, _: &Ops, _: &mut FtraceRegs) {}
    fn ops(flags: OpsFlags) -> &'static Ops {
        Box::leak(Box::new(Ops::new(cb, flags)))
    }
    const T: Targets = Targets {
        caller: 0xc000,
        regs_caller: 0xd000,
    };

    fn sites(n: usize) -> Vec<(usize, bool)> {
        (0..n).map(|i| (0x1000 + 16 * i, false)).collect()
    }

    #[test]
    fn nop_caller_regs_own_trampoline_and_failed() {
        let (a, b) = (ops(OpsFlags::empty()), ops(OpsFlags::SAVE_REGS));
        let mut s = sites(5);
        s[4].1 = true;
        // a wants sites 0, 1, 4; b wants 1, 2.
        let wants = |i: usize, ip: usize| {
            let k = (ip - 0x1000) / 16;
            if i == 0 {
                matches!(k, 0 | 1 | 4)
            } else {
                matches!(k, 1 | 2)
            }
        };
        let mut asked = Vec::new();
        let p = plan(
            s.iter().copied(),
            &[a, b],
            &|_| false,
            &wants,
            T,
            &mut |o| {
                asked.push(o as *const Ops as usize);
                (core::ptr::eq(o, a)).then_some(0xa000)
            },
        )
        .unwrap();
        let targets: Vec<usize> = p.iter().map(|w| w.target).collect();
        assert_eq!(targets, [0xa000, 0xd000, 0xd000, 0, 0]);
        assert_eq!(p[1].count(), 2);
        assert!(p[0].tramp() && !p[1].tramp() && p[1].regs());
        assert_eq!(asked.len(), 2, "each callback asked once");
    }

    #[test]
    fn own_trampolines_are_bounded() {
        let n = MAX_OWN_TRAMPOLINES + 10;
        let list: Vec<&'static Ops> = (0..n).map(|_| ops(OpsFlags::empty())).collect();
        // Callback i alone on site i, each offered a trampoline of its own.
        let wants = |i: usize, ip: usize| (ip - 0x1000) / 16 == i;
        let p = plan(
            sites(n).into_iter(),
            &list,
            &|_| false,
            &wants,
            T,
            &mut |o| Some(0x10_0000 + (o as *const Ops as usize) % 0x1000 * 16),
        )
        .unwrap();
        let own = p.iter().filter(|w| w.tramp()).count();
        assert_eq!(own, MAX_OWN_TRAMPOLINES);
        assert!(
            p.iter()
                .filter(|w| !w.tramp())
                .all(|w| w.target == T.caller)
        );
    }

    /// The plan of one site computed the plain way: every callback asked
    /// at every site, in list order (the planner sums the callbacks that
    /// want every site once instead).
    fn model(
        sites: &[(usize, bool)],
        flags: &[OpsFlags],
        every: &[bool],
        wants: &dyn Fn(usize, usize) -> bool,
        pool: &dyn Fn(usize) -> Option<usize>,
    ) -> Result<Vec<Want>, Conflict> {
        let mut out = Vec::new();
        let mut own: Vec<Option<Option<usize>>> = vec![None; flags.len()];
        let mut given = 0;
        for &(ip, failed) in sites {
            let mut w = Want::default();
            if !failed {
                let (mut count, mut regs, mut ipmodify) = (0u32, false, false);
                let mut single = None;
                for (i, f) in flags.iter().enumerate() {
                    if !every[i] && !wants(i, ip) {
                        continue;
                    }
                    if f.contains(OpsFlags::IPMODIFY) {
                        if ipmodify {
                            return Err(Conflict { ip });
                        }
                        ipmodify = true;
                    }
                    count += 1;
                    regs |= f.intersects(OpsFlags::SAVE_REGS | OpsFlags::IPMODIFY);
                    single = Some(i);
                }
                let tramp = match (count, single) {
                    (1, Some(i)) => *own[i].get_or_insert_with(|| {
                        let t = (given < MAX_OWN_TRAMPOLINES).then(|| pool(i)).flatten();
                        given += usize::from(t.is_some());
                        t
                    }),
                    _ => None,
                };
                let mut flags = RecFlags::empty();
                flags.set(RecFlags::REGS, regs);
                flags.set(RecFlags::IPMODIFY, ipmodify);
                w.target = match tramp {
                    _ if count == 0 => 0,
                    Some(t) => {
                        flags |= RecFlags::TRAMP;
                        t
                    }
                    None if regs => T.regs_caller,
                    None => T.caller,
                };
                w.state = flags.bits() | count;
            }
            out.push(w);
        }
        Ok(out)
    }

    proptest::proptest! {
        /// The planner agrees with the plain per-site model for any mix of
        /// callbacks with and without filters, FAILED sites, trampolines
        /// given or refused, conflicts included.
        #[test]
        fn plan_matches_the_per_site_model(
            kinds in proptest::collection::vec((0u8..4, proptest::bool::ANY, proptest::bool::ANY), 0..5),
            mask in proptest::collection::vec(proptest::num::u8::ANY, 1..40),
            failed in proptest::collection::vec(proptest::bool::weighted(0.2), 40),
        ) {
            let flags: Vec<OpsFlags> = kinds
                .iter()
                .map(|&(k, _, _)| match k {
                    0 | 1 => OpsFlags::empty(),
                    2 => OpsFlags::SAVE_REGS,
                    _ => OpsFlags::IPMODIFY,
                })
                .collect();
            let every: Vec<bool> = kinds.iter().map(|k| k.1).collect();
            let list: Vec<&'static Ops> = flags.iter().map(|&f| ops(f)).collect();
            let s: Vec<(usize, bool)> = (0..mask.len())
                .map(|k| (0x1000 + 16 * k, failed[k]))
                .collect();
            // Callback i wants site k when bit i of mask[k] is set.
            let wants = |i: usize, ip: usize| mask[(ip - 0x1000) / 16] & (1 << i) != 0;
            let pool = |i: usize| kinds[i].2.then_some(0x10_0000 + 0x100 * i);
            let got = plan(
                s.iter().copied(),
                &list,
                &|i| every[i],
                &wants,
                T,
                &mut |o| pool(list.iter().position(|l| core::ptr::eq(*l, o)).unwrap()),
            );
            proptest::prop_assert_eq!(got, model(&s, &flags, &every, &wants, &pool));
        }
    }

    #[test]
    fn two_ipmodify_callbacks_on_one_site_conflict() {
        let (a, b) = (ops(OpsFlags::IPMODIFY), ops(OpsFlags::IPMODIFY));
        let s = sites(2);
        let wants = |i: usize, ip: usize| i == 0 || ip == 0x1010;
        assert_eq!(
            plan(
                s.iter().copied(),
                &[a, b],
                &|_| false,
                &wants,
                T,
                &mut |_| None
            ),
            Err(Conflict { ip: 0x1010 })
        );
        let p = plan(s.iter().copied(), &[a], &|_| false, &wants, T, &mut |_| {
            None
        })
        .unwrap();
        assert!(
            p.iter()
                .all(|w| w.ipmodify() && w.regs() && w.target == 0xd000)
        );
    }
}
