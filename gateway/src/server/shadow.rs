//! The gateway's outbound state without its streams' bytes: what the
//! snapshot agent keeps beside its shadow engine so that a restart resumes
//! the gateway from a snapshot instead of replaying the journal from
//! sequence 1.
//!
//! The outbound proxy is a pure function of the applied commands, so a
//! shadow fed the same commands holds, at every sequence, the directory the
//! live gateway had there and the length of each of its streams. Those are
//! [`GatewayState`]; with them and the stores on disk (which hold the
//! streams' messages, and more), [`SessionStreams::resume`] and
//! [`Directory::resume`] put a starting gateway at that sequence.

use super::directory::{Directory, DirectoryLogin, DirectoryState};
use super::outbound::{AppliedCommand, OutboundProxy};
use super::streams::{StreamCounts, StreamError, StreamsState};

/// The gateway's state at a sequence, as an edges' snapshot records it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GatewayState {
    pub directory: DirectoryState,
    pub streams: StreamsState,
}

/// Follows the applied commands as the live gateway's outbound proxy does,
/// counting the streams' messages instead of keeping them.
#[derive(Debug)]
pub struct GatewayShadow {
    directory: Directory,
    streams: StreamCounts,
    proxy: OutboundProxy,
}

impl GatewayShadow {
    /// The shadow of a gateway before the first command.
    ///
    /// # Errors
    /// As [`Directory::new`].
    pub fn new(logins: &[DirectoryLogin]) -> Result<GatewayShadow, String> {
        Ok(GatewayShadow {
            directory: Directory::new(logins)?,
            streams: StreamCounts::new(),
            proxy: OutboundProxy::new(),
        })
    }

    /// The shadow of a gateway in `state` (recorded with these logins).
    ///
    /// # Errors
    /// As [`Directory::new`].
    pub fn resume(logins: &[DirectoryLogin], state: GatewayState) -> Result<GatewayShadow, String> {
        let mut shadow = GatewayShadow::new(logins)?;
        shadow.streams = StreamCounts::from_state(&state.streams);
        shadow.directory.resume(state.directory);
        Ok(shadow)
    }

    /// One applied command.
    pub fn applied(&mut self, applied: &AppliedCommand<'_>) -> Result<(), StreamError> {
        let routed = self
            .proxy
            .applied(&mut self.directory, &mut self.streams, applied)?;
        if routed.day_ended {
            self.streams.clear();
        }
        Ok(())
    }

    /// The state after the last command.
    pub fn state(&self) -> GatewayState {
        GatewayState {
            directory: self.directory.state(),
            streams: self.streams.state(),
        }
    }
}
