//! Test support for the exchange core: a naive reference model of the
//! engine, written from `docs/engine.md` independently of the engine's code,
//! and a seeded generator of command streams. The property tests in
//! `tests/engine_vs_reference.rs` feed both the same streams and require the
//! same status and events for every command and the same state after it.

#![forbid(unsafe_code)]

mod books;
mod environment;
mod generator;
mod reference;

pub use books::{compare_books, itch_price, representable};
pub use environment::{
    environment_number, environment_seed, run_seeds, scratch_dir, small_journal_options,
    stream_length,
};
pub use generator::{CommandGenerator, SimulationRng};
pub use reference::{ModelSnapshot, ReferenceModel};
