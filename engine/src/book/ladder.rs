//! One side of an order book as a ladder: an array with one price level per
//! tick of the instrument's price range, each level an intrusive FIFO queue
//! of order nodes, and a [`LevelSet`] of the occupied levels so the best
//! price is found without scanning.
//!
//! The range covers the price band (and every resting order's price); it is
//! allocated when the instrument is created and rebuilt only by an admin
//! command that moves the band outside it.

use super::level_set::LevelSet;
use super::orders::{NIL, OrderNode, Slot};
use crate::instrument::PriceBand;
use crate::types::{Price, Quantity, Side};

/// The orders at one price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Level {
    pub(crate) head: Slot,
    pub(crate) tail: Slot,
    /// Sum of the open quantities of the orders here.
    pub(crate) quantity: u64,
    pub(crate) orders: u32,
}

impl Level {
    const EMPTY: Level = Level {
        head: NIL,
        tail: NIL,
        quantity: 0,
        orders: 0,
    };
}

#[derive(Clone, Debug)]
pub(crate) struct Ladder {
    side: Side,
    /// Price of index 0.
    low: i64,
    tick: i64,
    levels: Vec<Level>,
    occupied: LevelSet,
}

impl Ladder {
    pub(crate) fn new(side: Side, range: PriceBand, tick: Price) -> Ladder {
        let count = usize::try_from(range.levels(tick)).expect("levels checked by the caller");
        Ladder {
            side,
            low: range.low.0,
            tick: tick.0,
            levels: vec![Level::EMPTY; count],
            occupied: LevelSet::new(count),
        }
    }

    /// The prices this ladder can hold.
    pub(crate) fn range(&self) -> PriceBand {
        let top = i64::try_from(self.levels.len() - 1).expect("ladder length fits i64");
        PriceBand {
            low: Price(self.low),
            high: Price(self.low + top * self.tick),
        }
    }

    pub(crate) fn covers(&self, price: Price) -> bool {
        self.range().contains(price)
    }

    #[inline]
    pub(crate) fn index(&self, price: Price) -> usize {
        debug_assert!(self.covers(price) && price.0 % self.tick == 0);
        usize::try_from((price.0 - self.low) / self.tick).expect("price within the ladder")
    }

    #[inline]
    pub(crate) fn price(&self, index: usize) -> Price {
        let offset = i64::try_from(index).expect("ladder index fits i64");
        Price(self.low + offset * self.tick)
    }

    #[inline]
    pub(crate) fn level(&self, index: usize) -> &Level {
        &self.levels[index]
    }

    /// The index of the best occupied level: the highest bid, the lowest ask.
    #[inline]
    pub(crate) fn best(&self) -> Option<usize> {
        match self.side {
            Side::Buy => self.occupied.last(),
            Side::Sell => self.occupied.first(),
        }
    }

    /// The next occupied level after `index`, going away from the best.
    #[inline]
    pub(crate) fn next_worse(&self, index: usize) -> Option<usize> {
        match self.side {
            Side::Buy => self.occupied.previous_before(index),
            Side::Sell => self.occupied.next_after(index),
        }
    }

    /// The best price and the quantity there.
    pub(crate) fn best_price(&self) -> Option<(Price, Quantity)> {
        self.best()
            .map(|index| (self.price(index), Quantity(self.levels[index].quantity)))
    }

    /// Append the node at `slot` (whose price and quantity are set) to the
    /// back of its level.
    pub(crate) fn push_back(&mut self, nodes: &mut [OrderNode], slot: Slot) {
        let node = nodes[slot as usize];
        debug_assert!(node.side == self.side && node.remaining.0 > 0);
        let index = self.index(node.price);
        let level = &mut self.levels[index];
        let tail = level.tail;
        nodes[slot as usize].previous = tail;
        nodes[slot as usize].next = NIL;
        if tail == NIL {
            level.head = slot;
            self.occupied.insert(index);
        } else {
            nodes[tail as usize].next = slot;
        }
        level.tail = slot;
        level.quantity += node.remaining.0;
        level.orders += 1;
    }

    /// Unlink the node at `slot` from its level, removing its open quantity.
    pub(crate) fn unlink(&mut self, nodes: &mut [OrderNode], slot: Slot) {
        let node = nodes[slot as usize];
        let index = self.index(node.price);
        let level = &mut self.levels[index];
        if node.previous == NIL {
            level.head = node.next;
        } else {
            nodes[node.previous as usize].next = node.next;
        }
        if node.next == NIL {
            level.tail = node.previous;
        } else {
            nodes[node.next as usize].previous = node.previous;
        }
        level.quantity -= node.remaining.0;
        level.orders -= 1;
        if level.orders == 0 {
            debug_assert!(level.head == NIL && level.quantity == 0);
            self.occupied.remove(index);
        }
    }

    /// Take `quantity` off the level at `price` (an order there was reduced in
    /// place).
    pub(crate) fn reduce(&mut self, price: Price, quantity: Quantity) {
        let index = self.index(price);
        let level = &mut self.levels[index];
        debug_assert!(level.quantity > quantity.0, "reduce leaves the order open");
        level.quantity -= quantity.0;
    }

    /// This ladder moved to `range` (which covers every occupied level).
    pub(crate) fn rebuilt(&self, range: PriceBand) -> Ladder {
        let mut ladder = Ladder::new(self.side, range, Price(self.tick));
        let mut index = self.occupied.first();
        while let Some(old) = index {
            let new = ladder.index(self.price(old));
            ladder.levels[new] = self.levels[old];
            ladder.occupied.insert(new);
            index = self.occupied.next_after(old);
        }
        ladder
    }

    /// Occupied levels from the best to the worst.
    pub(crate) fn occupied_levels(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(self.best(), move |&index| self.next_worse(index))
    }

    /// The lowest and the highest occupied price.
    pub(crate) fn occupied_range(&self) -> Option<(Price, Price)> {
        let first = self.occupied.first()?;
        let last = self.occupied.last()?;
        Some((self.price(first), self.price(last)))
    }
}

/// Both sides of one instrument's book.
#[derive(Clone, Debug)]
pub(crate) struct Book {
    pub(crate) bids: Ladder,
    pub(crate) asks: Ladder,
}

impl Book {
    pub(crate) fn new(range: PriceBand, tick: Price) -> Book {
        Book {
            bids: Ladder::new(Side::Buy, range, tick),
            asks: Ladder::new(Side::Sell, range, tick),
        }
    }

    #[inline]
    pub(crate) fn side(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    pub(crate) fn side_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The range both ladders cover.
    pub(crate) fn range(&self) -> PriceBand {
        self.bids.range()
    }

    /// Both ladders moved to `range`.
    pub(crate) fn rebuilt(&self, range: PriceBand) -> Book {
        Book {
            bids: self.bids.rebuilt(range),
            asks: self.asks.rebuilt(range),
        }
    }

    /// The lowest and highest price of any resting order.
    pub(crate) fn occupied_range(&self) -> Option<(Price, Price)> {
        match (self.bids.occupied_range(), self.asks.occupied_range()) {
            (None, None) => None,
            (Some(range), None) | (None, Some(range)) => Some(range),
            (Some(bids), Some(asks)) => Some((bids.0.min(asks.0), bids.1.max(asks.1))),
        }
    }
}
