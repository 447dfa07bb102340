//! Order entry and funding at the edge: SoupBinTCP 4.0 sessions, the OUCH
//! 5.0 codec, the project's funding messages, logins and rate limits, the
//! mio server and a client library (see `docs/design.md`).
//!
//! - `soupbin`, `ouch`, `funding`: the codecs (sans-I/O).
//! - `auth`: the login table (Argon2id password hashes).
//! - `server`: the mio event loop of both ports, the sessions and the
//!   translation between OUCH / funding messages and engine commands
//!   (`docs/server.md`, `docs/protocol.md`).
//! - `client`: a blocking client library (SoupBinTCP, OUCH, funding).

#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod funding;
pub mod ouch;
pub mod server;
