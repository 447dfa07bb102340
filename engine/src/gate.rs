//! The durability gate: engine outputs leave it only once the command that
//! caused them is durable in the journal, so no reply or market-data message
//! leaves before its cause would survive a crash. Both edges (the gateway
//! and market data) consume their output ring through one.
//!
//! While everything taken is durable and nothing waits, a command is
//! released as soon as its last event is taken (no copy through the
//! queue); from the first output that is not durable yet, the rest go to
//! the queue ([`PendingOutputs`]), in order, and are released as the
//! durable position passes them.
//!
//! Two consumers on one thread need not read two rings: the first one's
//! gate hands what it releases to the second through a [`ReleaseTee`]
//! (copies made on that thread, read back from its cache, rather than a
//! second ring written from the engine's core).

use std::sync::{Arc, Mutex, PoisonError};

use journal::DurablePosition;

use crate::command::{Command, CommandHeader};
use crate::event::{Event, Status};
use crate::ring::Consumer;
use crate::runner::{Origin, Output, PendingOutputs, Released};

/// Outputs taken from the ring per call, for a bounded pass.
const OUTPUTS_PER_PASS: usize = 4096;

/// One durable command, with its events.
#[derive(Debug)]
pub enum Release<'a> {
    Command {
        header: CommandHeader,
        command: &'a Command,
        origin: &'a Origin,
        status: Status,
        events: &'a [Event],
    },
    /// The engine stopped: the journal refused a command.
    Failed,
}

/// A command taken from the output ring, waiting for the rest of its
/// events.
#[derive(Debug)]
struct Assembling {
    header: CommandHeader,
    command: Command,
    origin: Origin,
    status: Status,
    events_left: u32,
}

/// One consumer of an engine output ring that releases whole, durable
/// commands, in order (see the module docs).
#[derive(Debug)]
pub struct DurabilityGate {
    output: Consumer<Output>,
    durable: DurablePosition,
    /// Engine outputs waiting for durability.
    pending: PendingOutputs,
    /// A durable command whose events are being taken; they gather in
    /// `events`.
    assembling: Option<Assembling>,
    events: Vec<Event>,
}

impl DurabilityGate {
    pub fn new(output: Consumer<Output>, durable: DurablePosition) -> DurabilityGate {
        DurabilityGate {
            output,
            durable,
            pending: PendingOutputs::new(),
            assembling: None,
            events: Vec::new(),
        }
    }

    /// Whether outputs wait for durability.
    pub fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Outputs queued for durability.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }

    /// Whether the ring is empty (a command being assembled has events
    /// still in it).
    pub fn ring_is_empty(&mut self) -> bool {
        self.output.is_empty()
    }

    /// Whether anything is left: queued, half-assembled or in the ring.
    pub fn is_drained(&mut self) -> bool {
        self.pending.is_empty() && self.assembling.is_none() && self.output.is_empty()
    }

    /// Takes the engine's outputs (a bounded number), releasing each
    /// durable command to `release`. Returns how many outputs were taken.
    pub fn take(&mut self, release: &mut impl FnMut(Release<'_>)) -> usize {
        let mut taken = 0;
        let mut durable = None;
        while self.pending.is_empty() && taken < OUTPUTS_PER_PASS {
            let Some(output) = self.output.try_pop() else {
                return taken;
            };
            taken += 1;
            self.assemble(output, &mut durable);
            if let Some(done) = self.assembling.take_if(|a| a.events_left == 0) {
                release(Release::Command {
                    header: done.header,
                    command: &done.command,
                    origin: &done.origin,
                    status: done.status,
                    events: &self.events,
                });
            }
        }
        if self.assembling.is_some() {
            // A command's events are still coming: they must follow it, so
            // nothing goes to the queue before they are in.
            return taken;
        }
        taken + self.pending.take_from(&mut self.output, OUTPUTS_PER_PASS)
    }

    fn assemble(&mut self, output: Output, durable: &mut Option<u64>) {
        // The command being assembled stays in place (it is large: moving
        // it out and back per event showed in profiles).
        if let Some(assembling) = self.assembling.as_mut() {
            match output {
                Output::Event(event) => {
                    self.events.push(event);
                    assembling.events_left -= 1;
                }
                // The engine publishes a command's events right after it;
                // anything else is a bug there.
                output => debug_assert!(false, "expected an event, got {output:?}"),
            }
            return;
        }
        match output {
            Output::Command {
                header,
                command,
                origin,
                status,
                events,
            } if header.sequence <= *durable.get_or_insert_with(|| self.durable.sequence()) => {
                self.events.clear();
                self.assembling = Some(Assembling {
                    header,
                    command,
                    origin,
                    status,
                    events_left: events,
                });
            }
            // Not durable yet, or the engine's failure: the queue takes over
            // from here.
            output => self.pending.push(output),
        }
    }

    /// Releases every complete, durable command at the front of the queue.
    pub fn release_durable(&mut self, release: &mut impl FnMut(Release<'_>)) {
        if self.pending.is_empty() {
            return;
        }
        let durable = self.durable.sequence();
        while let Some(released) = self.pending.pop_durable(durable, &mut self.events) {
            match released {
                Released::Failed => release(Release::Failed),
                Released::Command {
                    header,
                    command,
                    origin,
                    status,
                } => release(Release::Command {
                    header,
                    command: &command,
                    origin: &origin,
                    status,
                    events: &self.events,
                }),
            }
        }
    }
}

/// One command handed through a [`ReleaseTee`]; its events follow in the
/// batch's event list.
#[derive(Clone, Copy, Debug)]
struct TeeCommand {
    header: CommandHeader,
    command: Command,
    origin: Origin,
    status: Status,
    events: u32,
}

/// Released commands in the order they were released: what a
/// [`ReleaseTee`] carries, and each side's buffer.
#[derive(Debug, Default)]
pub struct TeeBatch {
    commands: Vec<TeeCommand>,
    events: Vec<Event>,
    /// The engine's failure was released after the commands.
    failed: bool,
}

impl TeeBatch {
    /// Adds a copy of `release`.
    pub fn push(&mut self, release: &Release<'_>) {
        match *release {
            Release::Command {
                header,
                command,
                origin,
                status,
                events,
            } => {
                debug_assert!(!self.failed, "nothing follows the engine's failure");
                self.commands.push(TeeCommand {
                    header,
                    command: *command,
                    origin: *origin,
                    status,
                    events: u32::try_from(events.len()).expect("events of one command"),
                });
                self.events.extend_from_slice(events);
            }
            Release::Failed => self.failed = true,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && !self.failed
    }

    /// Releases everything, in order, and empties the batch; returns how
    /// many commands.
    pub fn release_all(&mut self, release: &mut impl FnMut(Release<'_>)) -> usize {
        let mut events = &self.events[..];
        for command in &self.commands {
            let (own, rest) = events.split_at(command.events as usize);
            events = rest;
            release(Release::Command {
                header: command.header,
                command: &command.command,
                origin: &command.origin,
                status: command.status,
                events: own,
            });
        }
        if self.failed {
            release(Release::Failed);
        }
        let released = self.commands.len();
        self.commands.clear();
        self.events.clear();
        self.failed = false;
        released
    }

    /// Moves everything in `other` to the end of this batch.
    fn append(&mut self, other: &mut TeeBatch) {
        if self.is_empty() {
            std::mem::swap(self, other);
            return;
        }
        self.commands.append(&mut other.commands);
        self.events.append(&mut other.events);
        self.failed |= std::mem::take(&mut other.failed);
    }
}

/// Hands the durable commands one consumer's gate released to a second
/// consumer of the same outcomes, in the same order, without a ring of its
/// own: the gateway passes market data what it releases when both run on
/// one thread. The sender [`send`](ReleaseTee::send)s a batch after each of
/// its passes and [`close`](ReleaseTee::close)s when it finishes; the
/// receiver [`receive`](ReleaseTee::receive)s whole batches. Nothing in it
/// waits: the two sides exchange buffers under a lock that each holds for
/// a swap.
#[derive(Clone, Debug, Default)]
pub struct ReleaseTee {
    shared: Arc<Mutex<Tee>>,
}

#[derive(Debug, Default)]
struct Tee {
    batch: TeeBatch,
    closed: bool,
}

impl ReleaseTee {
    pub fn new() -> ReleaseTee {
        ReleaseTee::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tee> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Passes on (and empties) `batch`.
    pub fn send(&self, batch: &mut TeeBatch) {
        if !batch.is_empty() {
            self.lock().batch.append(batch);
        }
    }

    /// Nothing more will be sent.
    pub fn close(&self) {
        self.lock().closed = true;
    }

    /// Takes everything sent so far into `into` (which must be empty);
    /// returns whether the sender has closed (after which nothing more
    /// comes).
    pub fn receive(&self, into: &mut TeeBatch) -> bool {
        debug_assert!(into.is_empty(), "the receiver released its last batch");
        let mut tee = self.lock();
        std::mem::swap(&mut tee.batch, into);
        tee.closed
    }

    /// Whether anything was sent and not received.
    pub fn is_empty(&self) -> bool {
        self.lock().batch.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::AdminCommand;
    use crate::reject::RejectReason;

    fn event(reference: u64) -> Event {
        Event::Rejected {
            account: None,
            reference,
            reason: RejectReason::UnknownAccount,
        }
    }

    /// Command `sequence` with `events` events (references sequence * 10 + i).
    fn push(batch: &mut TeeBatch, sequence: u64, events: u64) {
        let events: Vec<Event> = (0..events).map(|i| event(sequence * 10 + i)).collect();
        let origin = Origin::new(&sequence.to_le_bytes()).unwrap();
        batch.push(&Release::Command {
            header: CommandHeader {
                sequence,
                timestamp_ns: sequence * 1_000,
            },
            command: &Command::Admin(AdminCommand::EndOfDay),
            origin: &origin,
            status: Status::Applied,
            events: &events,
        });
    }

    /// A released command: its sequence, origin and events' references.
    type Seen = (u64, Vec<u8>, Vec<u64>);

    /// What `batch` releases, and whether the failure came last.
    fn released(batch: &mut TeeBatch) -> (Vec<Seen>, bool) {
        let mut commands = Vec::new();
        let mut failed = false;
        let count = batch.release_all(&mut |release| match release {
            Release::Command {
                header,
                origin,
                events,
                ..
            } => {
                assert!(!failed, "nothing after the failure");
                let references = events
                    .iter()
                    .map(|event| match event {
                        Event::Rejected { reference, .. } => *reference,
                        other => panic!("{other:?}"),
                    })
                    .collect();
                commands.push((header.sequence, origin.as_bytes().to_vec(), references));
            }
            Release::Failed => failed = true,
        });
        assert_eq!(count, commands.len());
        assert!(batch.is_empty());
        (commands, failed)
    }

    #[test]
    fn a_tee_hands_over_whole_commands_in_order_then_the_failure() {
        let tee = ReleaseTee::new();
        let receiver = tee.clone();
        let (mut sending, mut receiving) = (TeeBatch::default(), TeeBatch::default());
        push(&mut sending, 1, 2);
        push(&mut sending, 2, 0);
        tee.send(&mut sending);
        assert!(sending.is_empty() && !receiver.is_empty());
        // A second send before the receiver took the first: appended.
        push(&mut sending, 3, 3);
        tee.send(&mut sending);
        assert!(!receiver.receive(&mut receiving), "not closed");
        assert!(receiver.is_empty());
        let (commands, failed) = released(&mut receiving);
        assert!(!failed);
        assert_eq!(
            commands,
            vec![
                (1, 1u64.to_le_bytes().to_vec(), vec![10, 11]),
                (2, 2u64.to_le_bytes().to_vec(), vec![]),
                (3, 3u64.to_le_bytes().to_vec(), vec![30, 31, 32]),
            ]
        );
        // The buffers go round: the receiver's emptied batch takes the
        // next round.
        push(&mut sending, 4, 1);
        sending.push(&Release::Failed);
        tee.send(&mut sending);
        tee.close();
        assert!(receiver.receive(&mut receiving), "closed");
        let (commands, failed) = released(&mut receiving);
        assert_eq!(commands, vec![(4, 4u64.to_le_bytes().to_vec(), vec![40])]);
        assert!(failed);
        // Nothing left, and an empty send changes nothing.
        tee.send(&mut sending);
        assert!(receiver.is_empty());
        assert!(receiver.receive(&mut receiving));
        assert!(receiving.is_empty());
    }
}
