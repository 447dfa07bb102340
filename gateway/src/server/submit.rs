//! The submit path: commands from sessions into the engine's input ring,
//! with back-pressure. A full ring keeps the one command it refused
//! (`stalled`) and the loop stops reading sockets until the ring takes it;
//! past [`IN_FLIGHT_MAX`] commands without a durable answer the loop stops
//! reading too, which bounds the outputs waiting for a stalled disk by
//! pushing back on the clients' TCP connections.

use engine::runner::{Origin, Request, Waker};
use engine::{Command, Producer};

use super::origin::OriginRecord;

/// Commands sent to the engine and not yet answered past which the loop
/// stops reading sockets.
pub(super) const IN_FLIGHT_MAX: u64 = 1 << 18;

#[derive(Debug)]
pub(super) struct SubmitPath {
    input: Producer<Request>,
    waker: Waker,
    /// A request the full input ring did not take yet.
    stalled: Option<Request>,
    /// Commands from sessions not yet released by the durability gate.
    in_flight: u64,
    /// Whether the engine must be woken at the end of the pass.
    pushed: bool,
}

impl SubmitPath {
    pub(super) fn new(input: Producer<Request>, waker: Waker) -> SubmitPath {
        SubmitPath {
            input,
            waker,
            stalled: None,
            in_flight: 0,
            pushed: false,
        }
    }

    /// Whether the loop may read sockets (the ring took everything and
    /// not too much is in flight).
    pub(super) fn accepts(&self) -> bool {
        self.stalled.is_none() && self.in_flight < IN_FLIGHT_MAX
    }

    pub(super) fn is_stalled(&self) -> bool {
        self.stalled.is_some()
    }

    pub(super) fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Offers the stalled request again; `false` while the ring is still
    /// full.
    pub(super) fn retry_stalled(&mut self) -> bool {
        let Some(request) = self.stalled.take() else {
            return true;
        };
        match self.input.try_push(request) {
            Ok(()) => {
                self.pushed = true;
                true
            }
            Err(request) => {
                self.stalled = Some(request);
                false
            }
        }
    }

    /// Sends one command from a session (kept as stalled if the ring is
    /// full: it goes first when the ring has room).
    pub(super) fn submit(&mut self, command: Command, origin: &OriginRecord) {
        debug_assert!(
            self.stalled.is_none(),
            "the loop does not read while stalled"
        );
        // Invariant: an origin record (36 bytes) is within the engine's
        // origin limit (40).
        let origin = Origin::new(&origin.encode()).expect("an origin record fits");
        if let Err(request) = self.input.try_push(Request { command, origin }) {
            self.stalled = Some(request);
        }
        self.in_flight += 1;
        self.pushed = true;
    }

    /// A command from a session was released by the durability gate.
    pub(super) fn answered(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Wakes the engine if anything was pushed since the last call.
    pub(super) fn wake_engine(&mut self) {
        if std::mem::take(&mut self.pushed) {
            self.waker.wake();
        }
    }
}
