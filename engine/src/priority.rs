//! A thread's scheduling priority, for agents configured to yield the cores
//! to the latency-critical ones when the machine is busy and still run
//! whenever a core is free (`nice` of `[[server.io_threads]]`; a niced agent
//! falls behind while the machine stays busy).

/// Sets the calling thread's nice value (on Linux, per thread: 0 is the
/// default, 19 the lowest priority); `false` if the system refused.
pub fn set_current_thread_nice(nice: i32) -> bool {
    // SAFETY: `gettid` and `setpriority` take and return integers and
    // touch no memory of this process.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of the calling thread, from `/proc/thread-self/stat`.
    fn current_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Field 19, counted after the command name's closing parenthesis.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn a_thread_lowers_its_own_priority_only() {
        let before = current_nice();
        let niced = std::thread::spawn(|| {
            assert!(set_current_thread_nice(7));
            current_nice()
        })
        .join()
        .unwrap();
        assert_eq!(niced, 7);
        assert_eq!(current_nice(), before, "the other threads keep theirs");
    }
}
