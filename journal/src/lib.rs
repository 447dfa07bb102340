//! The write-ahead journal: segmented, preallocated, memory-mapped,
//! checksummed records; tailing readers; snapshots; recovery that truncates
//! only a torn tail (see `../shared/DESIGN.md`).
//!
//! Empty until the journal issue: the crate exists so that the workspace has
//! its final shape.
