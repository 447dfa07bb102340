//! Market data: the ITCH 5.0 encoder, MoldUDP64 packets over multicast, the
//! re-request server, snapshots, and a subscriber library that rebuilds
//! books (see `docs/design.md`).
//!
//! Built so far: the ITCH 5.0 codec (`itch`) and the MoldUDP64 packet
//! codec (`moldudp64`), sans-I/O. The publisher, re-request server,
//! snapshots and subscriber are the rest of the market-data issue.

#![forbid(unsafe_code)]

pub mod book;
pub mod feed;
pub mod itch;
pub mod log;
pub mod moldudp64;
pub mod publisher;
pub mod server;
pub mod subscriber;
