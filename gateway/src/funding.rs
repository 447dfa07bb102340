//! The project's funding messages (see `docs/protocol.md`).
