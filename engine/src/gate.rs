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
