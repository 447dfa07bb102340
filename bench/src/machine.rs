//! The machine a measurement ran on, recorded beside every figure: a number
//! without its machine cannot be compared with anything.

use serde::Serialize;

/// What the harness knows about the machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Machine {
    /// Cores this process may run on.
    pub cores: usize,
    /// The CPU's model name (`/proc/cpuinfo`), or "unknown".
    pub cpu_model: String,
    pub os: &'static str,
    pub arch: &'static str,
    /// The kernel's clock source (Linux), which decides what a clock read
    /// costs: `tsc` is a few tens of nanoseconds, others can be far more.
    pub clock_source: Option<String>,
    /// Whether this build has debug assertions (a `--release` build has
    /// not; figures from one that has are not comparable).
    pub debug_assertions: bool,
}

impl Machine {
    pub fn detect() -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            clock_source: read_trimmed(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            ),
            debug_assertions: cfg!(debug_assertions),
        }
    }
}

impl std::fmt::Display for Machine {
    /// One line for the head of a report.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} cores, {} {}, clock {}, debug assertions {})",
            self.cpu_model,
            self.cores,
            self.os,
            self.arch,
            self.clock_source.as_deref().unwrap_or("unknown"),
            if self.debug_assertions {
                "ON: not comparable"
            } else {
                "off"
            },
        )
    }
}

fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

fn read_trimmed(path: &str) -> Option<String> {
    Some(std::fs::read_to_string(path).ok()?.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_something() {
        let machine = Machine::detect();
        assert!(machine.cores >= 1);
        assert!(!machine.cpu_model.is_empty());
        if cfg!(target_os = "linux") {
            assert_ne!(machine.cpu_model, "unknown");
        }
    }
}
