//! Agents: every loop of the exchange is a unit of work polled by a runner.
//!
//! The model is Aeron's `Agent` / `AgentRunner` / `CompositeAgent`:
//!
//! ```text
//!            ┌──────────────── one thread, optionally pinned ────────────────┐
//!            │ AgentRunner                                                    │
//!            │   loop {                                                       │
//!            │     work = agent.do_work()      // bounded, never blocks       │
//!            │     idle(work)                  // spin → yield → sleep        │
//!            │   }                                                            │
//!            │ agent = EngineAgent | CompositeAgent[gateway, market data, …]  │
//!            └────────────────────────────────────────────────────────────────┘
//! ```
//!
//! - [`Agent::do_work`] does a bounded amount of work without blocking and
//!   returns how much it did (0: nothing to do). An agent ends its duty by
//!   returning [`AgentError::Finished`] (a clean end: its own stop
//!   condition was met) or [`AgentError::Failed`].
//! - The runner's [`IdleStrategy`] decides what a pass that did nothing
//!   costs: spin, yield the core, or sleep. Before sleeping it announces the
//!   sleep ([`AgentWaker`]'s `parked` flag, then [`Agent::prepare_sleep`],
//!   where an agent announces it to whoever wakes it — a
//!   [`Doorbell`](crate::runner::Doorbell), say — and looks once more for
//!   work that arrived meanwhile), so that a producer either sees the
//!   announcement and wakes the runner, or its work is seen by that look.
//! - A [`CompositeAgent`] runs several agents on one thread, each pass
//!   giving every agent one bounded `do_work`: which agents share a thread
//!   and which core it is pinned to is configuration, not code. The engine
//!   agent composes differently: it gives one turn to a background agent
//!   only after a pass that found no command
//!   ([`EngineAgent::with_background`](crate::runner::EngineAgent::with_background)).
//! - A runner sleeps by parking its thread, or, when given a [`Sleeper`],
//!   in that (an `epoll` over the agents' own readiness, for I/O agents:
//!   see [`Agent::wake_fd`]). Either way the sleep is bounded by the
//!   strategy's `park`, so nothing waits on a missed wake-up for longer.
//!
//! Dispatch to a composite's agents is dynamic (`Box<dyn Agent>`): one
//! indirect call per agent per pass, not per message, so the hot paths
//! inside the agents stay statically dispatched.

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

/// A unit of work polled by an [`AgentRunner`].
pub trait Agent {
    /// A short name for logs and thread names ("engine", "gateway", …).
    fn role(&self) -> &str;

    /// Called once on the runner's thread before the first `do_work`.
    fn on_start(&mut self) -> Result<(), AgentError> {
        Ok(())
    }

    /// Does a bounded amount of work without blocking; returns how much
    /// (0 when there was nothing to do). An agent that waits for something
    /// that cannot wake its runner (the journal's durable position, say)
    /// may count the wait as work, to keep its runner from sleeping.
    fn do_work(&mut self) -> Result<usize, AgentError>;

    /// The runner is about to sleep: announce it to whoever wakes this
    /// agent and look once more for work; `true` if there is some (the
    /// runner then does not sleep).
    fn prepare_sleep(&mut self) -> bool {
        false
    }

    /// The runner woke up (from a sleep announced by `prepare_sleep`).
    fn after_sleep(&mut self) {}

    /// Called once on the runner's thread after the last `do_work`,
    /// whatever ended it.
    fn on_close(&mut self) {}

    /// A file descriptor that becomes readable when this agent has work
    /// (a `mio::Poll`'s epoll descriptor), for a [`Sleeper`] that sleeps on
    /// readiness. `None`: the agent is woken only through its runner's
    /// [`AgentWaker`] or by the end of the sleep.
    fn wake_fd(&self) -> Option<RawFd> {
        None
    }
}

impl<A: Agent + ?Sized> Agent for Box<A> {
    fn role(&self) -> &str {
        (**self).role()
    }
    fn on_start(&mut self) -> Result<(), AgentError> {
        (**self).on_start()
    }
    fn do_work(&mut self) -> Result<usize, AgentError> {
        (**self).do_work()
    }
    fn prepare_sleep(&mut self) -> bool {
        (**self).prepare_sleep()
    }
    fn after_sleep(&mut self) {
        (**self).after_sleep()
    }
    fn on_close(&mut self) {
        (**self).on_close()
    }
    fn wake_fd(&self) -> Option<RawFd> {
        (**self).wake_fd()
    }
}

/// How an agent's duty ends.
#[derive(Debug)]
pub enum AgentError {
    /// The agent met its own stop condition: a clean end.
    Finished,
    /// The agent cannot go on.
    Failed(io::Error),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Finished => write!(f, "finished"),
            AgentError::Failed(error) => write!(f, "failed: {error}"),
        }
    }
}

impl std::error::Error for AgentError {}

impl From<io::Error> for AgentError {
    fn from(error: io::Error) -> AgentError {
        AgentError::Failed(error)
    }
}

/// Several agents on one thread. Each pass calls every live agent's
/// `do_work` once, in order; the work done is the sum. An agent that
/// finishes is closed and dropped from the pass; the composite finishes
/// when all have. One that fails fails the composite (the runner then
/// closes the others).
pub struct CompositeAgent {
    role: String,
    agents: Vec<Option<Box<dyn Agent + Send>>>,
    live: usize,
}

impl fmt::Debug for CompositeAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles: Vec<&str> = self.agents.iter().flatten().map(|a| a.role()).collect();
        f.debug_struct("CompositeAgent")
            .field("role", &self.role)
            .field("live", &roles)
            .finish()
    }
}

impl CompositeAgent {
    /// `agents` must not be empty. The role is the agents' roles joined by
    /// `+`.
    pub fn new(agents: Vec<Box<dyn Agent + Send>>) -> CompositeAgent {
        assert!(!agents.is_empty(), "a composite agent needs an agent");
        let role = agents
            .iter()
            .map(|agent| agent.role())
            .collect::<Vec<_>>()
            .join("+");
        let live = agents.len();
        CompositeAgent {
            role,
            agents: agents.into_iter().map(Some).collect(),
            live,
        }
    }

    /// The descriptors of the agents that have one (see [`Agent::wake_fd`]).
    pub fn wake_fds(&self) -> Vec<RawFd> {
        self.agents
            .iter()
            .flatten()
            .filter_map(|agent| agent.wake_fd())
            .collect()
    }
}

impl Agent for CompositeAgent {
    fn role(&self) -> &str {
        &self.role
    }

    fn on_start(&mut self) -> Result<(), AgentError> {
        for agent in self.agents.iter_mut().flatten() {
            agent.on_start()?;
        }
        Ok(())
    }

    fn do_work(&mut self) -> Result<usize, AgentError> {
        let mut work = 0usize;
        for slot in &mut self.agents {
            let Some(agent) = slot else { continue };
            match agent.do_work() {
                Ok(done) => work = work.saturating_add(done),
                Err(AgentError::Finished) => {
                    agent.on_close();
                    *slot = None;
                    self.live -= 1;
                    // A finish is progress: the others get a pass at once.
                    work = work.saturating_add(1);
                }
                Err(failed) => return Err(failed),
            }
        }
        if self.live == 0 {
            return Err(AgentError::Finished);
        }
        Ok(work)
    }

    fn prepare_sleep(&mut self) -> bool {
        // Every agent announces, even after one found work: each has its
        // own producers to tell.
        let mut work = false;
        for agent in self.agents.iter_mut().flatten() {
            work |= agent.prepare_sleep();
        }
        work
    }

    fn after_sleep(&mut self) {
        for agent in self.agents.iter_mut().flatten() {
            agent.after_sleep();
        }
    }

    fn on_close(&mut self) {
        for slot in &mut self.agents {
            if let Some(mut agent) = slot.take() {
                agent.on_close();
            }
        }
        self.live = 0;
    }

    fn wake_fd(&self) -> Option<RawFd> {
        // A composite's agents have a descriptor each: a runner's sleeper
        // takes them all from `wake_fds`.
        None
    }
}

/// What a runner does after a pass that did no work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Spin: lowest latency, the core always busy.
    BusySpin,
    /// Spin a while, then yield the core to other threads between passes.
    SpinYield,
    /// Spin, yield, then sleep until woken (see [`AgentWaker`], [`Sleeper`])
    /// or for at most `park` — for machines where a spinning core is wrong.
    SpinPark { park: Duration },
    /// Sleep at once, for at most `park`: for agents that sleep in `epoll`
    /// between bursts of I/O (an [`EpollSleeper`] wakes on their sockets).
    Park { park: Duration },
}

impl IdleStrategy {
    /// Idle passes spun before the first yield.
    pub const SPINS: u32 = 10_000;
    /// Idle passes yielded before the first sleep.
    pub const YIELDS: u32 = 100;
}

/// Sleeps a runner's thread until something wakes it or `timeout` passes
/// (an `epoll` over the agents' descriptors, say). A runner without one
/// parks its thread.
pub trait Sleeper: Send {
    fn sleep(&mut self, timeout: Duration);
    /// Wakes a sleep in progress, or the next one (from any thread).
    fn wake_handle(&self) -> Arc<dyn Fn() + Send + Sync>;
}

/// A [`Sleeper`] that sleeps in an `epoll` over the agents' own
/// descriptors ([`Agent::wake_fd`], each a `mio::Poll`'s epoll) and a
/// waker of its own: the thread wakes as soon as any agent's socket is
/// ready, without taking that agent's events (they stay queued in its own
/// poll until its next `do_work`).
pub struct EpollSleeper {
    poll: mio::Poll,
    events: mio::Events,
    waker: Arc<mio::Waker>,
}

impl fmt::Debug for EpollSleeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpollSleeper").finish_non_exhaustive()
    }
}

impl EpollSleeper {
    const WAKER: mio::Token = mio::Token(usize::MAX);

    /// Watches `fds` (which must stay open while the sleeper lives: the
    /// agents that own them run on the sleeper's runner).
    pub fn new(fds: &[RawFd]) -> io::Result<EpollSleeper> {
        let poll = mio::Poll::new()?;
        for (index, fd) in fds.iter().enumerate() {
            poll.registry().register(
                &mut mio::unix::SourceFd(fd),
                mio::Token(index),
                mio::Interest::READABLE,
            )?;
        }
        let waker = Arc::new(mio::Waker::new(poll.registry(), EpollSleeper::WAKER)?);
        Ok(EpollSleeper {
            poll,
            events: mio::Events::with_capacity(64),
            waker,
        })
    }
}

impl Sleeper for EpollSleeper {
    fn sleep(&mut self, timeout: Duration) {
        // An error (EINTR) ends the sleep early: the runner looks again.
        let _ = self.poll.poll(&mut self.events, Some(timeout));
    }

    fn wake_handle(&self) -> Arc<dyn Fn() + Send + Sync> {
        let waker = Arc::clone(&self.waker);
        Arc::new(move || {
            let _ = waker.wake();
        })
    }
}

#[derive(Default)]
struct WakeShared {
    parked: AtomicBool,
    /// How to wake the runner: unpark its thread, or its sleeper's handle.
    wake: OnceLock<Wake>,
}

enum Wake {
    Thread(Thread),
    Sleeper(Arc<dyn Fn() + Send + Sync>),
}

/// Wakes a runner that announced a sleep; cheap when it did not (a fence
/// and one load). Call after giving its agent work (a push to its ring).
#[derive(Clone)]
pub struct AgentWaker {
    shared: Arc<WakeShared>,
}

impl fmt::Debug for AgentWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentWaker")
            .field("parked", &self.shared.parked.load(Ordering::Relaxed))
            .finish()
    }
}

impl AgentWaker {
    #[inline]
    pub fn wake(&self) {
        // Pairs with the runner's SeqCst store of `parked` before its last
        // look for work: either it sees the work or this sees `parked`.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.shared.parked.load(Ordering::Relaxed) {
            self.wake_now();
        }
    }

    #[cold]
    fn wake_now(&self) {
        match self.shared.wake.get() {
            Some(Wake::Thread(thread)) => thread.unpark(),
            Some(Wake::Sleeper(wake)) => wake(),
            None => {}
        }
    }
}

/// Settings of one runner thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunnerConfig {
    /// The core to pin the thread to (`None`: not pinned). Read the core
    /// list once at start-up, before any thread is pinned: a pinned thread's
    /// children see only its core.
    pub core: Option<usize>,
    pub idle: IdleStrategy,
    /// The thread's nice value (0: the default priority; higher yields the
    /// cores to the other threads when the machine is busy).
    pub nice: i32,
}

impl Default for RunnerConfig {
    fn default() -> RunnerConfig {
        RunnerConfig {
            core: None,
            idle: IdleStrategy::SpinYield,
            nice: 0,
        }
    }
}

struct RunnerShared {
    close: AtomicBool,
    wake: Arc<WakeShared>,
}

/// Runs one agent (often a [`CompositeAgent`]) on a thread of its own.
pub struct AgentRunner<A> {
    agent: A,
    config: RunnerConfig,
    sleeper: Option<Box<dyn Sleeper>>,
    shared: Arc<RunnerShared>,
}

impl<A: fmt::Debug> fmt::Debug for AgentRunner<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentRunner")
            .field("agent", &self.agent)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<A: Agent + Send + 'static> AgentRunner<A> {
    pub fn new(agent: A, config: RunnerConfig) -> AgentRunner<A> {
        AgentRunner {
            agent,
            config,
            sleeper: None,
            shared: Arc::new(RunnerShared {
                close: AtomicBool::new(false),
                wake: Arc::new(WakeShared::default()),
            }),
        }
    }

    /// Sleeps in `sleeper` instead of parking the thread.
    pub fn with_sleeper(mut self, sleeper: Box<dyn Sleeper>) -> AgentRunner<A> {
        let _ = self
            .shared
            .wake
            .wake
            .set(Wake::Sleeper(sleeper.wake_handle()));
        self.sleeper = Some(sleeper);
        self
    }

    /// Wakes this runner when it sleeps; valid before and after `spawn`.
    pub fn waker(&self) -> AgentWaker {
        AgentWaker {
            shared: Arc::clone(&self.shared.wake),
        }
    }

    /// Starts the thread, named after the agent's role.
    pub fn spawn(self) -> io::Result<AgentHandle<A>> {
        let name = self.agent.role().to_owned();
        let shared = Arc::clone(&self.shared);
        let thread = thread::Builder::new()
            .name(name.clone())
            .spawn(move || self.run())?;
        Ok(AgentHandle {
            role: name,
            shared,
            thread,
        })
    }

    /// Runs the duty cycle on the calling thread until the agent finishes,
    /// fails or [`AgentHandle::close`] is called; gives the agent back.
    pub fn run(mut self) -> (A, Result<(), AgentError>) {
        if let Some(core) = self.config.core {
            // A failed pin leaves the thread unpinned: slower, not wrong.
            let _ = crate::runner::pin_current_thread(core);
        }
        if self.config.nice != 0 {
            // Refused: the thread keeps the default priority.
            let _ = crate::priority::set_current_thread_nice(self.config.nice);
        }
        if self.sleeper.is_none() {
            let _ = self.shared.wake.wake.set(Wake::Thread(thread::current()));
        }
        let result = self.duty_cycle();
        self.agent.on_close();
        let result = match result {
            Err(AgentError::Finished) => Ok(()),
            other => other,
        };
        (self.agent, result)
    }

    fn duty_cycle(&mut self) -> Result<(), AgentError> {
        self.agent.on_start()?;
        let mut idle_passes = 0u32;
        loop {
            if self.shared.close.load(Ordering::Acquire) {
                return Ok(());
            }
            let work = self.agent.do_work()?;
            if work > 0 {
                idle_passes = 0;
                continue;
            }
            idle_passes = idle_passes.saturating_add(1);
            self.idle(idle_passes);
        }
    }

    fn idle(&mut self, passes: u32) {
        match self.config.idle {
            IdleStrategy::BusySpin => std::hint::spin_loop(),
            IdleStrategy::SpinYield => {
                if passes < IdleStrategy::SPINS {
                    std::hint::spin_loop();
                } else {
                    thread::yield_now();
                }
            }
            IdleStrategy::SpinPark { park } => {
                if passes < IdleStrategy::SPINS {
                    std::hint::spin_loop();
                } else if passes < IdleStrategy::SPINS + IdleStrategy::YIELDS {
                    thread::yield_now();
                } else {
                    self.sleep(park);
                }
            }
            IdleStrategy::Park { park } => self.sleep(park),
        }
    }

    fn sleep(&mut self, park: Duration) {
        self.shared.wake.parked.store(true, Ordering::SeqCst);
        // Orders the store before the agent's last look for work (its loads
        // may be Acquire only): pairs with the fence in `AgentWaker::wake`.
        std::sync::atomic::fence(Ordering::SeqCst);
        // Look again after announcing the sleep: a producer that gave work
        // before seeing `parked` did not wake us.
        let work = self.agent.prepare_sleep();
        if !work && !self.shared.close.load(Ordering::Acquire) {
            match self.sleeper.as_mut() {
                Some(sleeper) => sleeper.sleep(park),
                None => thread::park_timeout(park),
            }
        }
        self.shared.wake.parked.store(false, Ordering::Relaxed);
        self.agent.after_sleep();
    }
}

/// A running agent's thread.
pub struct AgentHandle<A> {
    role: String,
    shared: Arc<RunnerShared>,
    thread: JoinHandle<(A, Result<(), AgentError>)>,
}

impl<A> fmt::Debug for AgentHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentHandle")
            .field("role", &self.role)
            .field("finished", &self.thread.is_finished())
            .finish()
    }
}

impl<A> AgentHandle<A> {
    pub fn role(&self) -> &str {
        &self.role
    }

    pub fn waker(&self) -> AgentWaker {
        AgentWaker {
            shared: Arc::clone(&self.shared.wake),
        }
    }

    /// Whether the thread has ended (its agent finished or failed).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Wakes the runner whether or not it announced a sleep (for rare
    /// events such as a stop, where a spurious wake-up costs nothing).
    pub fn wake(&self) {
        AgentWaker {
            shared: Arc::clone(&self.shared.wake),
        }
        .wake_now();
    }

    /// Asks the runner to stop calling `do_work` (the agent is closed
    /// whatever its state: an abort, not a drain — agents that drain do so
    /// on their own stop conditions and finish by themselves).
    pub fn close(&self) {
        self.shared.close.store(true, Ordering::Release);
        AgentWaker {
            shared: Arc::clone(&self.shared.wake),
        }
        .wake_now();
    }

    /// Waits for the thread and gives the agent back with how it ended. A
    /// panic on the thread is carried on here.
    pub fn join(self) -> (A, Result<(), AgentError>) {
        match self.thread.join() {
            Ok(ended) => ended,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// Does `per_pass` units of work per call until `total` are done.
    #[derive(Debug)]
    struct Counter {
        role: &'static str,
        left: usize,
        per_pass: usize,
        calls: usize,
        closed: Arc<AtomicUsize>,
        log: Log,
    }

    type Log = Arc<std::sync::Mutex<Vec<String>>>;

    fn lines(log: &Log) -> Vec<String> {
        log.lock().unwrap().clone()
    }

    impl Agent for Counter {
        fn role(&self) -> &str {
            self.role
        }
        fn do_work(&mut self) -> Result<usize, AgentError> {
            self.calls += 1;
            if self.left == 0 {
                return Err(AgentError::Finished);
            }
            let done = self.per_pass.min(self.left);
            self.left -= done;
            self.log
                .lock()
                .unwrap()
                .push(format!("{} {done}", self.role));
            Ok(done)
        }
        fn on_close(&mut self) {
            self.closed.fetch_add(1, Ordering::Relaxed);
            self.log
                .lock()
                .unwrap()
                .push(format!("{} closed", self.role));
        }
    }

    fn counter(
        role: &'static str,
        total: usize,
        per_pass: usize,
        closed: &Arc<AtomicUsize>,
        log: &Log,
    ) -> Counter {
        Counter {
            role,
            left: total,
            per_pass,
            calls: 0,
            closed: Arc::clone(closed),
            log: Arc::clone(log),
        }
    }

    #[test]
    fn a_composite_interleaves_bounded_passes_and_closes_each_agent_once() {
        let closed = Arc::new(AtomicUsize::new(0));
        let log = Log::default();
        let composite = CompositeAgent::new(vec![
            Box::new(counter("a", 5, 2, &closed, &log)),
            Box::new(counter("b", 3, 1, &closed, &log)),
        ]);
        assert_eq!(composite.role(), "a+b");
        let runner = AgentRunner::new(composite, RunnerConfig::default());
        let (_composite, result) = runner.spawn().unwrap().join();
        assert!(result.is_ok());
        assert_eq!(closed.load(Ordering::Relaxed), 2);
        // Each pass gives every live agent one bounded call, in order.
        assert_eq!(
            lines(&log),
            [
                "a 2", "b 1", "a 2", "b 1", "a 1", "b 1", "a closed", "b closed"
            ]
        );
    }

    #[derive(Debug)]
    struct Failing;

    impl Agent for Failing {
        fn role(&self) -> &str {
            "failing"
        }
        fn do_work(&mut self) -> Result<usize, AgentError> {
            Err(AgentError::Failed(io::Error::other("broken")))
        }
    }

    #[test]
    fn a_failed_agent_fails_its_composite_and_every_agent_is_closed() {
        let closed = Arc::new(AtomicUsize::new(0));
        let log = Log::default();
        let composite = CompositeAgent::new(vec![
            Box::new(counter("a", 1_000, 1, &closed, &log)),
            Box::new(Failing),
        ]);
        let (_composite, result) = AgentRunner::new(composite, RunnerConfig::default()).run();
        match result {
            Err(AgentError::Failed(error)) => assert_eq!(error.to_string(), "broken"),
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(closed.load(Ordering::Relaxed), 1);
    }

    /// Idle until `flag` is set; then finishes.
    #[derive(Debug)]
    struct WaitsForFlag {
        flag: Arc<AtomicBool>,
        sleeps: usize,
    }

    impl Agent for WaitsForFlag {
        fn role(&self) -> &str {
            "waits"
        }
        fn do_work(&mut self) -> Result<usize, AgentError> {
            if self.flag.load(Ordering::Acquire) {
                return Err(AgentError::Finished);
            }
            Ok(0)
        }
        fn prepare_sleep(&mut self) -> bool {
            self.sleeps += 1;
            self.flag.load(Ordering::Acquire)
        }
    }

    #[test]
    fn a_parked_runner_is_woken_by_its_waker_long_before_its_park_ends() {
        let flag = Arc::new(AtomicBool::new(false));
        let agent = WaitsForFlag {
            flag: Arc::clone(&flag),
            sleeps: 0,
        };
        let config = RunnerConfig {
            core: None,
            idle: IdleStrategy::SpinPark {
                park: Duration::from_secs(600),
            },
            ..RunnerConfig::default()
        };
        let runner = AgentRunner::new(agent, config);
        let waker = runner.waker();
        let handle = runner.spawn().unwrap();
        // Let it reach its sleep (spins and yields first).
        let start = Instant::now();
        while !waker.shared.parked.load(Ordering::SeqCst) {
            assert!(start.elapsed() < Duration::from_secs(60), "never slept");
            thread::yield_now();
        }
        flag.store(true, Ordering::Release);
        waker.wake();
        // A lost wake-up would leave it asleep for ten minutes.
        let (agent, result) = handle.join();
        assert!(result.is_ok());
        assert!(agent.sleeps >= 1);
    }

    #[test]
    fn close_stops_an_agent_that_would_never_finish() {
        let flag = Arc::new(AtomicBool::new(false));
        let agent = WaitsForFlag { flag, sleeps: 0 };
        let config = RunnerConfig {
            core: None,
            idle: IdleStrategy::SpinPark {
                park: Duration::from_secs(600),
            },
            ..RunnerConfig::default()
        };
        let handle = AgentRunner::new(agent, config).spawn().unwrap();
        handle.close();
        let (_agent, result) = handle.join();
        assert!(result.is_ok());
    }

    #[test]
    fn an_epoll_sleeper_wakes_on_an_agents_readiness_without_taking_its_events() {
        use std::net::UdpSocket;
        use std::os::fd::AsRawFd;
        let inner = mio::Poll::new().unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        let mut receiver = mio::net::UdpSocket::from_std(receiver);
        inner
            .registry()
            .register(&mut receiver, mio::Token(7), mio::Interest::READABLE)
            .unwrap();
        let mut sleeper = EpollSleeper::new(&[inner.as_raw_fd()]).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender
            .send_to(b"x", receiver.local_addr().unwrap())
            .unwrap();
        let start = Instant::now();
        sleeper.sleep(Duration::from_secs(600));
        assert!(start.elapsed() < Duration::from_secs(300), "slept through");
        // The inner poll still has its event for its agent.
        let mut events = mio::Events::with_capacity(4);
        let mut inner = inner;
        inner.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert_eq!(
            events.iter().map(|e| e.token()).collect::<Vec<_>>(),
            [mio::Token(7)]
        );
        // And the sleeper's own waker ends a sleep too.
        (sleeper.wake_handle())();
        let start = Instant::now();
        sleeper.sleep(Duration::from_secs(600));
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the waker did not wake"
        );
    }
}
