//! Order entry and funding at the edge: SoupBinTCP 4.0 sessions, the OUCH
//! 5.0 codec, the project's funding messages, logins and rate limits, the
//! mio server and a client library (see `../shared/DESIGN.md`).
//!
//! Built so far: the SoupBinTCP 4.0 and OUCH 5.0 codecs (sans-I/O) and the
//! login table (`auth`). The sessions, the server and the client come with
//! the rest of the server issue.

#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod funding;
pub mod ouch;
pub mod server;
pub mod soupbin;
