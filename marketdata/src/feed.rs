//! Engine outcomes to ITCH 5.0 messages: what the market-data publisher
//! sends for each applied command.
//!
//! The mapping (a pure function of the events, so replaying the journal
//! regenerates the same stream):
//!
//! | engine event | ITCH |
//! |---|---|
//! | `InstrumentCreated` | Stock Directory `R` (locate = instrument id + 1) |
//! | `TradingStatusChanged` | Stock Trading Action `H` (`T` trading, `H` halted) |
//! | `OrderBooked` (an order rests) | Add Order `A` (reference = the engine's order id; no MPID) |
//! | `Fill` | Order Executed `E` of the resting order (fills are at its price) |
//! | `OrderCanceled` of a resting order | Order Cancel `X` (shares removed), or Order Delete `D` when none are left |
//! | `OrderReplaced`, priority kept | Order Cancel `X` of the reduction, if any |
//! | `OrderReplaced`, priority lost | Order Delete `D` of the old order (its new id gets an Add Order when it rests) |
//!
//! Orders that never rest (IOC, FOK, filled on arrival) never appear: ITCH
//! shows the book, and an incoming order's executions are reported on the
//! resting orders it met. Prices have 4 implied decimals (`Price(4)`, a
//! `u32`); an instrument whose prices do not fit is published with prices
//! clamped to `u32::MAX` and logged once — the default instruments fit.
//! Timestamps are nanoseconds since midnight (UTC) of the command's
//! timestamp; the tracking number is 0.

use engine::{CommandHeader, Event, InstrumentId, OrderId, Side, TradingStatus};
use rustc_hash::FxHashMap;
use wire::catalogue::{Catalogue, PriceScale, wire_quantity};
use wire::trading_day::time_of_day_ns;

use crate::itch::{self, Code, Header, Message, Price, Stock, Timestamp};

/// The ITCH timestamp of a Unix time in nanoseconds: nanoseconds since
/// midnight, UTC.
pub fn itch_timestamp(unix_ns: u64) -> Timestamp {
    Timestamp::new(time_of_day_ns(unix_ns)).unwrap_or(Timestamp::ZERO)
}

/// An order on the book as the feed published it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishedOrder {
    pub locate: u16,
    pub side: itch::Side,
    pub price: Price,
    pub shares: u32,
    /// The order of publication: within a price level, time priority.
    pub sequence: u64,
}

#[derive(Clone, Copy, Debug)]
struct Listing {
    locate: u16,
    stock: Stock,
    /// Engine prices ↔ ITCH's 4 implied decimals (the gateway's scaling).
    price_scale: PriceScale,
    round_lot: u32,
    halted: bool,
}

/// The feed's state: the directory and every resting order it published.
/// A listing as an edges' snapshot records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ListingState {
    instrument: InstrumentId,
    locate: u16,
    stock: [u8; 8],
    price_scale: PriceScale,
    round_lot: u32,
    halted: bool,
}

/// A published order as an edges' snapshot records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct OrderState {
    order_id: OrderId,
    locate: u16,
    buy: bool,
    price: u32,
    shares: u32,
    sequence: u64,
}

/// Everything the feed derived from the commands so far (the listings and
/// the orders on the books as published), for an edges' snapshot.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FeedState {
    listings: Vec<ListingState>,
    catalogue: Catalogue,
    orders: Vec<OrderState>,
    added: u64,
}

#[derive(Debug, Default)]
pub struct Feed {
    listings: FxHashMap<InstrumentId, Listing>,
    catalogue: Catalogue,
    orders: FxHashMap<OrderId, PublishedOrder>,
    added: u64,
}

impl Feed {
    pub fn new() -> Feed {
        Feed::default()
    }

    /// What the feed holds, in a stable order (by instrument, by order).
    pub fn state(&self) -> FeedState {
        let mut listings: Vec<ListingState> = self
            .listings
            .iter()
            .map(|(&instrument, listing)| ListingState {
                instrument,
                locate: listing.locate,
                stock: *listing.stock.as_bytes(),
                price_scale: listing.price_scale,
                round_lot: listing.round_lot,
                halted: listing.halted,
            })
            .collect();
        listings.sort_by_key(|listing| listing.instrument);
        let mut orders: Vec<OrderState> = self
            .orders
            .iter()
            .map(|(&order_id, order)| OrderState {
                order_id,
                locate: order.locate,
                buy: order.side == itch::Side::Buy,
                price: order.price.0,
                shares: order.shares,
                sequence: order.sequence,
            })
            .collect();
        orders.sort_by_key(|order| order.order_id);
        FeedState {
            listings,
            catalogue: self.catalogue.clone(),
            orders,
            added: self.added,
        }
    }

    /// The feed that [`Feed::state`] described.
    pub fn from_state(state: FeedState) -> Feed {
        Feed {
            listings: state
                .listings
                .iter()
                .map(|listing| {
                    let stock = Stock::from_bytes(listing.stock).unwrap_or(Stock::BLANK);
                    (
                        listing.instrument,
                        Listing {
                            locate: listing.locate,
                            stock,
                            price_scale: listing.price_scale,
                            round_lot: listing.round_lot,
                            halted: listing.halted,
                        },
                    )
                })
                .collect(),
            catalogue: state.catalogue,
            orders: state
                .orders
                .iter()
                .map(|order| {
                    let side = if order.buy {
                        itch::Side::Buy
                    } else {
                        itch::Side::Sell
                    };
                    let published = PublishedOrder {
                        locate: order.locate,
                        side,
                        price: Price(order.price),
                        shares: order.shares,
                        sequence: order.sequence,
                    };
                    (order.order_id, published)
                })
                .collect(),
            added: state.added,
        }
    }

    /// The ITCH messages of one applied command's events, in order.
    pub fn applied(&mut self, header: CommandHeader, events: &[Event], out: &mut Vec<Message>) {
        let timestamp = itch_timestamp(header.timestamp_ns);
        for event in events {
            self.event(timestamp, event, out);
        }
    }

    fn header(locate: u16, timestamp: Timestamp) -> Header {
        Header {
            stock_locate: locate,
            tracking_number: 0,
            timestamp,
        }
    }

    fn event(&mut self, timestamp: Timestamp, event: &Event, out: &mut Vec<Message>) {
        match *event {
            Event::AssetCreated { .. } => {
                self.catalogue.observe(event);
            }
            Event::InstrumentCreated { instrument, spec } => {
                let Some(locate) = instrument
                    .0
                    .checked_add(1)
                    .and_then(|locate| u16::try_from(locate).ok())
                else {
                    tracing::warn!(%instrument, "no ITCH locate code above 65535: not published");
                    return;
                };
                let Some(listed) = self.catalogue.observe(event) else {
                    return;
                };
                let stock = Stock::from_bytes(spec.symbol.bytes()).unwrap_or(Stock::BLANK);
                let listing = Listing {
                    locate,
                    stock,
                    price_scale: listed.price_scale,
                    round_lot: wire_quantity(spec.lot_size),
                    halted: false,
                };
                self.listings.insert(instrument, listing);
                out.push(stock_directory(&listing, timestamp));
            }
            Event::TradingStatusChanged { instrument, status } => {
                if let Some(listing) = self.listings.get_mut(&instrument) {
                    listing.halted = status == TradingStatus::Halted;
                    out.push(trading_action(listing, timestamp));
                }
            }
            Event::OrderBooked {
                order_id,
                instrument,
                side,
                price,
                quantity,
                ..
            } => {
                let Some(listing) = self.listings.get(&instrument) else {
                    return;
                };
                self.added += 1;
                let order = PublishedOrder {
                    locate: listing.locate,
                    side: itch_side(side),
                    price: itch_price(listing, price),
                    shares: wire_quantity(quantity),
                    sequence: self.added,
                };
                self.orders.insert(order_id, order);
                out.push(Message::AddOrder(itch::AddOrder {
                    header: Self::header(listing.locate, timestamp),
                    order_reference_number: order_id.0,
                    side: order.side,
                    shares: order.shares,
                    stock: listing.stock,
                    price: order.price,
                }));
            }
            Event::Fill {
                maker_order_id,
                quantity,
                match_number,
                ..
            } => {
                let Some(order) = self.orders.get_mut(&maker_order_id) else {
                    return;
                };
                let executed = wire_quantity(quantity).min(order.shares);
                order.shares -= executed;
                let locate = order.locate;
                if order.shares == 0 {
                    self.orders.remove(&maker_order_id);
                }
                out.push(Message::OrderExecuted(itch::OrderExecuted {
                    header: Self::header(locate, timestamp),
                    order_reference_number: maker_order_id.0,
                    executed_shares: executed,
                    match_number: match_number.0,
                }));
            }
            Event::OrderCanceled {
                order_id,
                canceled,
                remaining,
                ..
            } => {
                let canceled = wire_quantity(canceled);
                self.reduce(order_id, canceled, remaining.0 == 0, timestamp, out);
            }
            Event::OrderReplaced {
                old_order_id,
                quantity,
                priority_kept,
                ..
            } => {
                let Some(order) = self.orders.get(&old_order_id) else {
                    return;
                };
                if priority_kept {
                    let left = wire_quantity(quantity);
                    let reduction = order.shares.saturating_sub(left);
                    if reduction > 0 {
                        self.reduce(old_order_id, reduction, false, timestamp, out);
                    }
                } else {
                    let shares = order.shares;
                    self.reduce(old_order_id, shares, true, timestamp, out);
                }
            }
            _ => {}
        }
    }

    /// Removes `shares` from a resting order (all of it when `gone`).
    fn reduce(
        &mut self,
        order_id: OrderId,
        shares: u32,
        gone: bool,
        timestamp: Timestamp,
        out: &mut Vec<Message>,
    ) {
        let Some(order) = self.orders.get_mut(&order_id) else {
            // Never rested (an IOC remainder, an FOK): not on the feed.
            return;
        };
        let locate = order.locate;
        order.shares = order.shares.saturating_sub(shares);
        if gone || order.shares == 0 {
            self.orders.remove(&order_id);
            out.push(Message::OrderDelete(itch::OrderDelete {
                header: Self::header(locate, timestamp),
                order_reference_number: order_id.0,
            }));
        } else {
            out.push(Message::OrderCancel(itch::OrderCancel {
                header: Self::header(locate, timestamp),
                order_reference_number: order_id.0,
                cancelled_shares: shares,
            }));
        }
    }

    /// Every resting order the feed has published.
    pub fn orders(&self) -> impl Iterator<Item = (OrderId, PublishedOrder)> + '_ {
        self.orders.iter().map(|(&id, &order)| (id, order))
    }

    /// A snapshot as ITCH: Stock Directory (and Stock Trading Action when
    /// halted) for every instrument, then Add Order for every resting
    /// order in time priority, stamped `timestamp`. Applied to an empty
    /// book, it rebuilds the books the live stream has built so far.
    pub fn snapshot(&self, timestamp: Timestamp, out: &mut Vec<Message>) {
        let mut listings: Vec<&Listing> = self.listings.values().collect();
        listings.sort_by_key(|listing| listing.locate);
        let stocks: FxHashMap<u16, Stock> = listings
            .iter()
            .map(|listing| (listing.locate, listing.stock))
            .collect();
        for listing in listings {
            out.push(stock_directory(listing, timestamp));
            if listing.halted {
                out.push(trading_action(listing, timestamp));
            }
        }
        let mut orders: Vec<(OrderId, PublishedOrder)> = self.orders().collect();
        orders.sort_by_key(|(_, order)| order.sequence);
        for (order_id, order) in orders {
            out.push(Message::AddOrder(itch::AddOrder {
                header: Self::header(order.locate, timestamp),
                order_reference_number: order_id.0,
                side: order.side,
                shares: order.shares,
                stock: stocks.get(&order.locate).copied().unwrap_or(Stock::BLANK),
                price: order.price,
            }));
        }
    }
}

fn code(byte: u8) -> Code {
    // Invariant: only printable ASCII literals are passed.
    Code::new(byte).expect("a printable code")
}

fn stock_directory(listing: &Listing, timestamp: Timestamp) -> Message {
    Message::StockDirectory(itch::StockDirectory {
        header: Feed::header(listing.locate, timestamp),
        stock: listing.stock,
        // Not a NASDAQ listing: market category and most flags are "not
        // available" (space) as the specification allows. Issue
        // Classification and Sub-Type have no blank in their value lists:
        // `Q` (other securities) and `Z` (not applicable).
        market_category: code(b' '),
        financial_status_indicator: code(b' '),
        round_lot_size: listing.round_lot,
        round_lots_only: code(b'N'),
        issue_classification: code(b'Q'),
        issue_sub_type: itch::IssueSubType::new("Z").expect("printable"),
        authenticity: code(b'P'),
        short_sale_threshold_indicator: code(b' '),
        ipo_flag: code(b' '),
        luld_reference_price_tier: code(b' '),
        etp_flag: code(b' '),
        etp_leverage_factor: 0,
        inverse_indicator: code(b'N'),
    })
}

fn trading_action(listing: &Listing, timestamp: Timestamp) -> Message {
    Message::StockTradingAction(itch::StockTradingAction {
        header: Feed::header(listing.locate, timestamp),
        stock: listing.stock,
        trading_state: code(if listing.halted { b'H' } else { b'T' }),
        reserved: code(b' '),
        reason: itch::TradingReason::BLANK,
    })
}

fn itch_side(side: Side) -> itch::Side {
    match side {
        Side::Buy => itch::Side::Buy,
        Side::Sell => itch::Side::Sell,
    }
}

fn itch_price(listing: &Listing, price: engine::Price) -> Price {
    let itch = listing.price_scale.wire_price(price);
    Price(u32::try_from(itch.max(0)).unwrap_or(u32::MAX))
}
