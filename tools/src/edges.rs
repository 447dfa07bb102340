//! The edges' snapshots: what the gateway and market data derived from the
//! commands through a sequence, so that `serve` restarts from a snapshot,
//! the edges included, instead of replaying the journal from sequence 1.
//!
//! The snapshot agent follows the journal with a shadow engine and, beside
//! it, an [`EdgesShadow`]: the gateway's outbound proxy counting its
//! streams' messages ([`GatewayShadow`]) and a publisher counting the
//! feed's ([`Publisher::counting`]). At every snapshot it writes an
//! [`EdgesState`] (postcard, in the snapshot file format, as
//! `edges-<sequence>.snapshot`) just before the engine's snapshot of the
//! same sequence. At start-up `serve` takes the newest engine snapshot
//! that has one, resumes the gateway's directory and streams and the
//! publisher from it on the stores on disk (which hold the streams'
//! messages and the day's ITCH messages), and replays only the commands
//! after it through the edges. A store that does not hold its stream as of
//! that sequence (lost with the machine before the kernel wrote it, or
//! removed) makes `serve` try an older snapshot, and in the end replay from
//! sequence 1.

use std::path::Path;

use crate::config::Config;
use engine::{Applied, ShadowEdges};
use gateway::server::{AppliedCommand, DirectoryLogin, GatewayShadow, GatewayState};
use journal::SnapshotStore;
use marketdata::publisher::{Publisher, PublisherState};

/// The format of [`EdgesState`]; another is refused (the start replays
/// from an older snapshot, or from sequence 1).
pub const EDGES_VERSION: u32 = 1;

/// The edges at a sequence, as an edges' snapshot holds them.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EdgesState {
    pub version: u32,
    /// The last command the state includes.
    pub sequence: u64,
    /// The timestamp of the journal's first command (the session names'
    /// `YYMMDD`), once there is one.
    pub first_timestamp_ns: Option<u64>,
    /// The login table's names in order: the streams are kept by index, so
    /// a start with another table does not resume from this state.
    pub logins: Vec<String>,
    pub gateway: GatewayState,
    /// `None` when market data was disabled.
    pub marketdata: Option<PublisherState>,
}

/// The edges as the snapshot agent follows them.
#[derive(Debug)]
pub struct EdgesShadow {
    sequence: u64,
    logins: Vec<String>,
    first_timestamp_ns: Option<u64>,
    gateway: GatewayShadow,
    publisher: Option<Publisher>,
}

impl EdgesShadow {
    /// The edges before the first command; `md_payload_max` is the
    /// publisher's packet size when market data is enabled.
    pub fn new(
        logins: &[DirectoryLogin],
        md_payload_max: Option<usize>,
    ) -> anyhow::Result<EdgesShadow> {
        Ok(EdgesShadow {
            sequence: 0,
            logins: logins.iter().map(|login| login.name.clone()).collect(),
            first_timestamp_ns: None,
            gateway: GatewayShadow::new(logins).map_err(anyhow::Error::msg)?,
            publisher: md_payload_max
                .map(Publisher::counting)
                .transpose()
                .map_err(|error| anyhow::anyhow!("marketdata.payload_max: {error}"))?,
        })
    }

    /// The edges in `state`.
    pub fn resume(
        logins: &[DirectoryLogin],
        md_payload_max: Option<usize>,
        state: EdgesState,
    ) -> anyhow::Result<EdgesShadow> {
        let publisher = match (md_payload_max, state.marketdata) {
            (Some(payload_max), Some(md)) => Some(
                Publisher::counting_from(payload_max, md)
                    .map_err(|error| anyhow::anyhow!("marketdata.payload_max: {error}"))?,
            ),
            (None, _) => None,
            (Some(_), None) => {
                anyhow::bail!("the edges' snapshot was taken with market data disabled")
            }
        };
        Ok(EdgesShadow {
            sequence: state.sequence,
            logins: state.logins,
            first_timestamp_ns: state.first_timestamp_ns,
            gateway: GatewayShadow::resume(logins, state.gateway).map_err(anyhow::Error::msg)?,
            publisher,
        })
    }

    /// The state after the last command applied.
    pub fn state(&self) -> EdgesState {
        EdgesState {
            version: EDGES_VERSION,
            sequence: self.sequence,
            first_timestamp_ns: self.first_timestamp_ns,
            logins: self.logins.clone(),
            gateway: self.gateway.state(),
            marketdata: self.publisher.as_ref().map(Publisher::state),
        }
    }
}

impl ShadowEdges for EdgesShadow {
    fn applied(&mut self, applied: &Applied<'_>) -> Result<(), String> {
        self.first_timestamp_ns
            .get_or_insert(applied.header.timestamp_ns);
        self.gateway
            .applied(&AppliedCommand {
                header: applied.header,
                command: applied.command,
                origin: applied.origin,
                status: applied.status,
                events: applied.events,
            })
            .map_err(|error| error.to_string())?;
        if let Some(publisher) = self.publisher.as_mut() {
            publisher.applied(
                applied.header,
                applied.command,
                applied.events,
                &mut |_packet| {},
            );
        }
        self.sequence = applied.header.sequence;
        Ok(())
    }

    fn snapshot(&mut self) -> Vec<u8> {
        postcard::to_allocvec(&self.state()).expect("the edges' state serialises")
    }
}

/// The configuration's logins as the gateway's directory knows them.
pub fn directory_logins(config: &Config) -> Vec<DirectoryLogin> {
    config
        .logins
        .iter()
        .map(|login| DirectoryLogin {
            name: login.name.clone(),
            account: login.account.map(engine::AccountId),
            trades: login
                .entitlements
                .contains(&crate::config::EntitlementName::Trade),
            self_trade: login.self_trade.into(),
        })
        .collect()
}

/// The edges' snapshot at `sequence` in the journal directory `dir`:
/// `Ok(None)` if there is none, `Err` if it is damaged or of another
/// version.
pub fn load(dir: &Path, sequence: u64) -> anyhow::Result<Option<EdgesState>> {
    let Some((info, body)) = SnapshotStore::edges(dir).load_at(sequence)? else {
        return Ok(None);
    };
    let state: EdgesState = postcard::from_bytes(&body)
        .map_err(|error| anyhow::anyhow!("{}: cannot be read: {error}", info.path.display()))?;
    anyhow::ensure!(
        state.version == EDGES_VERSION,
        "{}: edges' state version {}, this build reads {EDGES_VERSION}",
        info.path.display(),
        state.version
    );
    anyhow::ensure!(
        state.sequence == sequence,
        "{}: the state is at sequence {}",
        info.path.display(),
        state.sequence
    );
    Ok(Some(state))
}
