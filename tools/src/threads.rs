//! The threads of `exchange serve`: which agents run where.
//!
//! ```text
//!  engine thread (pinned; engine_core, idle)     I/O thread(s) (server.io_threads)
//!  ┌──────────────────────────┐                  ┌──────────────────────────────────────┐
//!  │ AgentRunner              │  input ring      │ AgentRunner + EpollSleeper           │
//!  │   EngineAgent            │◀──────────────── │   CompositeAgent[gateway, marketdata]│
//!  │   + in its idle passes:  │ ────────────────▶│   (each pass one bounded turn each)  │
//!  │   SnapshotAgent,         │  output rings,   └──────────────────────────────────────┘
//!  │   StoreWriterAgent       │  doorbells
//!  │   (server.engine_agents) │
//!  └──────────────────────────┘
//! ```
//!
//! The engine agent never shares its thread with a consumer of its rings:
//! when an output ring is full it waits for that ring's consumer, which must
//! therefore run elsewhere. It lends its idle passes to the snapshot agent,
//! which reads only the journal, and to the store writer, which writes the
//! buffers the session streams' stores hand over (`server.engine_agents`,
//! the default); neither makes the engine wait. The
//! I/O agents are composed as `server.io_threads` says (default: one thread
//! with the gateway and market data, sleeping in `epoll` when idle); a
//! thread whose agents all have descriptors sleeps on their readiness, and
//! the engine's doorbells wake it when it publishes.

use std::time::Duration;

use engine::agent::{
    Agent, AgentError, AgentHandle, AgentRunner, CompositeAgent, EpollSleeper, IdleStrategy,
    RunnerConfig,
};

use journal::cpus::CpuMask;

use crate::config::{IdleName, IoAgentName, IoThreadSection};

/// The engine's idle strategy by name (`park` bounds a sleep at 100 µs:
/// the producers wake it, the bound only caps a missed wake-up).
pub fn engine_idle(name: IdleName) -> IdleStrategy {
    let park = Duration::from_micros(100);
    idle_strategy(name, park)
}

fn idle_strategy(name: IdleName, park: Duration) -> IdleStrategy {
    match name {
        IdleName::BusySpin => IdleStrategy::BusySpin,
        IdleName::SpinYield => IdleStrategy::SpinYield,
        IdleName::SpinPark => IdleStrategy::SpinPark { park },
        IdleName::Park => IdleStrategy::Park { park },
    }
}

/// The core the engine thread is pinned to: the configured one, else the
/// last core the process may use when it has at least two. Read the core
/// list before anything is pinned (a pinned thread sees only its core).
pub fn engine_core(configured: Option<usize>, cores: &[core_affinity::CoreId]) -> Option<usize> {
    configured.or_else(|| (cores.len() >= 2).then(|| cores[cores.len() - 1].id))
}

/// The core of the I/O thread that runs order entry when the
/// configuration names none: the last core the process may use other than
/// the engine's (`None` with a single core or an unpinned engine). Left
/// unpinned it shares a core with whatever else spins there (a client, on a
/// small machine), and each of its sleeps or yields then waits a whole time
/// slice: measured on 2 cores, the order round trip's p99 was about 90 µs
/// pinned and 420 µs not.
pub fn io_core(engine_core: Option<usize>, cores: &[core_affinity::CoreId]) -> Option<usize> {
    let engine = engine_core?;
    cores
        .iter()
        .rev()
        .map(|core| core.id)
        .find(|&id| id != engine)
}

/// Keeps the calling thread, and every thread it spawns meanwhile, off the
/// engine's core (when another core is left), until dropped: the engine's
/// core is the engine thread's alone. A helper thread sharing it (the
/// journal's segment preparer, a snapshot agent on a thread of its own)
/// takes the core for a whole time slice whenever the engine yields, and
/// the engine's next command waits for it: measured on 2 cores, the
/// snapshot thread kept off the engine's core gave the pipelined e2e about
/// 20% more. (Work in the engine thread's own idle passes is another
/// matter: the engine decides when it runs.)
#[derive(Debug)]
pub struct OffEngineCore {
    restore: Option<CpuMask>,
}

impl OffEngineCore {
    pub fn enter(engine_core: Option<usize>) -> OffEngineCore {
        let Some((before, engine)) = CpuMask::of_current_thread().zip(engine_core) else {
            return OffEngineCore { restore: None };
        };
        let others = before.without(engine);
        let applied = others.cpus().next().is_some() && others.apply_to_current_thread();
        OffEngineCore {
            restore: applied.then_some(before),
        }
    }
}

impl Drop for OffEngineCore {
    fn drop(&mut self) {
        if let Some(before) = self.restore {
            before.apply_to_current_thread();
        }
    }
}

/// Steps a [`journal::StoreWriter`]: each turn writes up to
/// [`journal::WRITE_STEP_BYTES_MAX`] of a buffer a store handed over. It
/// finishes once the writer is closed (`Running::stop`, at the engine's
/// stop) and nothing waits; closed with its thread (a failed engine), it
/// closes the writer, and the stores write their buffers themselves.
#[derive(Debug)]
pub struct StoreWriterAgent {
    writer: journal::StoreWriter,
}

impl StoreWriterAgent {
    pub fn new(writer: journal::StoreWriter) -> StoreWriterAgent {
        StoreWriterAgent { writer }
    }
}

impl Agent for StoreWriterAgent {
    fn role(&self) -> &str {
        "store-writer"
    }

    fn do_work(&mut self) -> Result<usize, AgentError> {
        if self.writer.step() > 0 {
            return Ok(1);
        }
        if self.writer.is_closed() && self.writer.is_idle() {
            return Err(AgentError::Finished);
        }
        Ok(0)
    }

    fn on_close(&mut self) {
        self.writer.close();
    }
}

/// The I/O agents, by name, before they are given threads.
#[derive(Default)]
pub struct IoAgents {
    agents: Vec<(IoAgentName, Box<dyn Agent + Send>)>,
}

impl std::fmt::Debug for IoAgents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<IoAgentName> = self.agents.iter().map(|(name, _)| *name).collect();
        f.debug_struct("IoAgents").field("agents", &names).finish()
    }
}

impl IoAgents {
    pub fn add(&mut self, name: IoAgentName, agent: Box<dyn Agent + Send>) {
        assert!(
            self.agents.iter().all(|(added, _)| *added != name),
            "{name:?} added twice"
        );
        self.agents.push((name, agent));
    }

    fn take(&mut self, name: IoAgentName) -> Option<Box<dyn Agent + Send>> {
        let index = self.agents.iter().position(|(added, _)| *added == name)?;
        Some(self.agents.swap_remove(index).1)
    }

    /// Starts one thread per entry of `plan` with its agents (in the
    /// plan's order). Every agent added must be in the plan, and every
    /// agent in the plan added (see `ServerSection::io_thread_plan`).
    pub fn spawn(mut self, plan: &[IoThreadSection]) -> std::io::Result<IoThreads> {
        let mut threads = IoThreads::default();
        for thread in plan {
            let agents: Vec<Box<dyn Agent + Send>> = thread
                .agents
                .iter()
                .map(|name| {
                    self.take(*name)
                        .unwrap_or_else(|| panic!("{name:?} is planned but was not started"))
                })
                .collect();
            let composite = CompositeAgent::new(agents);
            let fds = composite.wake_fds();
            let config = RunnerConfig {
                core: thread.core,
                idle: idle_strategy(thread.idle, Duration::from_micros(thread.park_us)),
                nice: thread.nice,
            };
            let mut runner = AgentRunner::new(composite, config);
            if !fds.is_empty() {
                match EpollSleeper::new(&fds) {
                    Ok(sleeper) => runner = runner.with_sleeper(Box::new(sleeper)),
                    Err(error) => {
                        threads.close();
                        return Err(error);
                    }
                }
            }
            match runner.spawn() {
                Ok(handle) => threads.handles.push(handle),
                Err(error) => {
                    threads.close();
                    return Err(error);
                }
            }
        }
        assert!(
            self.agents.is_empty(),
            "agents without a thread: {:?}",
            self.agents.iter().map(|(name, _)| name).collect::<Vec<_>>()
        );
        Ok(threads)
    }
}

/// The running I/O threads.
#[derive(Debug, Default)]
pub struct IoThreads {
    handles: Vec<AgentHandle<CompositeAgent>>,
}

impl IoThreads {
    /// Whether a thread has ended (its agents finished or one failed).
    pub fn any_finished(&self) -> bool {
        self.handles.iter().any(AgentHandle::is_finished)
    }

    /// Aborts every thread (an error path: nothing is drained).
    pub fn close(self) {
        for handle in &self.handles {
            handle.close();
        }
        for handle in self.handles {
            let _ = handle.join();
        }
    }

    /// Waits for every thread; the first failure, if any (each is
    /// logged).
    pub fn join(self) -> std::io::Result<()> {
        let mut first = Ok(());
        for handle in self.handles {
            let role = handle.role().to_owned();
            match handle.join().1 {
                Ok(()) | Err(AgentError::Finished) => {}
                Err(AgentError::Failed(error)) => {
                    tracing::error!(thread = %role, %error, "an I/O thread failed");
                    if first.is_ok() {
                        first = Err(error);
                    }
                }
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use core_affinity::CoreId;

    use super::*;

    fn cores(ids: &[usize]) -> Vec<CoreId> {
        ids.iter().map(|&id| CoreId { id }).collect()
    }

    #[test]
    fn order_entry_takes_the_last_core_the_engine_does_not() {
        let two = cores(&[0, 1]);
        let engine = engine_core(None, &two);
        assert_eq!(engine, Some(1));
        assert_eq!(io_core(engine, &two), Some(0));
        // A configured engine core: the I/O thread takes the last other.
        assert_eq!(io_core(Some(3), &cores(&[0, 1, 2, 3, 4])), Some(4));
        assert_eq!(io_core(Some(4), &cores(&[2, 4])), Some(2));
        // One core, or an engine left unpinned: nothing is pinned.
        assert_eq!(io_core(engine_core(None, &cores(&[0])), &cores(&[0])), None);
        assert_eq!(io_core(Some(0), &cores(&[0])), None);
        assert_eq!(io_core(None, &two), None);
    }

    #[test]
    fn threads_started_meanwhile_keep_off_the_engine_core() {
        std::thread::spawn(|| {
            let mine = || {
                CpuMask::of_current_thread()
                    .unwrap()
                    .cpus()
                    .collect::<Vec<_>>()
            };
            let before = mine();
            let engine = *before.last().unwrap();
            {
                let _off = OffEngineCore::enter(Some(engine));
                let spawned = std::thread::spawn(mine).join().unwrap();
                if before.len() == 1 {
                    // Nothing else to run on: nothing is restricted.
                    assert_eq!(spawned, before);
                } else {
                    assert_eq!(spawned, before[..before.len() - 1]);
                }
            }
            assert_eq!(mine(), before);
            let _unpinned = OffEngineCore::enter(None);
            assert_eq!(mine(), before);
        })
        .join()
        .unwrap();
    }
}
