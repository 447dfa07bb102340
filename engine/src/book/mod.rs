//! Order books: the order store (a slab of resting orders with its indexes)
//! and per instrument two price ladders of intrusive FIFO levels.

mod ladder;
mod level_set;
mod orders;

pub(crate) use ladder::{Book, Ladder};
pub(crate) use orders::{NIL, OrderNode, OrderStore, Slot};
