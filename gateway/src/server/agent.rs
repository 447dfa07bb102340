//! The gateway's loop as an [`Agent`]: each `do_work` is one bounded,
//! non-blocking pass (poll with a zero timeout, at most a pass's worth of
//! reads per session, of engine outputs and of writes). [`Server::spawn`]
//! runs it alone on a runner that sleeps in the loop's `epoll`;
//! [`Server::into_agent`] hands it out to share a runner with other agents.
//!
//! One agent serves both ports. Order entry and funding share the engine's
//! one output ring and its durability gate (a command's outcome may concern
//! both ports' streams, and the gate releases in journal order), so
//! splitting them would need a second output ring from the engine.
//!
//! # Idling
//! - Nothing to do (no command in flight, no output waiting for the disk,
//!   no session with unread bytes): `do_work` returns 0 and the runner may
//!   sleep; a socket or a login's answer wakes the `epoll` behind
//!   [`Agent::wake_fd`].
//! - Waiting for the engine or the disk, neither of which can wake the
//!   runner: the wait counts as work (1) so the runner keeps polling; after
//!   [`IDLE_PASSES_BEFORE_YIELD`] such passes in a row the agent yields its
//!   core between passes (the engine or a client may share it on a small
//!   machine), as the loop always did.
//!
//! [`Server::spawn`]: super::Server::spawn
//! [`Server::into_agent`]: super::Server::into_agent

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use engine::agent::{Agent, AgentError};
use mio::Events;

use super::{Control, EventLoop, ServerStats};

/// Idle busy passes in a row past which the agent yields its core.
const IDLE_PASSES_BEFORE_YIELD: u32 = 256;
/// How long the agent flushes at shutdown.
const FINISH_FLUSH_MAX: Duration = Duration::from_secs(1);
/// Readiness events taken per pass.
const EVENTS_PER_PASS: usize = 1024;

/// The order-entry and funding loop as an agent.
#[derive(Debug)]
pub struct GatewayAgent {
    event_loop: EventLoop,
    events: Events,
    /// Busy passes in a row that found nothing to do.
    idle_busy_passes: u32,
    /// Set once the engine is done: flush until then, then finish.
    finish_deadline: Option<Instant>,
    shared: Arc<Shared>,
}

/// What the agent and its controls share.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) control: Control,
    /// The counters, published when the agent closes.
    stats: Mutex<ServerStats>,
}

impl GatewayAgent {
    pub(super) fn new(event_loop: EventLoop, shared: Arc<Shared>) -> GatewayAgent {
        GatewayAgent {
            event_loop,
            events: Events::with_capacity(EVENTS_PER_PASS),
            idle_busy_passes: 0,
            finish_deadline: None,
            shared,
        }
    }

    /// The `epoll` descriptor of the loop (what [`Agent::wake_fd`] gives).
    pub(super) fn wake_fd_raw(&self) -> RawFd {
        self.event_loop.poll.as_raw_fd()
    }

    /// The counters so far.
    pub fn stats(&self) -> ServerStats {
        self.event_loop.stats
    }

    fn control(&self) -> &Control {
        &self.shared.control
    }

    /// One shutdown pass: release and flush what is left; finished once
    /// every session is flushed (or the deadline passed), then closes them.
    fn finish_pass(&mut self, deadline: Instant) -> Result<usize, AgentError> {
        let event_loop = &mut self.event_loop;
        event_loop.clock.now = Instant::now();
        let taken = event_loop.take_outputs();
        event_loop.release_durable();
        event_loop.write_sessions();
        if event_loop.unsent() && Instant::now() <= deadline {
            return Ok(taken);
        }
        // Past the deadline, the engine's ring may still hold durable
        // outputs (the engine has stopped: it is finite): they reach the
        // streams and, through the tee, market data, which has no deadline
        // of its own.
        while event_loop.take_outputs() > 0 {}
        event_loop.release_durable();
        event_loop.close_all("the server is shutting down");
        Err(AgentError::Finished)
    }
}

impl Agent for GatewayAgent {
    fn role(&self) -> &str {
        "gateway"
    }

    fn do_work(&mut self) -> Result<usize, AgentError> {
        if self.finish_deadline.is_none() && self.control().engine_done.load(Ordering::Acquire) {
            self.finish_deadline = Some(Instant::now() + FINISH_FLUSH_MAX);
        }
        if let Some(deadline) = self.finish_deadline {
            return self.finish_pass(deadline);
        }
        let work = self.event_loop.pass(&mut self.events, Duration::ZERO)?;
        if work > 0 {
            self.idle_busy_passes = 0;
            return Ok(work);
        }
        if !self.event_loop.is_busy() {
            self.idle_busy_passes = 0;
            return Ok(0);
        }
        // Waiting on the engine or the disk: nothing will wake the runner.
        self.idle_busy_passes = self.idle_busy_passes.saturating_add(1);
        if self.idle_busy_passes > IDLE_PASSES_BEFORE_YIELD {
            thread::yield_now();
        }
        Ok(1)
    }

    fn prepare_sleep(&mut self) -> bool {
        // A login answer or a socket wakes the epoll the runner sleeps in;
        // the engine being done is announced through the same waker.
        self.control().engine_done.load(Ordering::Acquire) || self.event_loop.is_busy()
    }

    fn on_close(&mut self) {
        self.event_loop.close_tee();
        *self
            .shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.event_loop.stats;
    }

    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.event_loop.poll.as_raw_fd())
    }
}

/// Stops and finishes a gateway agent, and reads its counters, from any
/// thread.
#[derive(Clone, Debug)]
pub struct GatewayControl {
    pub(super) shared: Arc<Shared>,
    /// Wakes the agent's epoll (the authenticator's waker).
    pub(super) waker: Arc<mio::Waker>,
}

impl GatewayControl {
    /// Stops taking messages from clients (sessions stay open to receive
    /// replies).
    pub fn stop_input(&self) {
        self.shared
            .control
            .stop_input
            .store(true, Ordering::Release);
    }

    /// After the engine has stopped and the journal is durable: the agent
    /// sends what is left, closes every session and finishes.
    pub fn engine_done(&self) {
        self.stop_input();
        self.shared
            .control
            .engine_done
            .store(true, Ordering::Release);
        let _ = self.waker.wake();
    }

    /// The counters, once the agent has closed (zero before).
    pub fn stats(&self) -> ServerStats {
        *self
            .shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Logins;
    use crate::server::{Directory, Server, ServerConfig, ServerParts, SessionStreams};
    use engine::agent::{AgentRunner, RunnerConfig};

    /// Lends its runner's waker to the gateway's parts (the engine's, in
    /// production).
    #[derive(Debug)]
    struct Idle;

    impl Agent for Idle {
        fn role(&self) -> &str {
            "idle"
        }
        fn do_work(&mut self) -> Result<usize, AgentError> {
            Ok(0)
        }
    }

    /// An agent with no engine behind it (its rings are never served) and
    /// an empty journal; the directory removes itself when dropped.
    struct Fixture {
        agent: GatewayAgent,
        control: GatewayControl,
        order_entry: std::net::SocketAddr,
        dir: std::path::PathBuf,
        _journal: journal::Journal,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn fixture(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("gateway-agent-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = journal::JournalOptions {
            prefault: false,
            ..Default::default()
        };
        let (journal, _) = journal::Journal::open(&dir, options).unwrap();
        let any_port = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(ServerConfig {
            order_entry: any_port,
            funding: any_port,
            sessions_max: 4,
            messages_per_second: 100,
            messages_burst: 100,
            outbound_buffer_bytes: 1 << 20,
            heartbeat: Duration::from_secs(1),
            client_timeout: Duration::from_secs(15),
            core: None,
        })
        .unwrap();
        let order_entry = server.order_entry_addr().unwrap();
        let (input, _) = engine::ring(64);
        let (_, output) = engine::ring(64);
        let parts = ServerParts {
            logins: Logins::new(Vec::new()).unwrap(),
            directory: Directory::new(&[]).unwrap(),
            streams: SessionStreams::temporary(Vec::new()),
            input,
            output,
            waker: AgentRunner::new(Idle, RunnerConfig::default()).waker(),
            durable: journal.durable(),
            session_prefix: "700101".to_owned(),
            tee: None,
        };
        let (agent, control) = server.into_agent(parts).unwrap();
        Fixture {
            agent,
            control,
            order_entry,
            dir,
            _journal: journal,
        }
    }

    #[test]
    fn idle_passes_do_no_work_and_the_engine_being_done_finishes() {
        let mut fixture = fixture("idle");
        let agent = &mut fixture.agent;
        assert_eq!(agent.role(), "gateway");
        assert!(agent.wake_fd().is_some());
        agent.on_start().unwrap();
        assert_eq!(agent.do_work().unwrap(), 0);
        assert!(!agent.prepare_sleep());
        fixture.control.engine_done();
        assert!(agent.prepare_sleep(), "the engine being done is work");
        assert!(matches!(agent.do_work(), Err(AgentError::Finished)));
        agent.on_close();
        assert_eq!(fixture.control.stats().sessions_accepted, 0);
    }

    #[test]
    fn a_connection_is_work_and_is_counted() {
        let mut fixture = fixture("connect");
        let _client = std::net::TcpStream::connect(fixture.order_entry).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut work = 0;
        while work == 0 && Instant::now() < deadline {
            work = fixture.agent.do_work().unwrap();
        }
        assert!(work > 0, "the accept was seen");
        assert_eq!(fixture.agent.stats().sessions_accepted, 1);
        // A session waiting for its Login Request is not work.
        while fixture.agent.do_work().unwrap() > 0 {}
        fixture.control.engine_done();
        assert!(matches!(fixture.agent.do_work(), Err(AgentError::Finished)));
        fixture.agent.on_close();
        assert_eq!(fixture.control.stats().sessions_accepted, 1);
    }
}
