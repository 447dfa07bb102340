//! The CPUs a thread may run on (Linux `sched_getaffinity`), so that a
//! helper thread runs where the code that set it up was allowed to, not on
//! the core of the pinned thread that happens to spawn it: the journal's
//! segment preparer is spawned by the appender (the engine thread, pinned
//! to its own core), and `serve` keeps every thread but the engine off the
//! engine's core.

use std::mem::MaybeUninit;

/// A set of CPUs.
#[derive(Clone, Copy)]
pub struct CpuMask(libc::cpu_set_t);

impl std::fmt::Debug for CpuMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.cpus()).finish()
    }
}

impl CpuMask {
    /// The CPUs the calling thread may run on; `None` if the system does
    /// not say.
    pub fn of_current_thread() -> Option<CpuMask> {
        let mut set = MaybeUninit::<libc::cpu_set_t>::zeroed();
        // SAFETY: the set is as large as the size passed, and
        // `sched_getaffinity` writes at most that much.
        let read =
            unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), set.as_mut_ptr()) };
        // SAFETY: zeroed is a valid `cpu_set_t`, and the call only sets bits.
        (read == 0).then(|| CpuMask(unsafe { set.assume_init() }))
    }

    /// Restricts the calling thread (and the threads it spawns from now on)
    /// to these CPUs; `false` if the system refused.
    pub fn apply_to_current_thread(&self) -> bool {
        // SAFETY: the set is as large as the size passed; it is only read.
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.0) == 0 }
    }

    /// The CPUs, in ascending order.
    pub fn cpus(&self) -> impl Iterator<Item = usize> + '_ {
        // SAFETY: `CPU_ISSET` reads the set within its size.
        (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &self.0) })
    }

    /// This set without `cpu`.
    pub fn without(mut self, cpu: usize) -> CpuMask {
        if cpu < libc::CPU_SETSIZE as usize {
            // SAFETY: `CPU_CLR` writes the set within its size.
            unsafe { libc::CPU_CLR(cpu, &mut self.0) };
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_restricted_to_some_cpus_spawns_threads_there() {
        let all = CpuMask::of_current_thread().expect("Linux reports affinity");
        let cpus: Vec<usize> = all.cpus().collect();
        assert!(!cpus.is_empty());
        if cpus.len() < 2 {
            eprintln!("one CPU: nothing to restrict");
            return;
        }
        let kept = all.without(cpus[cpus.len() - 1]);
        let seen = std::thread::spawn(move || {
            assert!(kept.apply_to_current_thread());
            std::thread::spawn(|| {
                CpuMask::of_current_thread()
                    .unwrap()
                    .cpus()
                    .collect::<Vec<_>>()
            })
            .join()
            .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(seen, cpus[..cpus.len() - 1]);
        // The test's own thread is unchanged.
        assert_eq!(
            CpuMask::of_current_thread()
                .unwrap()
                .cpus()
                .collect::<Vec<_>>(),
            cpus
        );
    }
}
