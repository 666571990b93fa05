//! What the process and the machine look like while a scenario runs: resident
//! memory (from `/proc/self/status`), the load average and the open-file limit.
//! Linux only; elsewhere the readings are 0 or None.

use serde::Serialize;

/// One `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`...), 0 if unreadable.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|line| {
                line.strip_prefix(field)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Resident set size of this process now, in KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// Peak resident set size of this process so far (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM")
}

/// The soft limit on open files (`ulimit -n`), from `/proc/self/limits`.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

/// The machine the numbers came from: other work on it skews them.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs this process may use.
    pub cpus: usize,
    /// 1-, 5- and 15-minute load averages when the scenario started and ended.
    pub load_before: Option<[f64; 3]>,
    pub load_after: Option<[f64; 3]>,
}

impl Machine {
    /// Reads the CPU count and the load average; call [`Machine::finish`] at the end.
    pub fn start() -> Machine {
        Machine {
            cpus: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            load_before: load_average(),
            load_after: None,
        }
    }

    pub fn finish(&mut self) {
        self.load_after = load_average();
    }

    /// One line for the table, e.g. `machine: 2 CPUs, load average 7.10 7.02 6.95 at start, ...`.
    pub fn line(&self) -> String {
        let show = |l: &Option<[f64; 3]>| match l {
            Some([a, b, c]) => format!("{a:.2} {b:.2} {c:.2}"),
            None => "unknown".to_string(),
        };
        format!(
            "machine: {} CPUs; load average (1/5/15 min) {} at start, {} at end{}\n",
            self.cpus,
            show(&self.load_before),
            show(&self.load_after),
            if self.busy() {
                " -- busy: other work shares the CPUs, numbers are pessimistic"
            } else {
                ""
            }
        )
    }

    /// True when the 1-minute load exceeded the CPU count at either end.
    pub fn busy(&self) -> bool {
        [self.load_before, self.load_after]
            .iter()
            .flatten()
            .any(|l| l[0] > self.cpus as f64)
    }
}

/// `/proc/loadavg`'s first three fields.
fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(rss_kib() > 0);
            assert!(peak_rss_kib() >= rss_kib() / 2);
            assert!(open_file_limit().is_some_and(|n| n > 0));
            assert!(Machine::start().load_before.is_some());
        }
    }
}
