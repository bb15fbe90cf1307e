//! The periodic timer on every CPU (local APIC timer on x86, decrementer
//! on ppc64): its handler's traced functions show in the function trace on
//! every CPU, in hardirq context with interrupts off (`d.h..`), and the
//! header counts every CPU.

use qemu_tests::{ARCHES, Outcome, boot_with, line_matches};

#[test]
fn timer_ticks_are_traced_in_hardirq_context_on_every_cpu() {
    for arch in ARCHES {
        let b = boot_with(arch, "fentry", b"test=timer", &["--smp", "2"]);
        assert_eq!(
            b.outcome,
            Outcome::Success,
            "{arch}:\n{}\n{}",
            b.text(),
            b.stderr
        );
        let lines = b.lines();
        assert!(lines.contains(&"cpus: 2 online".to_owned()), "{arch}");
        assert!(lines.contains(&"timer: every CPU took 3 ticks or more: yes".to_owned()));
        let header = lines
            .iter()
            .find(|l| l.starts_with("# entries-in-buffer/entries-written: "))
            .unwrap_or_else(|| panic!("{arch}: no header:\n{}", b.text()));
        assert!(header.ends_with("#P:2"), "{arch}: {header}");
        let handler = if *arch == "ppc64" {
            "ppc64_irq_handler"
        } else {
            "x86_timer_handler"
        };
        let events: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("          <idle>-0"))
            .collect();
        let mut seen = [0usize; 2];
        for l in &events {
            let ok = (0..2).any(|c| {
                let pre = format!("          <idle>-0       [00{c}] d.h..     {{N}}.{{N}}: ");
                let hit = line_matches(&format!("{pre}kernel::smp::tick_work <-{handler}"), l)
                    || line_matches(
                        &format!("{pre}kernel::smp::tick_leaf <-kernel::smp::tick_work"),
                        l,
                    );
                if hit {
                    seen[c] += 1;
                }
                hit
            });
            assert!(ok, "{arch}: unexpected line {l:?}\n{}", b.text());
        }
        assert!(
            seen[0] >= 6 && seen[1] >= 6,
            "{arch}: per-CPU events {seen:?}\n{}",
            b.text()
        );
        qemu_tests::assert_timestamps_monotonic(&lines);
    }
}
