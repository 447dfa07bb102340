//! The library half of the `exchange` binary: configuration and start-up,
//! shared with the integration tests.

#![forbid(unsafe_code)]

pub mod client_cmd;
pub mod config;
pub mod edges;
pub mod journal_tool;
pub mod serve;
mod startup;
pub mod threads;
