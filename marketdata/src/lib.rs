//! Market data: the ITCH 5.0 encoder, MoldUDP64 packets over multicast, the
//! re-request server, snapshots, and a subscriber library that rebuilds
//! books (see `../shared/DESIGN.md`).
//!
//! Empty until the market-data issue: the crate exists so that the
//! workspace has its final shape.

#![forbid(unsafe_code)]
