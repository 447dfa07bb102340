//! Subscriber-side order books rebuilt from an ITCH 5.0 feed: sans-I/O and
//! deterministic.
//!
//! [`Books`] holds every instrument's full-depth (L3) book keyed by stock
//! locate, the index of open orders by reference number, and the directory
//! (locate → symbol from Stock Directory 'R', trading state from Stock
//! Trading Action 'H'). Feed it decoded [`itch::Message`]s in sequence order
//! with [`Books::apply`], or with [`Books::apply_with_events`] to also learn
//! what changed ([`BookEvent`]s pushed into a caller-owned `Vec`, so a hot
//! loop that reuses its buffer allocates nothing per message).
//!
//! # Message semantics
//!
//! | type | effect |
//! |------|--------|
//! | 'A', 'F' | add an order (reference → locate, side, price, shares) at the back of its price level |
//! | 'E' | execute shares from the order (removed at 0); last trade at the order's price |
//! | 'C' | execute shares from the order (removed at 0); last trade at the message's price when Printable is 'Y' |
//! | 'X' | cancel shares from the order (removed at 0) |
//! | 'D' | delete the order |
//! | 'U' | remove the original reference; add the new reference with the new price and shares, same locate and side, at the back of its level (priority lost) |
//! | 'P' | non-displayed trade: last trade only, no book change |
//! | 'B' | no book change (a [`BookEvent::TradeBroken`] is reported) |
//! | 'R' | directory: locate → symbol (creates the locate's empty book) |
//! | 'H' | directory: trading state of the locate |
//! | 'S' | nothing |
//!
//! # Errors
//!
//! A message that does not fit the book — an unknown reference, a
//! duplicate reference on an add or replace, more shares than the order has
//! open, a zero share count, or an order message whose header stock locate
//! is not the order's — is a [`BookError`]. The message is then **not
//! applied at all**: every check runs before the first mutation, so the books
//! stay internally consistent. They no longer mirror the publisher's,
//! though (a message was lost or the feed is out of order): the subscriber
//! should [`Books::clear`] them and resync from a snapshot.
//!
//! # Data structures
//!
//! - Each side of a [`Book`] is a `BTreeMap<u32 price, Level>`: best bid is
//!   the last key, best ask the first; adding or removing a level is
//!   O(log levels).
//! - The orders of one book live in a slab (`Vec` of nodes plus a free list
//!   of slots). Each price level is an intrusive doubly-linked list through
//!   that slab (head, tail, and each node's prev/next slot) with the
//!   level's running share total and order count. Appending at the back and
//!   unlinking any order — front or middle — are O(1), so an execution, a
//!   cancel or a delete costs one hash lookup plus one O(log levels) level
//!   lookup; nothing is scanned and there are no tombstones to compact (a
//!   `VecDeque` with lazy removal would make middle cancels cheap only by
//!   leaving dead entries behind that every L3 walk and every front
//!   execution must skip).
//! - `Books` indexes open orders in an `FxHashMap<u64 reference, (locate,
//!   slot)>`; books themselves sit in a `Vec` indexed by locate (locates are
//!   small dense integers), so finding a book is an array index.
//!
//! Iteration orders are fixed (price order, then time priority; the hash map
//! is never iterated for output), so the same feed gives the same results.

use core::fmt;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::itch::{self, Code, Message, Price, Side, Stock};

/// Slab slot meaning "no order" in the intrusive lists.
const NIL: u32 = u32::MAX;

/// Printable flag of an Order Executed With Price message that counts as a
/// print (last trade, volume).
const PRINTABLE_YES: u8 = b'Y';

/// Why a message could not be applied. The books are unchanged and
/// consistent, but out of step with the publisher: resync from a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookError {
    /// An add (or the new reference of a replace) reuses a reference number
    /// that is still open.
    DuplicateReference {
        /// The reference number.
        reference: u64,
    },
    /// An execute, cancel, delete or replace names no open order.
    UnknownReference {
        /// The reference number.
        reference: u64,
    },
    /// An execute or cancel takes more shares than the order has open.
    TooManyShares {
        /// The reference number.
        reference: u64,
        /// Shares the order has open.
        open: u32,
        /// Shares the message takes.
        requested: u32,
    },
    /// An add, replace, execute or cancel of zero shares.
    ZeroShares {
        /// The reference number (the new one for a replace).
        reference: u64,
    },
    /// An order message's header stock locate is not the order's.
    LocateMismatch {
        /// The reference number.
        reference: u64,
        /// The locate the order was added under.
        expected: u16,
        /// The locate in the message header.
        actual: u16,
    },
}

impl fmt::Display for BookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::DuplicateReference { reference } => {
                write!(f, "order reference {reference} is already open")
            }
            Self::UnknownReference { reference } => {
                write!(f, "order reference {reference} is not open")
            }
            Self::TooManyShares {
                reference,
                open,
                requested,
            } => write!(
                f,
                "order reference {reference} has {open} shares open, message takes {requested}"
            ),
            Self::ZeroShares { reference } => {
                write!(f, "order reference {reference}: zero shares")
            }
            Self::LocateMismatch {
                reference,
                expected,
                actual,
            } => write!(
                f,
                "order reference {reference} is on stock locate {expected}, message says {actual}"
            ),
        }
    }
}

impl std::error::Error for BookError {}

/// What a message changed, pushed by [`Books::apply_with_events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookEvent {
    /// The best bid or best ask (price or total shares) of the locate's book
    /// changed.
    TopOfBookChanged {
        /// Stock locate.
        locate: u16,
    },
    /// A printed trade: an execution ('E', printable 'C') or a non-displayed
    /// trade ('P').
    Trade {
        /// Stock locate.
        locate: u16,
        /// Trade price.
        price: Price,
        /// Shares traded.
        shares: u32,
    },
    /// A Broken Trade 'B': the trade with this match number was broken.
    TradeBroken {
        /// Stock locate (from the header).
        locate: u16,
        /// Match number of the broken trade.
        match_number: u64,
    },
    /// A Stock Directory 'R' named the locate's symbol.
    Directory {
        /// Stock locate.
        locate: u16,
        /// Symbol.
        stock: Stock,
    },
    /// A Stock Trading Action 'H' set the locate's trading state.
    TradingState {
        /// Stock locate.
        locate: u16,
        /// Trading state ('H' halted, 'P' paused, 'Q' quotation only, 'T'
        /// trading).
        state: Code,
    },
}

/// An open order, as [`Books::order`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderInfo {
    /// Order reference number.
    pub reference: u64,
    /// Stock locate of its book.
    pub locate: u16,
    /// Side.
    pub side: Side,
    /// Limit price.
    pub price: Price,
    /// Shares still open.
    pub shares: u32,
}

/// One order in a book's slab, linked into its level's FIFO list.
#[derive(Debug, Clone, Copy)]
struct Node {
    reference: u64,
    shares: u32,
    price: u32,
    side: Side,
    prev: u32,
    next: u32,
}

/// One price level: a FIFO (time priority) list of orders through the slab,
/// with the level's running totals.
#[derive(Debug, Clone, Copy)]
struct Level {
    head: u32,
    tail: u32,
    shares: u64,
    orders: u32,
}

/// One instrument's full-depth book.
#[derive(Debug, Clone, Default)]
pub struct Book {
    bids: BTreeMap<u32, Level>,
    asks: BTreeMap<u32, Level>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    last_trade: Option<(Price, u32)>,
}

impl Book {
    /// Best bid: highest price and its total shares.
    pub fn best_bid(&self) -> Option<(Price, u64)> {
        self.bids
            .last_key_value()
            .map(|(&price, level)| (Price(price), level.shares))
    }

    /// Best ask: lowest price and its total shares.
    pub fn best_ask(&self) -> Option<(Price, u64)> {
        self.asks
            .first_key_value()
            .map(|(&price, level)| (Price(price), level.shares))
    }

    /// L2: up to `levels` price levels of `side`, best first, each as
    /// (price, total shares, order count).
    pub fn depth(&self, side: Side, levels: usize) -> Vec<(Price, u64, u32)> {
        let row = |(&price, level): (&u32, &Level)| (Price(price), level.shares, level.orders);
        match side {
            Side::Buy => self.bids.iter().rev().take(levels).map(row).collect(),
            Side::Sell => self.asks.iter().take(levels).map(row).collect(),
        }
    }

    /// L3: the orders resting at `price` on `side` in time priority, each as
    /// (reference number, open shares). Empty if there is no such level.
    pub fn orders_at(&self, side: Side, price: Price) -> impl Iterator<Item = (u64, u32)> + '_ {
        let head = self
            .side(side)
            .get(&price.0)
            .map_or(NIL, |level| level.head);
        LevelOrders {
            nodes: &self.nodes,
            next: head,
        }
    }

    /// Last printed trade: (price, shares).
    pub fn last_trade(&self) -> Option<(Price, u32)> {
        self.last_trade
    }

    /// Number of price levels on `side`.
    pub fn level_count(&self, side: Side) -> usize {
        self.side(side).len()
    }

    /// Number of open orders in this book.
    pub fn order_count(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// Whether the book has no open orders.
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }

    fn side(&self, side: Side) -> &BTreeMap<u32, Level> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<u32, Level> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn best(&self, side: Side) -> Option<(Price, u64)> {
        match side {
            Side::Buy => self.best_bid(),
            Side::Sell => self.best_ask(),
        }
    }

    /// Appends a new order at the back of its level; returns its slot.
    fn insert(&mut self, reference: u64, side: Side, price: u32, shares: u32) -> u32 {
        let node = Node {
            reference,
            shares,
            price,
            side,
            prev: NIL,
            next: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                let slot = u32::try_from(self.nodes.len())
                    .ok()
                    .filter(|&slot| slot != NIL)
                    .expect("fewer than 2^32 - 1 open orders in one book");
                self.nodes.push(node);
                slot
            }
        };
        let level = self.side_mut(side).entry(price).or_insert(Level {
            head: NIL,
            tail: NIL,
            shares: 0,
            orders: 0,
        });
        let tail = level.tail;
        level.tail = slot;
        if tail == NIL {
            level.head = slot;
        }
        level.shares += u64::from(shares);
        level.orders += 1;
        if tail != NIL {
            self.nodes[tail as usize].next = slot;
        }
        self.nodes[slot as usize].prev = tail;
        slot
    }

    /// Takes `shares` (at most the open shares: checked by the caller) from
    /// the order in `slot`, removing it at zero. Returns whether it was
    /// removed.
    fn reduce(&mut self, slot: u32, shares: u32) -> bool {
        let node = &mut self.nodes[slot as usize];
        debug_assert!(shares <= node.shares);
        if shares >= node.shares {
            self.remove(slot);
            return true;
        }
        node.shares -= shares;
        let (side, price) = (node.side, node.price);
        let level = self
            .side_mut(side)
            .get_mut(&price)
            .expect("an open order's level exists");
        level.shares -= u64::from(shares);
        false
    }

    /// Unlinks the order in `slot` from its level (dropping the level when
    /// it empties) and frees the slot.
    fn remove(&mut self, slot: u32) {
        let Node {
            side,
            price,
            shares,
            prev,
            next,
            ..
        } = self.nodes[slot as usize];
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        self.free.push(slot);
        let map = self.side_mut(side);
        let level = map.get_mut(&price).expect("an open order's level exists");
        level.orders -= 1;
        if level.orders == 0 {
            map.remove(&price);
            return;
        }
        level.shares -= u64::from(shares);
        if prev == NIL {
            level.head = next;
        }
        if next == NIL {
            level.tail = prev;
        }
    }
}

/// Iterator over one level's orders in time priority.
struct LevelOrders<'a> {
    nodes: &'a [Node],
    next: u32,
}

impl Iterator for LevelOrders<'_> {
    type Item = (u64, u32);

    fn next(&mut self) -> Option<(u64, u32)> {
        if self.next == NIL {
            return None;
        }
        let node = &self.nodes[self.next as usize];
        self.next = node.next;
        Some((node.reference, node.shares))
    }
}
/// Where an open order lives: its book and its slot in that book's slab.
#[derive(Debug, Clone, Copy)]
struct Location {
    locate: u16,
    slot: u32,
}

/// A directory entry: symbol and trading state of one locate.
#[derive(Debug, Clone, Copy, Default)]
struct Listing {
    stock: Option<Stock>,
    trading_state: Option<Code>,
}

/// Every instrument's L3 book, the open-order index and the directory.
#[derive(Debug, Clone, Default)]
pub struct Books {
    /// Indexed by stock locate; `None` until the locate is first seen.
    books: Vec<Option<Book>>,
    orders: FxHashMap<u64, Location>,
    /// Indexed by stock locate.
    listings: Vec<Listing>,
    locates: FxHashMap<Stock, u16>,
}

impl Books {
    /// No books, no orders, empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The book of `locate`, once the locate has been named by a Stock
    /// Directory or carried an order or trade.
    pub fn book(&self, locate: u16) -> Option<&Book> {
        self.books.get(usize::from(locate))?.as_ref()
    }

    /// The open order with this reference number.
    pub fn order(&self, reference: u64) -> Option<OrderInfo> {
        let location = self.orders.get(&reference)?;
        let book = self.book(location.locate)?;
        let node = &book.nodes[location.slot as usize];
        Some(OrderInfo {
            reference,
            locate: location.locate,
            side: node.side,
            price: Price(node.price),
            shares: node.shares,
        })
    }

    /// Number of open orders across all books.
    pub fn order_count(&self) -> usize {
        self.orders.len()
    }

    /// The symbol a Stock Directory gave `locate`.
    pub fn symbol(&self, locate: u16) -> Option<Stock> {
        self.listings.get(usize::from(locate))?.stock
    }

    /// The locate a Stock Directory gave `symbol`.
    pub fn locate_of(&self, symbol: Stock) -> Option<u16> {
        self.locates.get(&symbol).copied()
    }

    /// The trading state the last Stock Trading Action gave `locate`.
    pub fn trading_state(&self, locate: u16) -> Option<Code> {
        self.listings.get(usize::from(locate))?.trading_state
    }

    /// Forgets everything — books, orders, last trades and the directory —
    /// keeping allocated capacity, before rebuilding from a snapshot (which
    /// replays the directory as well as the open orders).
    pub fn clear(&mut self) {
        self.books.clear();
        self.orders.clear();
        self.listings.clear();
        self.locates.clear();
    }

    /// Applies one message. On error nothing was applied (see the module
    /// documentation): resync from a snapshot.
    pub fn apply(&mut self, message: &Message) -> Result<(), BookError> {
        self.apply_inner(message, None)
    }

    /// Applies one message and pushes what it changed onto `events` (which
    /// is not cleared first). On error nothing was applied or pushed.
    pub fn apply_with_events(
        &mut self,
        message: &Message,
        events: &mut Vec<BookEvent>,
    ) -> Result<(), BookError> {
        self.apply_inner(message, Some(events))
    }

    fn apply_inner(
        &mut self,
        message: &Message,
        events: Option<&mut Vec<BookEvent>>,
    ) -> Result<(), BookError> {
        match message {
            Message::AddOrder(m) => self.add(
                m.header.stock_locate,
                m.order_reference_number,
                m.side,
                m.price,
                m.shares,
                events,
            ),
            Message::AddOrderMpid(m) => self.add(
                m.header.stock_locate,
                m.order_reference_number,
                m.side,
                m.price,
                m.shares,
                events,
            ),
            Message::OrderExecuted(m) => self.execute(
                m.header.stock_locate,
                m.order_reference_number,
                m.executed_shares,
                None,
                events,
            ),
            Message::OrderExecutedWithPrice(m) => self.execute(
                m.header.stock_locate,
                m.order_reference_number,
                m.executed_shares,
                Some((m.execution_price, m.printable.byte() == PRINTABLE_YES)),
                events,
            ),
            Message::OrderCancel(m) => self.cancel(
                m.header.stock_locate,
                m.order_reference_number,
                Some(m.cancelled_shares),
                events,
            ),
            Message::OrderDelete(m) => self.cancel(
                m.header.stock_locate,
                m.order_reference_number,
                None,
                events,
            ),
            Message::OrderReplace(m) => self.replace(m, events),
            Message::Trade(m) => {
                let locate = m.header.stock_locate;
                self.book_mut(locate).last_trade = Some((m.price, m.shares));
                if let Some(events) = events {
                    events.push(BookEvent::Trade {
                        locate,
                        price: m.price,
                        shares: m.shares,
                    });
                }
                Ok(())
            }
            Message::BrokenTrade(m) => {
                if let Some(events) = events {
                    events.push(BookEvent::TradeBroken {
                        locate: m.header.stock_locate,
                        match_number: m.match_number,
                    });
                }
                Ok(())
            }
            Message::StockDirectory(m) => {
                let locate = m.header.stock_locate;
                self.book_mut(locate);
                let listing = self.listing_mut(locate);
                let previous = listing.stock.replace(m.stock);
                if let Some(previous) = previous
                    && previous != m.stock
                    && self.locates.get(&previous) == Some(&locate)
                {
                    self.locates.remove(&previous);
                }
                self.locates.insert(m.stock, locate);
                if let Some(events) = events {
                    events.push(BookEvent::Directory {
                        locate,
                        stock: m.stock,
                    });
                }
                Ok(())
            }
            Message::StockTradingAction(m) => {
                let locate = m.header.stock_locate;
                self.listing_mut(locate).trading_state = Some(m.trading_state);
                if let Some(events) = events {
                    events.push(BookEvent::TradingState {
                        locate,
                        state: m.trading_state,
                    });
                }
                Ok(())
            }
            Message::SystemEvent(_) => Ok(()),
        }
    }

    /// The book of `locate`, created empty if new.
    fn book_mut(&mut self, locate: u16) -> &mut Book {
        let index = usize::from(locate);
        if index >= self.books.len() {
            self.books.resize_with(index + 1, || None);
        }
        self.books[index].get_or_insert_with(Book::default)
    }

    fn listing_mut(&mut self, locate: u16) -> &mut Listing {
        let index = usize::from(locate);
        if index >= self.listings.len() {
            self.listings.resize_with(index + 1, Listing::default);
        }
        &mut self.listings[index]
    }

    /// The open order `reference`, checked to be on `locate`.
    fn locate_order(&self, locate: u16, reference: u64) -> Result<Location, BookError> {
        let location = *self
            .orders
            .get(&reference)
            .ok_or(BookError::UnknownReference { reference })?;
        if location.locate != locate {
            return Err(BookError::LocateMismatch {
                reference,
                expected: location.locate,
                actual: locate,
            });
        }
        Ok(location)
    }

    fn add(
        &mut self,
        locate: u16,
        reference: u64,
        side: Side,
        price: Price,
        shares: u32,
        events: Option<&mut Vec<BookEvent>>,
    ) -> Result<(), BookError> {
        if shares == 0 {
            return Err(BookError::ZeroShares { reference });
        }
        let entry = match self.orders.entry(reference) {
            std::collections::hash_map::Entry::Occupied(_) => {
                return Err(BookError::DuplicateReference { reference });
            }
            std::collections::hash_map::Entry::Vacant(entry) => entry,
        };
        let index = usize::from(locate);
        if index >= self.books.len() {
            self.books.resize_with(index + 1, || None);
        }
        let book = self.books[index].get_or_insert_with(Book::default);
        let before = events.as_ref().map(|_| book.best(side));
        let slot = book.insert(reference, side, price.0, shares);
        entry.insert(Location { locate, slot });
        if let Some(events) = events
            && before != Some(book.best(side))
        {
            events.push(BookEvent::TopOfBookChanged { locate });
        }
        Ok(())
    }

    /// 'E' (`price` `None`: at the order's price) and 'C' (`price` and
    /// whether it prints).
    fn execute(
        &mut self,
        locate: u16,
        reference: u64,
        shares: u32,
        price: Option<(Price, bool)>,
        events: Option<&mut Vec<BookEvent>>,
    ) -> Result<(), BookError> {
        let location = self.locate_order(locate, reference)?;
        let book = self.books[usize::from(locate)]
            .as_mut()
            .expect("an open order's book exists");
        let node = book.nodes[location.slot as usize];
        check_shares(reference, node.shares, shares)?;
        let (trade_price, prints) = price.unwrap_or((Price(node.price), true));
        let before = events.as_ref().map(|_| book.best(node.side));
        if book.reduce(location.slot, shares) {
            self.orders.remove(&reference);
        }
        if prints {
            book.last_trade = Some((trade_price, shares));
        }
        if let Some(events) = events {
            if before != Some(book.best(node.side)) {
                events.push(BookEvent::TopOfBookChanged { locate });
            }
            if prints {
                events.push(BookEvent::Trade {
                    locate,
                    price: trade_price,
                    shares,
                });
            }
        }
        Ok(())
    }

    /// 'X' (`Some(shares)`) and 'D' (`None`: all of it).
    fn cancel(
        &mut self,
        locate: u16,
        reference: u64,
        shares: Option<u32>,
        events: Option<&mut Vec<BookEvent>>,
    ) -> Result<(), BookError> {
        let location = self.locate_order(locate, reference)?;
        let book = self.books[usize::from(locate)]
            .as_mut()
            .expect("an open order's book exists");
        let node = book.nodes[location.slot as usize];
        let shares = match shares {
            Some(shares) => {
                check_shares(reference, node.shares, shares)?;
                shares
            }
            None => node.shares,
        };
        let before = events.as_ref().map(|_| book.best(node.side));
        if book.reduce(location.slot, shares) {
            self.orders.remove(&reference);
        }
        if let Some(events) = events
            && before != Some(book.best(node.side))
        {
            events.push(BookEvent::TopOfBookChanged { locate });
        }
        Ok(())
    }

    fn replace(
        &mut self,
        m: &itch::OrderReplace,
        events: Option<&mut Vec<BookEvent>>,
    ) -> Result<(), BookError> {
        let locate = m.header.stock_locate;
        let original = m.original_order_reference_number;
        let new = m.new_order_reference_number;
        let location = self.locate_order(locate, original)?;
        if self.orders.contains_key(&new) {
            return Err(BookError::DuplicateReference { reference: new });
        }
        if m.shares == 0 {
            return Err(BookError::ZeroShares { reference: new });
        }
        let book = self.books[usize::from(locate)]
            .as_mut()
            .expect("an open order's book exists");
        let side = book.nodes[location.slot as usize].side;
        let before = events.as_ref().map(|_| book.best(side));
        book.remove(location.slot);
        let slot = book.insert(new, side, m.price.0, m.shares);
        if let Some(events) = events
            && before != Some(book.best(side))
        {
            events.push(BookEvent::TopOfBookChanged { locate });
        }
        self.orders.remove(&original);
        self.orders.insert(new, Location { locate, slot });
        Ok(())
    }
}

/// An execute or cancel must take between 1 and the open shares.
fn check_shares(reference: u64, open: u32, requested: u32) -> Result<(), BookError> {
    if requested == 0 {
        Err(BookError::ZeroShares { reference })
    } else if requested > open {
        Err(BookError::TooManyShares {
            reference,
            open,
            requested,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itch::{
        AddOrder, AddOrderMpid, BrokenTrade, Header, Mpid, OrderCancel, OrderDelete, OrderExecuted,
        OrderExecutedWithPrice, OrderReplace, StockDirectory, StockTradingAction, Trade,
    };
    use proptest::prelude::*;

    use Side::{Buy, Sell};

    fn header(locate: u16) -> Header {
        Header {
            stock_locate: locate,
            ..Header::default()
        }
    }

    fn code(byte: u8) -> Code {
        Code::new(byte).unwrap()
    }

    fn add(locate: u16, reference: u64, side: Side, price: u32, shares: u32) -> Message {
        Message::AddOrder(AddOrder {
            header: header(locate),
            order_reference_number: reference,
            side,
            shares,
            stock: Stock::new("ACME").unwrap(),
            price: Price(price),
        })
    }

    fn add_mpid(locate: u16, reference: u64, side: Side, price: u32, shares: u32) -> Message {
        Message::AddOrderMpid(AddOrderMpid {
            header: header(locate),
            order_reference_number: reference,
            side,
            shares,
            stock: Stock::new("ACME").unwrap(),
            price: Price(price),
            attribution: Mpid::new("MMKR").unwrap(),
        })
    }

    fn exec(locate: u16, reference: u64, shares: u32) -> Message {
        Message::OrderExecuted(OrderExecuted {
            header: header(locate),
            order_reference_number: reference,
            executed_shares: shares,
            match_number: 1,
        })
    }

    fn exec_price(
        locate: u16,
        reference: u64,
        shares: u32,
        price: u32,
        printable: bool,
    ) -> Message {
        Message::OrderExecutedWithPrice(OrderExecutedWithPrice {
            header: header(locate),
            order_reference_number: reference,
            executed_shares: shares,
            match_number: 2,
            printable: code(if printable { b'Y' } else { b'N' }),
            execution_price: Price(price),
        })
    }

    fn cancel(locate: u16, reference: u64, shares: u32) -> Message {
        Message::OrderCancel(OrderCancel {
            header: header(locate),
            order_reference_number: reference,
            cancelled_shares: shares,
        })
    }

    fn delete(locate: u16, reference: u64) -> Message {
        Message::OrderDelete(OrderDelete {
            header: header(locate),
            order_reference_number: reference,
        })
    }

    fn replace(locate: u16, original: u64, new: u64, price: u32, shares: u32) -> Message {
        Message::OrderReplace(OrderReplace {
            header: header(locate),
            original_order_reference_number: original,
            new_order_reference_number: new,
            shares,
            price: Price(price),
        })
    }

    fn trade(locate: u16, price: u32, shares: u32) -> Message {
        Message::Trade(Trade {
            header: header(locate),
            order_reference_number: 0,
            side: Buy,
            shares,
            stock: Stock::new("ACME").unwrap(),
            price: Price(price),
            match_number: 3,
        })
    }

    fn directory(locate: u16, symbol: &str) -> Message {
        Message::StockDirectory(StockDirectory {
            header: header(locate),
            stock: Stock::new(symbol).unwrap(),
            market_category: code(b'Q'),
            financial_status_indicator: code(b'N'),
            round_lot_size: 100,
            round_lots_only: code(b'N'),
            issue_classification: code(b'C'),
            issue_sub_type: itch::IssueSubType::new("Z").unwrap(),
            authenticity: code(b'P'),
            short_sale_threshold_indicator: code(b'N'),
            ipo_flag: code(b'N'),
            luld_reference_price_tier: code(b'1'),
            etp_flag: code(b'N'),
            etp_leverage_factor: 0,
            inverse_indicator: code(b'N'),
        })
    }

    fn trading_action(locate: u16, symbol: &str, state: u8) -> Message {
        Message::StockTradingAction(StockTradingAction {
            header: header(locate),
            stock: Stock::new(symbol).unwrap(),
            trading_state: code(state),
            reserved: code(b' '),
            reason: itch::TradingReason::BLANK,
        })
    }

    /// Applies `message`, checks the invariants and returns its events.
    fn step(books: &mut Books, message: Message) -> Vec<BookEvent> {
        let mut events = Vec::new();
        books.apply_with_events(&message, &mut events).unwrap();
        check_invariants(books);
        events
    }

    fn l2(book: &Book, side: Side) -> Vec<(u32, u64, u32)> {
        book.depth(side, usize::MAX)
            .into_iter()
            .map(|(price, shares, orders)| (price.0, shares, orders))
            .collect()
    }

    fn l3(book: &Book, side: Side, price: u32) -> Vec<(u64, u32)> {
        book.orders_at(side, Price(price)).collect()
    }

    /// Everything observable about one book plus the order count.
    #[allow(clippy::type_complexity)]
    fn state(
        books: &Books,
        locate: u16,
    ) -> (
        usize,
        Option<(Price, u32)>,
        Vec<(u32, u64, u32)>,
        Vec<(u32, u64, u32)>,
        Vec<Vec<(u64, u32)>>,
    ) {
        let book = books.book(locate).unwrap();
        let mut orders = Vec::new();
        for side in [Buy, Sell] {
            for (price, _, _) in l2(book, side) {
                orders.push(l3(book, side, price));
            }
        }
        (
            books.order_count(),
            book.last_trade(),
            l2(book, Buy),
            l2(book, Sell),
            orders,
        )
    }

    /// Structural invariants: level totals and counts equal their orders,
    /// no empty levels, links consistent, every open order indexed exactly
    /// once, every slab slot either linked once or free.
    fn check_invariants(books: &Books) {
        let mut total = 0;
        for (index, book) in books.books.iter().enumerate() {
            let Some(book) = book else { continue };
            let locate = u16::try_from(index).unwrap();
            let mut seen = vec![false; book.nodes.len()];
            for side in [Buy, Sell] {
                for (&price, level) in book.side(side) {
                    assert!(level.orders > 0, "empty level {price}");
                    let (mut slot, mut prev, mut shares, mut orders) = (level.head, NIL, 0, 0);
                    while slot != NIL {
                        assert!(!seen[slot as usize], "slot {slot} linked twice");
                        seen[slot as usize] = true;
                        let node = &book.nodes[slot as usize];
                        assert_eq!(node.prev, prev);
                        assert_eq!(node.side, side);
                        assert_eq!(node.price, price);
                        assert!(node.shares > 0);
                        let location = books.orders[&node.reference];
                        assert_eq!((location.locate, location.slot), (locate, slot));
                        shares += u64::from(node.shares);
                        orders += 1;
                        prev = slot;
                        slot = node.next;
                    }
                    assert_eq!(level.tail, prev);
                    assert_eq!(level.shares, shares, "level {price} total");
                    assert_eq!(level.orders, orders, "level {price} count");
                    total += orders as usize;
                }
            }
            for &slot in &book.free {
                assert!(!seen[slot as usize], "free slot {slot} is linked");
                seen[slot as usize] = true;
            }
            assert!(seen.iter().all(|&s| s), "a slot is neither linked nor free");
        }
        assert_eq!(total, books.orders.len(), "orders indexed once each");
    }

    const TOP: BookEvent = BookEvent::TopOfBookChanged { locate: 1 };

    #[test]
    fn scripted_sequence() {
        let mut books = Books::new();
        let acme = Stock::new("ACME").unwrap();
        assert_eq!(
            step(&mut books, directory(1, "ACME")),
            [BookEvent::Directory {
                locate: 1,
                stock: acme
            }]
        );
        assert_eq!(books.symbol(1), Some(acme));
        assert_eq!(books.locate_of(acme), Some(1));
        assert!(books.book(1).unwrap().is_empty());
        assert!(books.book(2).is_none());

        // Bids 10.00 x (100, 200), 9.99 x 300; asks 10.01 x (150, 50F), 10.02 x 250.
        assert_eq!(step(&mut books, add(1, 1, Buy, 100_000, 100)), [TOP]);
        assert_eq!(step(&mut books, add(1, 2, Buy, 100_000, 200)), [TOP]);
        assert_eq!(step(&mut books, add(1, 3, Buy, 99_900, 300)), []);
        assert_eq!(step(&mut books, add(1, 4, Sell, 100_100, 150)), [TOP]);
        assert_eq!(step(&mut books, add(1, 5, Sell, 100_200, 250)), []);
        assert_eq!(step(&mut books, add_mpid(1, 6, Sell, 100_100, 50)), [TOP]);
        let book = books.book(1).unwrap();
        assert_eq!(book.best_bid(), Some((Price(100_000), 300)));
        assert_eq!(book.best_ask(), Some((Price(100_100), 200)));
        assert_eq!(l2(book, Buy), [(100_000, 300, 2), (99_900, 300, 1)]);
        assert_eq!(l2(book, Sell), [(100_100, 200, 2), (100_200, 250, 1)]);
        assert_eq!(book.depth(Sell, 1), [(Price(100_100), 200, 2)]);
        assert_eq!(l3(book, Buy, 100_000), [(1, 100), (2, 200)]);
        assert_eq!(l3(book, Sell, 100_100), [(4, 150), (6, 50)]);
        assert_eq!(l3(book, Sell, 100_000), []);
        assert_eq!(book.last_trade(), None);
        assert_eq!(books.order_count(), 6);
        assert_eq!(book.order_count(), 6);
        assert_eq!(
            books.order(6),
            Some(OrderInfo {
                reference: 6,
                locate: 1,
                side: Sell,
                price: Price(100_100),
                shares: 50
            })
        );

        // 'E' partial then full on the front bid.
        let traded = |price, shares| BookEvent::Trade {
            locate: 1,
            price: Price(price),
            shares,
        };
        assert_eq!(step(&mut books, exec(1, 1, 40)), [TOP, traded(100_000, 40)]);
        let book = books.book(1).unwrap();
        assert_eq!(book.best_bid(), Some((Price(100_000), 260)));
        assert_eq!(l3(book, Buy, 100_000), [(1, 60), (2, 200)]);
        assert_eq!(book.last_trade(), Some((Price(100_000), 40)));
        assert_eq!(step(&mut books, exec(1, 1, 60)), [TOP, traded(100_000, 60)]);
        let book = books.book(1).unwrap();
        assert_eq!(l2(book, Buy), [(100_000, 200, 1), (99_900, 300, 1)]);
        assert_eq!(l3(book, Buy, 100_000), [(2, 200)]);
        assert_eq!(books.order(1), None);
        assert_eq!(books.order_count(), 5);

        // 'C' printable at its own price, then non-printable removing it.
        assert_eq!(
            step(&mut books, exec_price(1, 4, 100, 100_150, true)),
            [TOP, traded(100_150, 100)]
        );
        let book = books.book(1).unwrap();
        assert_eq!(book.best_ask(), Some((Price(100_100), 100)));
        assert_eq!(l3(book, Sell, 100_100), [(4, 50), (6, 50)]);
        assert_eq!(book.last_trade(), Some((Price(100_150), 100)));
        assert_eq!(
            step(&mut books, exec_price(1, 4, 50, 100_100, false)),
            [TOP]
        );
        let book = books.book(1).unwrap();
        assert_eq!(l3(book, Sell, 100_100), [(6, 50)]);
        assert_eq!(book.last_trade(), Some((Price(100_150), 100)));

        // 'X' partial away from the top, then full at the top.
        assert_eq!(step(&mut books, cancel(1, 5, 50)), []);
        let book = books.book(1).unwrap();
        assert_eq!(l2(book, Sell), [(100_100, 50, 1), (100_200, 200, 1)]);
        assert_eq!(step(&mut books, cancel(1, 6, 50)), [TOP]);
        let book = books.book(1).unwrap();
        assert_eq!(l2(book, Sell), [(100_200, 200, 1)]);
        assert_eq!(book.best_ask(), Some((Price(100_200), 200)));

        // 'D'.
        assert_eq!(step(&mut books, delete(1, 3)), []);
        assert_eq!(l2(books.book(1).unwrap(), Buy), [(100_000, 200, 1)]);
        assert_eq!(books.order_count(), 2);

        // 'U' within the level loses priority; 'U' to another level moves it.
        assert_eq!(step(&mut books, add(1, 7, Buy, 100_000, 100)), [TOP]);
        assert_eq!(
            l3(books.book(1).unwrap(), Buy, 100_000),
            [(2, 200), (7, 100)]
        );
        assert_eq!(step(&mut books, replace(1, 2, 8, 100_000, 150)), [TOP]);
        let book = books.book(1).unwrap();
        assert_eq!(l3(book, Buy, 100_000), [(7, 100), (8, 150)]);
        assert_eq!(book.best_bid(), Some((Price(100_000), 250)));
        assert_eq!(books.order(2), None);
        assert_eq!(books.order(8).unwrap().shares, 150);
        assert_eq!(step(&mut books, replace(1, 7, 9, 99_800, 100)), [TOP]);
        let book = books.book(1).unwrap();
        assert_eq!(l2(book, Buy), [(100_000, 150, 1), (99_800, 100, 1)]);
        assert_eq!(l3(book, Buy, 99_800), [(9, 100)]);
        assert_eq!(
            books.order(9),
            Some(OrderInfo {
                reference: 9,
                locate: 1,
                side: Buy,
                price: Price(99_800),
                shares: 100
            })
        );
        // A replace that only changes a deeper level leaves the top alone.
        assert_eq!(step(&mut books, replace(1, 9, 10, 99_700, 100)), []);

        // 'P': last trade only. 'B': nothing.
        let before = state(&books, 1);
        assert_eq!(
            step(&mut books, trade(1, 100_500, 500)),
            [traded(100_500, 500)]
        );
        let after = state(&books, 1);
        assert_eq!(after.1, Some((Price(100_500), 500)));
        assert_eq!(
            (&before.0, &before.2, &before.3, &before.4),
            (&after.0, &after.2, &after.3, &after.4)
        );
        let broken = Message::BrokenTrade(BrokenTrade {
            header: header(1),
            match_number: 3,
        });
        assert_eq!(
            step(&mut books, broken),
            [BookEvent::TradeBroken {
                locate: 1,
                match_number: 3
            }]
        );
        assert_eq!(state(&books, 1), after);

        // 'H' and 'S'.
        assert_eq!(books.trading_state(1), None);
        step(&mut books, trading_action(1, "ACME", b'H'));
        assert_eq!(books.trading_state(1), Some(code(b'H')));
        let system = Message::SystemEvent(itch::SystemEvent {
            header: header(0),
            event_code: code(b'O'),
        });
        assert_eq!(step(&mut books, system), []);
        assert_eq!(state(&books, 1), after);

        // `apply` without events does the same.
        books.apply(&exec(1, 8, 150)).unwrap();
        check_invariants(&books);
        assert_eq!(l2(books.book(1).unwrap(), Buy), [(99_700, 100, 1)]);

        // A snapshot resync starts from nothing.
        books.clear();
        check_invariants(&books);
        assert_eq!(books.order_count(), 0);
        assert!(books.book(1).is_none());
        assert_eq!(books.symbol(1), None);
        assert_eq!(books.locate_of(acme), None);
        assert_eq!(books.trading_state(1), None);
        step(&mut books, add(1, 1, Buy, 100_000, 100));
        assert_eq!(books.order(1).unwrap().shares, 100);
    }

    #[test]
    fn books_are_per_locate_and_directory_renames() {
        let mut books = Books::new();
        step(&mut books, directory(1, "ACME"));
        step(&mut books, directory(2, "BETA"));
        step(&mut books, add(1, 1, Buy, 100, 10));
        step(&mut books, add(2, 2, Buy, 200, 20));
        step(&mut books, add(300, 3, Sell, 300, 30));
        assert_eq!(books.book(1).unwrap().best_bid(), Some((Price(100), 10)));
        assert_eq!(books.book(2).unwrap().best_bid(), Some((Price(200), 20)));
        assert_eq!(books.book(300).unwrap().best_ask(), Some((Price(300), 30)));
        assert_eq!(books.symbol(300), None);
        step(&mut books, trade(4, 1, 1));
        assert_eq!(books.book(4).unwrap().last_trade(), Some((Price(1), 1)));
        assert_eq!(books.book(1).unwrap().last_trade(), None);
        // Locate 1 renamed: the old symbol no longer resolves.
        step(&mut books, directory(1, "GAMMA"));
        assert_eq!(books.locate_of(Stock::new("ACME").unwrap()), None);
        assert_eq!(books.locate_of(Stock::new("GAMMA").unwrap()), Some(1));
        assert_eq!(books.locate_of(Stock::new("BETA").unwrap()), Some(2));
        // The directory does not touch the book.
        assert_eq!(books.book(1).unwrap().best_bid(), Some((Price(100), 10)));
    }

    #[test]
    fn errors_leave_the_books_unchanged() {
        let mut books = Books::new();
        step(&mut books, add(1, 1, Buy, 100_000, 100));
        step(&mut books, add(1, 2, Sell, 100_100, 100));
        step(&mut books, exec(1, 1, 10));
        let before = state(&books, 1);

        let cases = [
            (
                add(1, 1, Buy, 1, 1),
                BookError::DuplicateReference { reference: 1 },
            ),
            (
                add_mpid(2, 2, Sell, 1, 1),
                BookError::DuplicateReference { reference: 2 },
            ),
            (add(1, 3, Buy, 1, 0), BookError::ZeroShares { reference: 3 }),
            (
                add_mpid(1, 3, Buy, 1, 0),
                BookError::ZeroShares { reference: 3 },
            ),
            (exec(1, 9, 1), BookError::UnknownReference { reference: 9 }),
            (
                exec_price(1, 9, 1, 1, true),
                BookError::UnknownReference { reference: 9 },
            ),
            (
                cancel(1, 9, 1),
                BookError::UnknownReference { reference: 9 },
            ),
            (delete(1, 9), BookError::UnknownReference { reference: 9 }),
            (
                replace(1, 9, 10, 1, 1),
                BookError::UnknownReference { reference: 9 },
            ),
            (
                exec(1, 1, 91),
                BookError::TooManyShares {
                    reference: 1,
                    open: 90,
                    requested: 91,
                },
            ),
            (
                exec_price(1, 1, 91, 1, true),
                BookError::TooManyShares {
                    reference: 1,
                    open: 90,
                    requested: 91,
                },
            ),
            (
                cancel(1, 2, 101),
                BookError::TooManyShares {
                    reference: 2,
                    open: 100,
                    requested: 101,
                },
            ),
            (exec(1, 1, 0), BookError::ZeroShares { reference: 1 }),
            (
                exec_price(1, 1, 0, 1, true),
                BookError::ZeroShares { reference: 1 },
            ),
            (cancel(1, 1, 0), BookError::ZeroShares { reference: 1 }),
            (
                replace(1, 1, 10, 1, 0),
                BookError::ZeroShares { reference: 10 },
            ),
            (
                replace(1, 1, 2, 1, 1),
                BookError::DuplicateReference { reference: 2 },
            ),
            (
                replace(1, 1, 1, 1, 1),
                BookError::DuplicateReference { reference: 1 },
            ),
            (
                exec(2, 1, 1),
                BookError::LocateMismatch {
                    reference: 1,
                    expected: 1,
                    actual: 2,
                },
            ),
            (
                exec_price(2, 1, 1, 1, true),
                BookError::LocateMismatch {
                    reference: 1,
                    expected: 1,
                    actual: 2,
                },
            ),
            (
                cancel(2, 1, 1),
                BookError::LocateMismatch {
                    reference: 1,
                    expected: 1,
                    actual: 2,
                },
            ),
            (
                delete(2, 1),
                BookError::LocateMismatch {
                    reference: 1,
                    expected: 1,
                    actual: 2,
                },
            ),
            (
                replace(2, 1, 10, 1, 1),
                BookError::LocateMismatch {
                    reference: 1,
                    expected: 1,
                    actual: 2,
                },
            ),
        ];
        for (message, error) in cases {
            let mut events = Vec::new();
            assert_eq!(
                books.apply_with_events(&message, &mut events),
                Err(error),
                "{message:?}"
            );
            assert_eq!(events, [], "{message:?}");
            assert_eq!(books.apply(&message), Err(error), "{message:?}");
            assert!(!error.to_string().is_empty());
            check_invariants(&books);
            assert_eq!(state(&books, 1), before, "{message:?}");
            assert!(books.order(10).is_none() && books.order(3).is_none());
        }
        // A mismatched add on another locate did not create a book for it
        // with an order in it.
        assert!(books.book(2).is_none_or(Book::is_empty));
    }

    /// One open order in the reference model.
    #[derive(Debug, Clone, Copy)]
    struct ModelOrder {
        locate: u16,
        side: Side,
        price: u32,
        shares: u32,
        seq: u64,
    }

    /// The model's L2 and L3 for one side of one locate.
    #[allow(clippy::type_complexity)]
    fn model_view(
        model: &BTreeMap<u64, ModelOrder>,
        locate: u16,
        side: Side,
    ) -> (Vec<(u32, u64, u32)>, Vec<Vec<(u64, u32)>>) {
        let mut levels: BTreeMap<u32, Vec<(u64, u64, u32)>> = BTreeMap::new();
        for (&reference, order) in model {
            if order.locate == locate && order.side == side {
                levels
                    .entry(order.price)
                    .or_default()
                    .push((order.seq, reference, order.shares));
            }
        }
        let mut prices: Vec<u32> = levels.keys().copied().collect();
        if side == Buy {
            prices.reverse();
        }
        let mut l2 = Vec::new();
        let mut l3 = Vec::new();
        for price in prices {
            let mut orders = levels[&price].clone();
            orders.sort_unstable();
            l2.push((
                price,
                orders.iter().map(|o| u64::from(o.2)).sum(),
                u32::try_from(orders.len()).unwrap(),
            ));
            l3.push(orders.iter().map(|o| (o.1, o.2)).collect());
        }
        (l2, l3)
    }

    type Op = (u8, u16, bool, u32, u32, u16);

    fn op() -> impl Strategy<Value = Op> {
        (
            0u8..8,
            any::<u16>(),
            any::<bool>(),
            1u32..8,
            1u32..500,
            0u16..3,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_valid_sequences_keep_invariants(ops in prop::collection::vec(op(), 1..200)) {
            let mut books = Books::new();
            let mut model: BTreeMap<u64, ModelOrder> = BTreeMap::new();
            let mut next_reference = 1u64;
            let mut last_trade: BTreeMap<u16, (Price, u32)> = BTreeMap::new();
            for (seq, (kind, pick, buy, price, shares, locate)) in (0u64..).zip(ops) {
                let side = if buy { Buy } else { Sell };
                let picked = (!model.is_empty()).then(|| {
                    let reference = *model.keys().nth(usize::from(pick) % model.len()).unwrap();
                    (reference, model[&reference])
                });
                let message = match (kind, picked) {
                    (0 | 1, _) | (_, None) => {
                        let reference = next_reference;
                        next_reference += 1;
                        model.insert(reference, ModelOrder { locate, side, price, shares, seq });
                        if kind == 1 {
                            add_mpid(locate, reference, side, price, shares)
                        } else {
                            add(locate, reference, side, price, shares)
                        }
                    }
                    (2..=4, Some((reference, order))) => {
                        let take = 1 + shares % order.shares;
                        let entry = model.get_mut(&reference).unwrap();
                        entry.shares -= take;
                        if entry.shares == 0 {
                            model.remove(&reference);
                        }
                        match kind {
                            2 => {
                                last_trade.insert(order.locate, (Price(order.price), take));
                                exec(order.locate, reference, take)
                            }
                            3 => {
                                if buy {
                                    last_trade.insert(order.locate, (Price(price), take));
                                }
                                exec_price(order.locate, reference, take, price, buy)
                            }
                            _ => cancel(order.locate, reference, take),
                        }
                    }
                    (5, Some((reference, order))) => {
                        model.remove(&reference);
                        delete(order.locate, reference)
                    }
                    (6, Some((reference, order))) => {
                        let new = next_reference;
                        next_reference += 1;
                        model.remove(&reference);
                        model.insert(new, ModelOrder { price, shares, seq, ..order });
                        replace(order.locate, reference, new, price, shares)
                    }
                    (_, Some(_)) => {
                        last_trade.insert(locate, (Price(price), shares));
                        trade(locate, price, shares)
                    }
                };
                let mut events = Vec::new();
                prop_assert_eq!(books.apply_with_events(&message, &mut events), Ok(()));
                check_invariants(&books);
                prop_assert_eq!(books.order_count(), model.len());
                for (&reference, order) in &model {
                    prop_assert_eq!(
                        books.order(reference),
                        Some(OrderInfo {
                            reference,
                            locate: order.locate,
                            side: order.side,
                            price: Price(order.price),
                            shares: order.shares,
                        })
                    );
                }
                for locate in 0..3 {
                    let Some(book) = books.book(locate) else {
                        prop_assert!(model.values().all(|o| o.locate != locate));
                        continue;
                    };
                    prop_assert_eq!(book.last_trade(), last_trade.get(&locate).copied());
                    for side in [Buy, Sell] {
                        let (expected_l2, expected_l3) = model_view(&model, locate, side);
                        prop_assert_eq!(l2(book, side), expected_l2.clone());
                        let best = expected_l2.first().map(|&(p, s, _)| (Price(p), s));
                        prop_assert_eq!(book.best(side), best);
                        for (&(price, _, _), orders) in expected_l2.iter().zip(&expected_l3) {
                            prop_assert_eq!(&l3(book, side, price), orders);
                        }
                    }
                }
            }
        }
    }
}
