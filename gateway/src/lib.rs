//! Order entry and funding at the edge: SoupBinTCP 4.0 sessions, the OUCH
//! 5.0 codec, the project's funding messages, logins and rate limits, the
//! mio server and a client library (see `../shared/DESIGN.md`).
//!
//! Empty until the server issue: the crate exists so that the workspace has
//! its final shape and its dependency order (`gateway` → `engine`).

#![forbid(unsafe_code)]
