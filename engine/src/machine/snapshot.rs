//! Snapshots of the whole state.
