//! The engine loop: one thread, pinned to a core, that owns the
//! [`Sequencer`] and moves commands from the input ring to the output rings.
//!
//! ```text
//!  gateway ──Request──▶ [input ring] ──▶ engine thread ──Output──▶ [output ring] ──▶ gateway
//!                                        1. stamp + journal          (one ring per consumer:
//!                                        2. apply                     gateway, market data)
//!                                        3. publish outcome
//! ```
//!
//! - The thread drains the input ring in batches (up to `batch_max` commands
//!   per pass). A batch shares one clock reading: the timestamp is read once
//!   per batch, not per command.
//! - Each command's outcome is published to every output ring as one
//!   [`Output::Command`] (header, command, origin, status, number of events)
//!   followed by that many [`Output::Event`]s. A command's events are staged
//!   in a reused buffer first, because their number is unbounded (a mass
//!   cancel touches every order of an account) while a ring is bounded.
//! - A full output ring makes the engine wait (spinning) for its consumer:
//!   back-pressure rather than an unbounded queue. The consumers never wait
//!   for clients (a slow client is disconnected at the edge), so the wait is
//!   bounded by how fast they drain.
//! - The engine never waits for the disk. The outcomes are published as soon
//!   as they are applied; the consumers hold them until the command is
//!   durable (`Sequencer::durable`), which is the durability rule of
//!   `docs/design.md`.
//! - If the journal refuses a command (device full, I/O error), nothing of it
//!   is applied; the loop publishes [`Output::Failed`] and stops. A core
//!   that cannot journal cannot accept anything more.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::agent::{Agent, AgentError, AgentHandle, AgentRunner, RunnerConfig};
use crate::codec::ORIGIN_BYTES_MAX;
use crate::command::{Command, CommandHeader};
use crate::event::{Event, Status};
use crate::ring::{Consumer, Producer};
use crate::sequencer::Sequencer;

/// Bytes the edge attaches to a command; journaled with it and handed back
/// with its outcome (see `codec::encode_record`). Opaque to the engine.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    len: u8,
    bytes: [u8; ORIGIN_BYTES_MAX],
}

impl Origin {
    /// No origin.
    pub const NONE: Origin = Origin {
        len: 0,
        bytes: [0; ORIGIN_BYTES_MAX],
    };

    /// `None` if `bytes` is longer than [`ORIGIN_BYTES_MAX`].
    pub fn new(bytes: &[u8]) -> Option<Origin> {
        let mut origin = Origin::NONE;
        origin.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        origin.len = bytes.len() as u8;
        Some(origin)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin(")?;
        for byte in self.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}

/// A command for the engine, from the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    pub origin: Origin,
}

/// What the engine publishes: per command, one [`Output::Command`] and then
/// its events, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// `Event` and `Command` are large and copied by value on purpose: boxing
// would allocate per message.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// A command was journaled and applied; `events` [`Output::Event`]s
    /// follow.
    Command {
        header: CommandHeader,
        command: Command,
        origin: Origin,
        status: Status,
        events: u32,
    },
    /// One event of the command before it.
    Event(Event),
    /// The journal refused a command: nothing of it was applied and the
    /// engine has stopped.
    Failed,
}

/// A consumer's queue of outputs waiting for durability: the edges hold
/// each command's outcome until the journal says the command is durable
/// (the durability rule), then release it whole, in order.
#[derive(Debug, Default)]
pub struct PendingOutputs {
    queue: std::collections::VecDeque<Output>,
}

/// What [`PendingOutputs::pop_durable`] releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Released {
    /// A durable command; its events are in the caller's buffer.
    Command {
        header: CommandHeader,
        command: Command,
        origin: Origin,
        status: Status,
    },
    /// The engine stopped: the journal refused a command.
    Failed,
}

impl PendingOutputs {
    pub fn new() -> PendingOutputs {
        PendingOutputs::default()
    }

    pub fn push(&mut self, output: Output) {
        self.queue.push_back(output);
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Moves up to `max` outputs from the ring to the queue; returns how
    /// many.
    pub fn take_from(&mut self, ring: &mut Consumer<Output>, max: usize) -> usize {
        let queue = &mut self.queue;
        ring.drain(max, |output| queue.push_back(output))
    }

    /// The command at the front, with its events put in `events`, if all
    /// of them have arrived and its sequence is at most `durable` (the
    /// journal's durable position, read once per pass by the caller;
    /// `u64::MAX` releases whatever is complete, for a closed journal).
    /// `None` while the front is incomplete or not durable yet, or the
    /// queue is empty.
    pub fn pop_durable(&mut self, durable: u64, events: &mut Vec<Event>) -> Option<Released> {
        loop {
            match *self.queue.front()? {
                Output::Failed => {
                    self.queue.pop_front();
                    return Some(Released::Failed);
                }
                Output::Event(_) => {
                    // Events are taken with their command; a stray one is a
                    // bug in the engine loop.
                    debug_assert!(false, "an event without its command");
                    self.queue.pop_front();
                }
                Output::Command {
                    header,
                    command,
                    origin,
                    status,
                    events: count,
                } => {
                    let count = count as usize;
                    if self.queue.len() < 1 + count {
                        return None;
                    }
                    if header.sequence > durable {
                        return None;
                    }
                    self.queue.pop_front();
                    events.clear();
                    for output in self.queue.drain(..count) {
                        match output {
                            Output::Event(event) => events.push(event),
                            other => debug_assert!(false, "expected an event, got {other:?}"),
                        }
                    }
                    return Some(Released::Command {
                        header,
                        command,
                        origin,
                        status,
                    });
                }
            }
        }
    }
}

pub use crate::agent::AgentWaker as Waker;
pub use crate::agent::IdleStrategy;

/// Settings of the engine thread.
#[derive(Clone, Copy, Debug)]
pub struct LoopConfig {
    /// The core to pin the thread to (`None`: not pinned). Read the core
    /// list once at start-up, before any thread is pinned: a pinned thread's
    /// children see only its core.
    pub core: Option<usize>,
    pub idle: IdleStrategy,
    /// Commands taken from the input ring per pass.
    pub batch_max: usize,
}

impl Default for LoopConfig {
    fn default() -> LoopConfig {
        LoopConfig {
            core: None,
            idle: IdleStrategy::SpinYield,
            batch_max: 256,
        }
    }
}

#[derive(Debug, Default)]
struct EngineShared {
    stop: AtomicBool,
    /// Set when a stop found an output ring no longer drained.
    abandoned: AtomicBool,
    commands: AtomicU64,
    batches: AtomicU64,
    /// Why the background agent failed, if it did.
    background_failure: Mutex<Option<String>>,
    /// Why the engine agent failed (the journal refused a command), if it
    /// did.
    failure: Mutex<Option<String>>,
}

impl EngineShared {
    /// Keeps why the background agent ended, if it failed.
    fn background_ended(&self, ended: AgentError) {
        if let AgentError::Failed(error) = ended {
            *self
                .background_failure
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error.to_string());
        }
    }
}

/// Counters of a running engine loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    pub commands: u64,
    pub batches: u64,
}

/// Stops an [`EngineAgent`] and reads its counters from another thread.
#[derive(Clone, Debug)]
pub struct EngineControl {
    shared: Arc<EngineShared>,
}

impl EngineControl {
    pub fn stats(&self) -> LoopStats {
        LoopStats {
            commands: self.shared.commands.load(Ordering::Relaxed),
            batches: self.shared.batches.load(Ordering::Relaxed),
        }
    }

    /// Asks the agent to finish once its input ring is empty (stop the
    /// producers first); wake its runner afterwards.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
    }

    /// Why the engine stopped on its own (the journal refused a command,
    /// with the journal's reason), if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Why the background agent failed (it was dropped then; the engine
    /// goes on), if it did.
    pub fn background_failure(&self) -> Option<String> {
        self.shared
            .background_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// A running engine thread: an [`EngineAgent`] (and its background agent, if
/// any) on its runner.
#[derive(Debug)]
pub struct EngineHandle {
    control: EngineControl,
    agent: AgentHandle<EngineAgent>,
}

impl EngineHandle {
    pub fn waker(&self) -> Waker {
        self.agent.waker()
    }

    pub fn stats(&self) -> LoopStats {
        self.control.stats()
    }

    /// Whether the thread has ended (stopped, or failed on the journal).
    pub fn is_finished(&self) -> bool {
        self.agent.is_finished()
    }

    /// Why the background agent failed, if it did.
    pub fn background_failure(&self) -> Option<String> {
        self.control.background_failure()
    }

    /// The engine's control, which outlives the handle (its counters and
    /// background failure after a stop).
    pub fn control(&self) -> EngineControl {
        self.control.clone()
    }

    /// Stops the thread once its input ring is empty (stop the producers
    /// first) and gives the sequencer back, to close or snapshot. A
    /// background agent is closed and dropped where it stands.
    pub fn stop(self) -> Sequencer {
        let (sequencer, background) = self.stop_with_background();
        if let Some(mut background) = background {
            background.on_close();
        }
        sequencer
    }

    /// As [`EngineHandle::stop`], also giving the background agent back
    /// (unless it finished or failed), unclosed, for its caller to finish
    /// elsewhere: it may have work left that needs the sequencer closed
    /// first (a snapshot agent catching up with the journal's end).
    pub fn stop_with_background(self) -> (Sequencer, Option<Box<dyn Agent + Send>>) {
        self.control.stop();
        self.agent.wake();
        // A journal failure ended the agent already; the sequencer is
        // given back either way.
        let (agent, _ended) = self.agent.join();
        (agent.sequencer, agent.background)
    }
}

/// How a consumer that sleeps (in `epoll`, say) is woken when the engine
/// publishes to its ring: the consumer announces it is about to sleep
/// ([`sleeping`](Self::sleeping)), looks at its ring once more, sleeps, and
/// then says it is [`awake`](Self::awake); after every batch that published
/// something, and whenever a ring it pushes to is full, the engine rings the
/// bell if the consumer announced sleep. Costs the engine a fence and a load
/// per batch while the consumer is awake; the consumer should announce only
/// long sleeps (idle), not short waits.
pub struct Doorbell {
    sleeping: AtomicBool,
    ring: Box<dyn Fn() + Send + Sync>,
}

impl Doorbell {
    /// A bell that calls `ring` (for example `mio::Waker::wake`).
    pub fn new(ring: impl Fn() + Send + Sync + 'static) -> Doorbell {
        Doorbell {
            sleeping: AtomicBool::new(false),
            ring: Box::new(ring),
        }
    }

    /// The consumer is about to sleep: call, then look at the ring again
    /// before sleeping (a push before this store is seen by that look).
    pub fn sleeping(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
        // Orders the store before the consumer's next look at its ring
        // (pairs with the fence in `ring_if_sleeping`).
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// The consumer is awake again.
    pub fn awake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Called by the producer after pushing.
    #[inline]
    pub fn ring_if_sleeping(&self) {
        // Pairs with the consumer's SeqCst store of `sleeping`: either it
        // sees the push on its last look or this sees `sleeping`.
        std::sync::atomic::fence(Ordering::SeqCst);
        // A plain load first: no write to the shared line while awake.
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::Relaxed) {
            (self.ring)();
        }
    }
}

impl fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Doorbell")
            .field("sleeping", &self.sleeping.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Starts the engine thread.
pub fn spawn(
    sequencer: Sequencer,
    input: Consumer<Request>,
    outputs: Vec<Producer<Output>>,
    config: LoopConfig,
) -> std::io::Result<EngineHandle> {
    spawn_with_background(sequencer, input, outputs, Vec::new(), config, None)
}

/// As [`spawn`], ringing each doorbell after every batch that published to
/// the rings (consumers that sleep rather than spin), and with an agent, if
/// any, run in the engine's idle time (see [`EngineAgent::with_background`]).
pub fn spawn_with_background(
    sequencer: Sequencer,
    input: Consumer<Request>,
    outputs: Vec<Producer<Output>>,
    doorbells: Vec<Arc<Doorbell>>,
    config: LoopConfig,
    background: Option<Box<dyn Agent + Send>>,
) -> std::io::Result<EngineHandle> {
    let (mut agent, control) =
        EngineAgent::new(sequencer, input, outputs, doorbells, config.batch_max);
    if let Some(background) = background {
        agent = agent.with_background(background);
    }
    let runner = AgentRunner::new(
        agent,
        RunnerConfig {
            core: config.core,
            idle: config.idle,
            ..RunnerConfig::default()
        },
    );
    let agent = runner.spawn()?;
    Ok(EngineHandle { control, agent })
}

/// The engine loop as an agent: each [`do_work`](Agent::do_work) takes up
/// to `batch_max` commands from the input ring, journals and applies them
/// and publishes their outcomes. It finishes when stopped (see
/// [`EngineControl::stop`]) with an empty input ring, and fails when the
/// journal refuses a command. It must run alone on its thread: a full
/// output ring makes it wait for that ring's consumer. It may lend that
/// thread's idle time to a background agent that consumes none of its
/// rings ([`EngineAgent::with_background`]).
pub struct EngineAgent {
    sequencer: Sequencer,
    input: Consumer<Request>,
    outputs: Vec<Producer<Output>>,
    doorbells: Vec<Arc<Doorbell>>,
    staged: Vec<Event>,
    shared: Arc<EngineShared>,
    batch_max: usize,
    background: Option<Box<dyn Agent + Send>>,
}

impl fmt::Debug for EngineAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineAgent")
            .field("batch_max", &self.batch_max)
            .finish_non_exhaustive()
    }
}

impl EngineAgent {
    pub fn new(
        sequencer: Sequencer,
        input: Consumer<Request>,
        outputs: Vec<Producer<Output>>,
        doorbells: Vec<Arc<Doorbell>>,
        batch_max: usize,
    ) -> (EngineAgent, EngineControl) {
        assert!(batch_max > 0, "an engine batch takes at least one command");
        let shared = Arc::new(EngineShared::default());
        let control = EngineControl {
            shared: Arc::clone(&shared),
        };
        let agent = EngineAgent {
            sequencer,
            input,
            outputs,
            doorbells,
            staged: Vec::with_capacity(1024),
            shared,
            batch_max,
            background: None,
        };
        (agent, control)
    }

    /// Gives the engine's idle time to `background`: one turn of it after
    /// each pass that found no command (and after the step of the
    /// journal's next segment that such a pass makes, under
    /// [`journal::Preparation::Steps`]), so a command waits at most one
    /// such turn. The background agent must keep its turns short (a few
    /// microseconds: the snapshot agent applies a bounded number of records
    /// and hands anything proportional to its state to threads of its
    /// own), must not consume the engine's output rings (the engine waits
    /// for their consumers) and never makes the engine wait for it: a
    /// spinning engine gives it the core's idle cycles, and a backlog of
    /// commands gives it nothing until the backlog is gone. When it
    /// finishes it is closed and dropped; when it fails, too, and the
    /// failure is kept ([`EngineControl::background_failure`]) while the
    /// engine goes on.
    pub fn with_background(mut self, background: Box<dyn Agent + Send>) -> EngineAgent {
        self.background = Some(background);
        self
    }

    /// One turn of the background agent; its work.
    fn background_turn(&mut self) -> usize {
        let Some(background) = self.background.as_mut() else {
            return 0;
        };
        match background.do_work() {
            Ok(work) => work,
            Err(ended) => {
                background.on_close();
                self.background = None;
                self.shared.background_ended(ended);
                0
            }
        }
    }

    /// Gives the sequencer back (after the agent's runner ended).
    pub fn into_sequencer(self) -> Sequencer {
        self.sequencer
    }

    /// Journals, applies and publishes up to `batch_max` commands; `Err`
    /// with the journal's reason if it refused one (the rest of the batch
    /// is dropped).
    fn batch(&mut self) -> Result<usize, String> {
        // Read once per batch, and only when there is one: an idle pass
        // reads no clock.
        let mut batch_timestamp_ns = None;
        let mut failed = None;
        let Self {
            sequencer,
            input,
            outputs,
            doorbells,
            staged,
            shared,
            batch_max,
            background: _,
        } = self;
        let taken = input.drain(*batch_max, |request| {
            if failed.is_some() {
                // The journal refused a command of this batch: the rest
                // is dropped unjournaled and unanswered (nothing of it
                // was acknowledged) and the agent fails below.
                return;
            }
            staged.clear();
            let timestamp_ns = *batch_timestamp_ns.get_or_insert_with(now_ns);
            match sequencer.submit_with_origin(
                timestamp_ns,
                &request.command,
                request.origin.as_bytes(),
                staged,
            ) {
                Ok((header, status)) => {
                    publish(outputs, &request, header, status, staged, shared, doorbells)
                }
                Err(error) => failed = Some(error.to_string()),
            }
        });
        match failed {
            Some(reason) => Err(reason),
            None => Ok(taken),
        }
    }

    fn ring_doorbells(&self) {
        for doorbell in &self.doorbells {
            doorbell.ring_if_sleeping();
        }
    }
}

/// Pushes one command's outcome (its header output, then its events) to
/// every output ring.
fn publish(
    outputs: &mut [Producer<Output>],
    request: &Request,
    header: CommandHeader,
    status: Status,
    staged: &[Event],
    shared: &EngineShared,
    doorbells: &[Arc<Doorbell>],
) {
    let events = u32::try_from(staged.len()).unwrap_or(u32::MAX);
    for output in outputs.iter_mut() {
        let command = Output::Command {
            header,
            command: request.command,
            origin: request.origin,
            status,
            events,
        };
        push(output, command, shared, doorbells);
        for event in staged {
            push(output, Output::Event(*event), shared, doorbells);
        }
    }
}

impl Agent for EngineAgent {
    fn role(&self) -> &str {
        "engine"
    }

    fn on_start(&mut self) -> Result<(), AgentError> {
        if let Some(background) = self.background.as_mut()
            && let Err(ended) = background.on_start()
        {
            self.background = None;
            self.shared.background_ended(ended);
        }
        Ok(())
    }

    fn do_work(&mut self) -> Result<usize, AgentError> {
        match self.batch() {
            Ok(0) => {
                if self.shared.stop.load(Ordering::Acquire) {
                    return Err(AgentError::Finished);
                }
                // The journal's next segment first: it has a deadline (the
                // roll-over), the background agent none.
                let prepared = usize::from(self.sequencer.prepare_step());
                Ok(prepared + self.background_turn())
            }
            Ok(taken) => {
                self.ring_doorbells();
                self.shared
                    .commands
                    .fetch_add(taken as u64, Ordering::Relaxed);
                self.shared.batches.fetch_add(1, Ordering::Relaxed);
                Ok(taken)
            }
            Err(reason) => {
                for output in &mut self.outputs {
                    push(output, Output::Failed, &self.shared, &self.doorbells);
                }
                self.ring_doorbells();
                let failure =
                    format!("the journal refused a command ({reason}); the engine has stopped");
                *self
                    .shared
                    .failure
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(failure.clone());
                Err(AgentError::Failed(std::io::Error::other(failure)))
            }
        }
    }

    fn prepare_sleep(&mut self) -> bool {
        !self.input.is_empty() || self.shared.stop.load(Ordering::Acquire)
    }
}

/// Pushes to a ring, waiting for its consumer while it is full (a sleeping
/// consumer is woken first). Gives up (dropping the item, and every later
/// one) only when the loop is being stopped and the consumer has stopped
/// draining.
#[inline]
fn push(
    output: &mut Producer<Output>,
    item: Output,
    shared: &EngineShared,
    doorbells: &[Arc<Doorbell>],
) {
    if shared.abandoned.load(Ordering::Relaxed) {
        return;
    }
    let mut item = item;
    let mut spins = 0u64;
    loop {
        match output.try_push(item) {
            Ok(()) => return,
            Err(back) => item = back,
        }
        if spins.is_multiple_of(1024) {
            for doorbell in doorbells {
                doorbell.ring_if_sleeping();
            }
        }
        spins += 1;
        if spins.is_multiple_of(1024) {
            if shared.stop.load(Ordering::Acquire) && spins > 1 << 24 {
                // Stopping, and the consumer has stopped draining: drop
                // this and every later output at once.
                shared.abandoned.store(true, Ordering::Relaxed);
                return;
            }
            thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Pins the calling thread to `core`; `false` if the system refused.
pub fn pin_current_thread(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::AdminCommand;

    fn command(sequence: u64, events: u32) -> Output {
        Output::Command {
            header: CommandHeader {
                sequence,
                timestamp_ns: 0,
            },
            command: Command::Admin(AdminCommand::EndOfDay),
            origin: Origin::NONE,
            status: Status::Applied,
            events,
        }
    }

    fn event(count: u32) -> Output {
        Output::Event(Event::EndOfDay { count })
    }

    fn released_sequence(released: Option<Released>) -> Option<u64> {
        match released? {
            Released::Command { header, .. } => Some(header.sequence),
            Released::Failed => None,
        }
    }

    #[test]
    fn pending_outputs_release_whole_durable_commands_in_order() {
        let mut pending = PendingOutputs::new();
        let mut events = Vec::new();
        assert_eq!(pending.pop_durable(u64::MAX, &mut events), None);
        pending.push(command(1, 2));
        pending.push(event(10));
        // Incomplete: its second event has not come.
        assert_eq!(pending.pop_durable(u64::MAX, &mut events), None);
        pending.push(event(11));
        pending.push(command(2, 0));
        pending.push(command(3, 1));
        pending.push(event(30));
        // Complete but not durable.
        assert_eq!(pending.pop_durable(0, &mut events), None);
        assert_eq!(pending.len(), 6);
        assert_eq!(
            released_sequence(pending.pop_durable(2, &mut events)),
            Some(1)
        );
        assert_eq!(
            events,
            [Event::EndOfDay { count: 10 }, Event::EndOfDay { count: 11 }]
        );
        assert_eq!(
            released_sequence(pending.pop_durable(2, &mut events)),
            Some(2)
        );
        assert!(events.is_empty());
        // Sequence 3 waits for the disk.
        assert_eq!(pending.pop_durable(2, &mut events), None);
        assert_eq!(
            released_sequence(pending.pop_durable(3, &mut events)),
            Some(3)
        );
        assert_eq!(events, [Event::EndOfDay { count: 30 }]);
        pending.push(Output::Failed);
        assert_eq!(pending.pop_durable(0, &mut events), Some(Released::Failed));
        assert!(pending.is_empty());
    }

    #[test]
    fn take_from_moves_at_most_max() {
        let (mut producer, mut consumer) = crate::ring::<Output>(8);
        for sequence in 1..=5 {
            assert!(producer.try_push(command(sequence, 0)).is_ok());
        }
        let mut pending = PendingOutputs::new();
        assert_eq!(pending.take_from(&mut consumer, 3), 3);
        assert_eq!(pending.take_from(&mut consumer, 3), 2);
        assert_eq!(pending.len(), 5);
    }

    #[test]
    fn a_doorbell_rings_only_for_a_sleeping_consumer() {
        let rung = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&rung);
        let bell = Doorbell::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        bell.ring_if_sleeping();
        assert_eq!(rung.load(Ordering::Relaxed), 0);
        bell.sleeping();
        bell.ring_if_sleeping();
        // Once per sleep: the bell resets it.
        bell.ring_if_sleeping();
        assert_eq!(rung.load(Ordering::Relaxed), 1);
        bell.sleeping();
        bell.awake();
        bell.ring_if_sleeping();
        assert_eq!(rung.load(Ordering::Relaxed), 1);
    }
}
