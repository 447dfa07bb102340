//! OUCH and funding messages to engine commands, and engine outcomes back to
//! the sequenced messages of each session's stream.
//!
//! Both directions are pure functions of their inputs, so the same code
//! builds the streams live and, at start-up, from the journal: every command
//! is journaled with an [`Origin`] record (which port and login sent it, and
//! the OUCH fields the engine does not keep, such as the ClOrdID), and
//! replaying the journal regenerates every stream byte for byte.
//!
//! # The origin record (journaled after the command, 35 bytes)
//!
//! ```text
//! offset  length  field
//!  0      1       channel: 'O' order entry (OUCH), 'F' funding
//!  1      6       login name, space padded
//!  7      1       the client message's type ('O','U','X','M','C','Q'; 'D','W','T','B')
//!  8      4       UserRefNum of the message (u32 BE; for U the replacement's)
//! 12      4       original UserRefNum (U) or the order's (X, M), u32 BE
//! 16     14       ClOrdID (O, U), else spaces
//! 30      1       Capacity (O), else space
//! 31      1       Intermarket Sweep (O, U), else space
//! 32      2       OUCH reject reason of a gateway reject (u16 BE), else 0
//! 34      1       Time In Force asked for (O, U), else space
//! ```

// Small keys looked up per message: FxHash, not SipHash (no keys come
// from clients unchecked: login names and accounts are the configuration's).
use rustc_hash::FxHashMap as HashMap;

use engine::{
    AccountId, AccountQuery, AccountStatus, AssetId, CancelOrder, CancelReason, Command,
    CommandHeader, Deposit, Event, GatewayReject, InstrumentId, MassCancel, NewOrder, OrderId,
    OrderPrice, OrderRef, RejectReason, ReplaceOrder, SelfTradePrevention, Side, Status,
    TimeInForce, Transfer, UserRefNum, Withdrawal,
};

use wire::Catalogue;
use wire::catalogue::wire_quantity;
use wire::trading_day::time_of_day_ns;

use crate::funding;
use crate::ouch::{self, Inbound, Options, Outbound};

/// The port a message came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    OrderEntry,
    Funding,
}

impl Channel {
    fn byte(self) -> u8 {
        match self {
            Channel::OrderEntry => b'O',
            Channel::Funding => b'F',
        }
    }

    fn from_byte(byte: u8) -> Option<Channel> {
        match byte {
            b'O' => Some(Channel::OrderEntry),
            b'F' => Some(Channel::Funding),
            _ => None,
        }
    }
}

/// The bytes journaled after each command from a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OriginRecord {
    pub channel: Channel,
    pub login: [u8; 6],
    pub message_type: u8,
    pub user_ref_num: u32,
    pub original_user_ref_num: u32,
    pub client_order_id: [u8; 14],
    pub capacity: u8,
    pub intermarket_sweep: u8,
    pub gateway_reason: u16,
    pub time_in_force: u8,
}

impl OriginRecord {
    pub const BYTES: usize = 35;

    fn new(channel: Channel, login: [u8; 6], message_type: u8) -> OriginRecord {
        OriginRecord {
            channel,
            login,
            message_type,
            user_ref_num: 0,
            original_user_ref_num: 0,
            client_order_id: [b' '; 14],
            capacity: b' ',
            intermarket_sweep: b' ',
            gateway_reason: 0,
            time_in_force: b' ',
        }
    }

    pub fn encode(&self) -> [u8; OriginRecord::BYTES] {
        let mut out = [0u8; OriginRecord::BYTES];
        out[0] = self.channel.byte();
        out[1..7].copy_from_slice(&self.login);
        out[7] = self.message_type;
        out[8..12].copy_from_slice(&self.user_ref_num.to_be_bytes());
        out[12..16].copy_from_slice(&self.original_user_ref_num.to_be_bytes());
        out[16..30].copy_from_slice(&self.client_order_id);
        out[30] = self.capacity;
        out[31] = self.intermarket_sweep;
        out[32..34].copy_from_slice(&self.gateway_reason.to_be_bytes());
        out[34] = self.time_in_force;
        out
    }

    /// `None` for anything that is not an origin record (commands from
    /// genesis or other tools have none).
    pub fn decode(bytes: &[u8]) -> Option<OriginRecord> {
        let bytes: &[u8; OriginRecord::BYTES] = bytes.try_into().ok()?;
        let u32_at = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Some(OriginRecord {
            channel: Channel::from_byte(bytes[0])?,
            login: bytes[1..7].try_into().ok()?,
            message_type: bytes[7],
            user_ref_num: u32_at(8),
            original_user_ref_num: u32_at(12),
            client_order_id: bytes[16..30].try_into().ok()?,
            capacity: bytes[30],
            intermarket_sweep: bytes[31],
            gateway_reason: u16::from_be_bytes([bytes[32], bytes[33]]),
            time_in_force: bytes[34],
        })
    }
}

/// A login's name as the 6 space-padded bytes of the origin record.
pub fn login_field(name: &str) -> [u8; 6] {
    let mut field = [b' '; 6];
    for (slot, byte) in field.iter_mut().zip(name.bytes()) {
        *slot = byte.to_ascii_uppercase();
    }
    field
}

/// OUCH reject reasons this gateway sends. Codes from NASDAQ's OUCH 5.0
/// table where one means the same; `0x0100 + engine code` where none does
/// (documented in `docs/protocol.md`).
pub mod reasons {
    /// Invalid display type.
    pub const INVALID_DISPLAY: u16 = 0x0003;
    /// Halted.
    pub const HALTED: u16 = 0x0007;
    /// Intermarket sweep not allowed.
    pub const ISO_NOT_ALLOWED: u16 = 0x0008;
    /// Invalid side.
    pub const INVALID_SIDE: u16 = 0x0009;
    /// Firm not authorised (unknown or suspended account).
    pub const FIRM_NOT_AUTHORIZED: u16 = 0x000C;
    /// Invalid minimum quantity.
    pub const INVALID_MIN_QUANTITY: u16 = 0x000D;
    /// Other.
    pub const OTHER: u16 = 0x000F;
    /// Invalid quantity.
    pub const INVALID_QUANTITY: u16 = 0x0013;
    /// Invalid cross order.
    pub const INVALID_CROSS: u16 = 0x0014;
    /// Invalid symbol.
    pub const INVALID_SYMBOL: u16 = 0x0017;
    /// Invalid price.
    pub const INVALID_PRICE: u16 = 0x001D;
    /// Exceeds maximum allowed notional value.
    pub const EXCEEDS_NOTIONAL: u16 = 0x001F;
    /// Our extension: the engine's reject code plus this.
    pub const ENGINE_BASE: u16 = 0x0100;
    /// An OUCH feature this exchange does not support (time in force,
    /// option, order type): our extension.
    pub const UNSUPPORTED: u16 = 0x01FF;
}

/// The OUCH reason for an engine rejection.
pub fn ouch_reason(reason: RejectReason) -> u16 {
    use RejectReason as R;
    match reason {
        R::UnknownAccount | R::AccountSuspended => reasons::FIRM_NOT_AUTHORIZED,
        R::UnknownInstrument => reasons::INVALID_SYMBOL,
        R::InstrumentHalted => reasons::HALTED,
        R::PriceOffTick | R::PriceOutsideBand => reasons::INVALID_PRICE,
        R::QuantityOffLot | R::QuantityOutOfRange | R::QuantityNotReduced => {
            reasons::INVALID_QUANTITY
        }
        R::Overflow => reasons::EXCEEDS_NOTIONAL,
        other => reasons::ENGINE_BASE + other.code(),
    }
}

/// Why an inbound message became a gateway reject rather than an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: u16,
    pub what: &'static str,
}

fn refuse(reason: u16, what: &'static str) -> Refusal {
    Refusal { reason, what }
}

/// One session's numbered messages.
#[derive(Debug, Default)]
pub struct Stream {
    data: Vec<u8>,
    /// `ends[i]` is where message `i + 1` ends in `data`.
    ends: Vec<usize>,
}

impl Stream {
    /// Messages in the stream (the last sequence number).
    pub fn len(&self) -> u64 {
        self.ends.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Message `sequence` (from 1).
    pub fn message(&self, sequence: u64) -> Option<&[u8]> {
        let index = usize::try_from(sequence.checked_sub(1)?).ok()?;
        let end = *self.ends.get(index)?;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        Some(&self.data[start..end])
    }

    /// Bytes of the messages from `sequence` on.
    pub fn bytes_from(&self, sequence: u64) -> usize {
        let Some(index) = sequence.checked_sub(1) else {
            return self.data.len();
        };
        match usize::try_from(index).ok().and_then(|i| i.checked_sub(1)) {
            None => self.data.len(),
            Some(before) => self
                .ends
                .get(before)
                .map_or(0, |&end| self.data.len() - end),
        }
    }

    fn push_ouch(&mut self, message: &Outbound) {
        message.encode(&mut self.data);
        self.ends.push(self.data.len());
    }

    fn push_funding(&mut self, reply: &funding::Reply) {
        reply.encode(&mut self.data);
        self.ends.push(self.data.len());
    }
}

/// Where a stream belongs: a port and a login (by its index in the login
/// table).
pub type StreamKey = (Channel, usize);

/// The gateway's view of the exchange and every session's stream.
#[derive(Debug)]
pub struct Translator {
    /// Login names (origin field) → index.
    logins: HashMap<[u8; 6], usize>,
    /// Account → its trading login.
    traders: HashMap<AccountId, usize>,
    /// Per login: its self-trade prevention.
    self_trade: Vec<SelfTradePrevention>,
    catalogue: Catalogue,
    /// End-of-day commands applied: the trading day, part of every engine
    /// user reference (`day << 32 | UserRefNum`).
    day: u64,
    streams: HashMap<StreamKey, Stream>,
    /// Whether the last command applied ended the trading day.
    day_ended: bool,
}

/// A login as the translator needs it.
#[derive(Clone, Debug)]
pub struct TranslatorLogin {
    pub name: String,
    pub account: Option<AccountId>,
    pub trades: bool,
    pub self_trade: SelfTradePrevention,
}

impl Translator {
    /// # Errors
    /// Two trading logins on one account (replies are routed by account).
    pub fn new(logins: &[TranslatorLogin]) -> Result<Translator, String> {
        let mut names = HashMap::default();
        let mut traders = HashMap::default();
        for (index, login) in logins.iter().enumerate() {
            names.insert(login_field(&login.name), index);
            if login.trades
                && let Some(account) = login.account
                && traders.insert(account, index).is_some()
            {
                return Err(format!(
                    "account {account} has more than one trading login; replies are routed by \
                     account, so each account may have one"
                ));
            }
        }
        Ok(Translator {
            logins: names,
            traders,
            self_trade: logins.iter().map(|login| login.self_trade).collect(),
            catalogue: Catalogue::new(),
            day: 0,
            streams: HashMap::default(),
            day_ended: false,
        })
    }

    /// The trading day (end-of-day commands applied so far).
    pub fn day(&self) -> u64 {
        self.day
    }

    pub fn stream(&self, key: StreamKey) -> Option<&Stream> {
        self.streams.get(&key)
    }

    /// Drops every stream: a new trading day starts numbering from 1.
    pub fn take_day_ended(&mut self) -> bool {
        std::mem::take(&mut self.day_ended)
    }

    pub fn clear_streams(&mut self) {
        self.streams.clear();
    }

    fn engine_urn(&self, user_ref_num: u32) -> UserRefNum {
        UserRefNum((self.day << 32) | u64::from(user_ref_num))
    }

    // -----------------------------------------------------------------
    // Inbound.
    // -----------------------------------------------------------------

    /// The command for an OUCH message from `login` (its index) on
    /// `account`, with its origin record. A message the exchange does not
    /// support becomes a [`GatewayReject`] command (journaled like any
    /// other, so the reply replays) and the refusal is returned for the log.
    pub fn order_entry(
        &self,
        login: usize,
        login_name: [u8; 6],
        account: AccountId,
        message: &Inbound,
    ) -> (Command, OriginRecord, Option<Refusal>) {
        let mut origin = OriginRecord::new(Channel::OrderEntry, login_name, message.message_type());
        let self_trade = self
            .self_trade
            .get(login)
            .copied()
            .unwrap_or(SelfTradePrevention::CancelNewest);
        let refused = |origin: &mut OriginRecord, user_ref_num: u32, refusal: Refusal| {
            origin.gateway_reason = refusal.reason;
            (
                Command::GatewayReject(GatewayReject {
                    account,
                    user_ref_num: if user_ref_num == 0 {
                        UserRefNum(0)
                    } else {
                        self.engine_urn(user_ref_num)
                    },
                }),
                *origin,
                Some(refusal),
            )
        };
        match message {
            Inbound::EnterOrder(order) => {
                origin.user_ref_num = order.user_ref_num;
                origin.client_order_id = *order.client_order_id.as_bytes();
                origin.capacity = order.capacity.byte();
                origin.time_in_force = order.time_in_force.byte();
                origin.intermarket_sweep = order.intermarket_sweep.byte();
                match self.new_order(account, order, self_trade) {
                    Ok(command) => (command, origin, None),
                    Err(refusal) => refused(&mut origin, order.user_ref_num, refusal),
                }
            }
            Inbound::ReplaceOrder(replace) => {
                origin.user_ref_num = replace.user_ref_num;
                origin.original_user_ref_num = replace.original_user_ref_num;
                origin.client_order_id = *replace.client_order_id.as_bytes();
                origin.time_in_force = replace.time_in_force.byte();
                origin.intermarket_sweep = replace.intermarket_sweep.byte();
                match self.replace_order(account, replace) {
                    Ok(command) => (command, origin, None),
                    Err(refusal) => refused(&mut origin, replace.user_ref_num, refusal),
                }
            }
            Inbound::CancelOrder(cancel) => {
                origin.original_user_ref_num = cancel.user_ref_num;
                if cancel.options != Options::NONE && cancel.options.user_ref_index.is_none() {
                    return refused(
                        &mut origin,
                        0,
                        refuse(reasons::UNSUPPORTED, "cancel options"),
                    );
                }
                (
                    self.reduce(account, cancel.user_ref_num, cancel.quantity),
                    origin,
                    None,
                )
            }
            Inbound::ModifyOrder(modify) => {
                origin.original_user_ref_num = modify.user_ref_num;
                if modify.options != Options::NONE && modify.options.user_ref_index.is_none() {
                    return refused(
                        &mut origin,
                        0,
                        refuse(reasons::UNSUPPORTED, "modify options"),
                    );
                }
                // The side cannot change (no short sales): T and E are
                // refused. A quantity reduction is a partial cancel; the
                // gateway does not know the order's side, so B and S are
                // not checked against it (docs/protocol.md).
                if engine_side(modify.side).is_err() {
                    return refused(
                        &mut origin,
                        0,
                        refuse(reasons::INVALID_SIDE, "a side change"),
                    );
                }
                (
                    self.reduce(account, modify.user_ref_num, modify.quantity),
                    origin,
                    None,
                )
            }
            Inbound::MassCancelRequest(mass) => {
                origin.user_ref_num = mass.user_ref_num;
                origin.client_order_id[..4].copy_from_slice(mass.firm.as_bytes());
                origin.client_order_id[4..12].copy_from_slice(mass.symbol.as_bytes());
                if mass.options != Options::NONE {
                    return refused(
                        &mut origin,
                        mass.user_ref_num,
                        refuse(reasons::UNSUPPORTED, "mass cancel by side, group or index"),
                    );
                }
                let instrument = if *mass.symbol.as_bytes() == [b' '; 8] {
                    None
                } else {
                    match self.catalogue.by_symbol(mass.symbol.as_bytes()) {
                        Some(listing) => Some(listing.id),
                        None => {
                            return refused(
                                &mut origin,
                                mass.user_ref_num,
                                refuse(reasons::INVALID_SYMBOL, "unknown symbol"),
                            );
                        }
                    }
                };
                (
                    Command::MassCancel(MassCancel {
                        account,
                        instrument,
                    }),
                    origin,
                    None,
                )
            }
            Inbound::AccountQueryRequest(_) => (
                Command::AccountQuery(AccountQuery { account }),
                origin,
                None,
            ),
        }
    }

    /// Cancel Order and Modify Order: leave `quantity` open (0 cancels).
    fn reduce(&self, account: AccountId, user_ref_num: u32, quantity: u32) -> Command {
        Command::CancelOrder(CancelOrder {
            account,
            order: OrderRef::UserRef(self.engine_urn(user_ref_num)),
            quantity: engine::Quantity(u64::from(quantity)),
        })
    }

    fn listing(&self, symbol: &ouch::Symbol) -> Result<&wire::Listing, Refusal> {
        self.catalogue
            .by_symbol(symbol.as_bytes())
            .ok_or(refuse(reasons::INVALID_SYMBOL, "unknown symbol"))
    }

    fn new_order(
        &self,
        account: AccountId,
        order: &ouch::EnterOrder,
        self_trade: SelfTradePrevention,
    ) -> Result<Command, Refusal> {
        let side = engine_side(order.side)?;
        supported_order_options(&order.options, order.quantity)?;
        if order.display != ouch::Display::Visible {
            return Err(refuse(
                reasons::INVALID_DISPLAY,
                "only visible orders (Display Y)",
            ));
        }
        if order.cross_type != ouch::CrossType::ContinuousMarket {
            return Err(refuse(
                reasons::INVALID_CROSS,
                "only continuous-market orders (Cross Type N)",
            ));
        }
        let time_in_force = match order.time_in_force {
            ouch::TimeInForce::Day => TimeInForce::Day,
            ouch::TimeInForce::ImmediateOrCancel => {
                if order.options.min_quantity == Some(order.quantity) {
                    TimeInForce::FillOrKill
                } else {
                    TimeInForce::ImmediateOrCancel
                }
            }
            // No extended-hours session: good till extended hours rests
            // until the end of the day, like a Day order. OUCH numbers
            // orders by UserRefNum within a day, so no order entered over
            // OUCH may outlive its day.
            ouch::TimeInForce::GoodTillExtendedHours => TimeInForce::Day,
            _ => {
                return Err(refuse(
                    reasons::UNSUPPORTED,
                    "time in force (only 0 Day, 3 IOC and 5 GTX)",
                ));
            }
        };
        let listing = self.listing(&order.symbol)?;
        let price = listing
            .price_scale
            .engine_price(order.price.0)
            .ok_or(refuse(reasons::INVALID_PRICE, "price not representable"))?;
        Ok(Command::NewOrder(NewOrder {
            account,
            user_ref_num: self.engine_urn(order.user_ref_num),
            instrument: listing.id,
            side,
            price: OrderPrice::Limit(price),
            quantity: engine::Quantity(u64::from(order.quantity)),
            time_in_force,
            post_only: order.options.post_only == Some(ouch::PostOnly::PostOnly),
            self_trade,
        }))
    }

    fn replace_order(
        &self,
        account: AccountId,
        replace: &ouch::ReplaceOrder,
    ) -> Result<Command, Refusal> {
        supported_order_options(&replace.options, replace.quantity)?;
        if replace.options.min_quantity.is_some() {
            return Err(refuse(
                reasons::INVALID_MIN_QUANTITY,
                "minimum quantity on a replace",
            ));
        }
        if replace.display != ouch::Display::Visible {
            return Err(refuse(
                reasons::INVALID_DISPLAY,
                "only visible orders (Display Y)",
            ));
        }
        // A replaced order keeps its time in force; one that rests is a
        // Day order (0 or 5), so an IOC replace would not mean what it says.
        if !matches!(
            replace.time_in_force,
            ouch::TimeInForce::Day | ouch::TimeInForce::GoodTillExtendedHours
        ) {
            return Err(refuse(
                reasons::UNSUPPORTED,
                "a replace keeps the order's time in force (0 or 5)",
            ));
        }
        // The price converts with the order's instrument, which a Replace
        // does not name and the gateway does not track: it is refused
        // unless every listing converts prices alike (true of the default
        // configuration, where every instrument is quoted in USD).
        let Some(price_scale) = self.catalogue.common_price_scale() else {
            return Err(refuse(
                reasons::UNSUPPORTED,
                "a replace where instruments are quoted at different scales",
            ));
        };
        let price = price_scale
            .engine_price(replace.price.0)
            .ok_or(refuse(reasons::INVALID_PRICE, "price not representable"))?;
        Ok(Command::ReplaceOrder(ReplaceOrder {
            account,
            order: OrderRef::UserRef(self.engine_urn(replace.original_user_ref_num)),
            new_user_ref_num: self.engine_urn(replace.user_ref_num),
            price,
            quantity: engine::Quantity(u64::from(replace.quantity)),
        }))
    }

    /// The command for a funding request from `login`.
    pub fn funding(
        &self,
        login_name: [u8; 6],
        request: &funding::Request,
    ) -> (Command, OriginRecord) {
        let origin = OriginRecord::new(Channel::Funding, login_name, request.message_type());
        let command = match *request {
            funding::Request::Deposit(f) => Command::Deposit(Deposit {
                account: AccountId(f.account),
                asset: AssetId(f.asset),
                amount: f.amount,
                transfer_id: engine::TransferId(f.transfer_id),
            }),
            funding::Request::Withdrawal(f) => Command::Withdrawal(Withdrawal {
                account: AccountId(f.account),
                asset: AssetId(f.asset),
                amount: f.amount,
                transfer_id: engine::TransferId(f.transfer_id),
            }),
            funding::Request::Transfer(t) => Command::Transfer(Transfer {
                from: AccountId(t.from),
                to: AccountId(t.to),
                asset: AssetId(t.asset),
                amount: t.amount,
                transfer_id: engine::TransferId(t.transfer_id),
            }),
            funding::Request::BalanceQuery { account } => Command::AccountQuery(AccountQuery {
                account: AccountId(account),
            }),
        };
        (command, origin)
    }

    // -----------------------------------------------------------------
    // Outbound.
    // -----------------------------------------------------------------

    /// Turns one applied command into the sequenced messages of the
    /// streams it concerns. Returns the streams that grew.
    pub fn applied(
        &mut self,
        header: CommandHeader,
        command: &Command,
        origin: &[u8],
        status: Status,
        events: &[Event],
        touched: &mut Vec<StreamKey>,
    ) {
        let timestamp = time_of_day_ns(header.timestamp_ns);
        let origin = OriginRecord::decode(origin);
        let origin_login = origin.and_then(|o| self.logins.get(&o.login).copied());
        for event in events {
            self.catalogue.observe(event);
        }
        match origin {
            Some(o) if o.channel == Channel::Funding => {
                if let Some(login) = origin_login {
                    self.funding_reply(header, command, status, events, login, touched);
                }
            }
            _ => self.order_messages(timestamp, command, origin, events, touched),
        }
        if matches!(command, Command::Admin(engine::AdminCommand::EndOfDay)) {
            self.day += 1;
            self.day_ended = true;
        }
    }

    fn trader_stream(
        &mut self,
        account: AccountId,
        touched: &mut Vec<StreamKey>,
    ) -> Option<&mut Stream> {
        let login = *self.traders.get(&account)?;
        let key = (Channel::OrderEntry, login);
        if !touched.contains(&key) {
            touched.push(key);
        }
        Some(self.streams.entry(key).or_default())
    }

    fn symbol(&self, instrument: InstrumentId) -> ouch::Symbol {
        self.catalogue
            .by_id(instrument)
            .and_then(|listing| ouch::Symbol::from_bytes(listing.symbol))
            .unwrap_or(ouch::Symbol::BLANK)
    }

    fn price(&self, instrument: InstrumentId, price: engine::Price) -> ouch::Price {
        ouch::Price(self.catalogue.wire_price(instrument, price))
    }

    #[allow(clippy::too_many_lines)]
    fn order_messages(
        &mut self,
        timestamp_ns: u64,
        command: &Command,
        origin: Option<OriginRecord>,
        events: &[Event],
        touched: &mut Vec<StreamKey>,
    ) {
        let o = origin.unwrap_or(OriginRecord::new(Channel::OrderEntry, [b' '; 6], 0));
        let client_order_id = ouch::ClOrdId::from_bytes(o.client_order_id).unwrap_or_default();
        let capacity = ouch::Capacity::from_byte(o.capacity).unwrap_or(ouch::Capacity::Agency);
        let intermarket_sweep = ouch::IntermarketSweep::from_byte(o.intermarket_sweep)
            .unwrap_or(ouch::IntermarketSweep::NotEligible);
        // Orders of this command that end the command resting.
        let booked = |order_id: OrderId| {
            events.iter().any(|event| {
                matches!(event, Event::OrderBooked { order_id: booked, .. } if *booked == order_id)
            })
        };
        for event in events {
            let message = match *event {
                Event::Rejected {
                    account: Some(account),
                    reason,
                    ..
                } => {
                    let message = match (command, o.message_type) {
                        (Command::CancelOrder(_), _) => {
                            Outbound::CancelReject(ouch::CancelAcknowledgement {
                                timestamp_ns,
                                user_ref_num: o.original_user_ref_num,
                                options: Options::NONE,
                            })
                        }
                        (Command::GatewayReject(_), b'X' | b'M') => {
                            Outbound::CancelReject(ouch::CancelAcknowledgement {
                                timestamp_ns,
                                user_ref_num: o.original_user_ref_num,
                                options: Options::NONE,
                            })
                        }
                        // Account queries and mass cancels of an unknown
                        // account have no OUCH answer but a rejection.
                        _ => {
                            let code = if reason == RejectReason::GatewayRejected {
                                o.gateway_reason
                            } else {
                                ouch_reason(reason)
                            };
                            Outbound::OrderRejected(ouch::OrderRejected {
                                timestamp_ns,
                                user_ref_num: o.user_ref_num,
                                reason: ouch::RejectReason::new(code).unwrap_or(
                                    ouch::RejectReason::new(reasons::OTHER).expect("assigned"),
                                ),
                                client_order_id,
                                options: Options::NONE,
                            })
                        }
                    };
                    Some((account, message))
                }
                Event::OrderAccepted {
                    order_id,
                    account,
                    user_ref_num,
                    instrument,
                    side,
                    price,
                    quantity,
                    time_in_force,
                    ..
                } => Some((
                    account,
                    Outbound::OrderAccepted(ouch::OrderAccepted {
                        timestamp_ns,
                        user_ref_num: user_ref_num.0 as u32,
                        side: ouch_side(side),
                        quantity: wire_quantity(quantity),
                        symbol: self.symbol(instrument),
                        price: self.price(instrument, price),
                        // What the client asked for (0 and 5 both rest as
                        // Day orders in the engine).
                        time_in_force: ouch::TimeInForce::from_byte(o.time_in_force)
                            .unwrap_or(ouch_time_in_force(time_in_force)),
                        display: ouch::Display::Visible,
                        order_reference_number: order_id.0,
                        capacity,
                        intermarket_sweep,
                        cross_type: ouch::CrossType::ContinuousMarket,
                        order_state: if booked(order_id) {
                            ouch::OrderState::Live
                        } else {
                            ouch::OrderState::Dead
                        },
                        client_order_id,
                        options: Options::NONE,
                    }),
                )),
                Event::OrderReplaced {
                    new_order_id,
                    account,
                    old_user_ref_num,
                    new_user_ref_num,
                    instrument,
                    side,
                    price,
                    quantity,
                    priority_kept,
                    ..
                } => Some((
                    account,
                    Outbound::OrderReplaced(ouch::OrderReplaced {
                        timestamp_ns,
                        original_user_ref_num: old_user_ref_num.0 as u32,
                        user_ref_num: new_user_ref_num.0 as u32,
                        side: ouch_side(side),
                        quantity: wire_quantity(quantity),
                        symbol: self.symbol(instrument),
                        price: self.price(instrument, price),
                        time_in_force: ouch::TimeInForce::from_byte(o.time_in_force)
                            .unwrap_or(ouch::TimeInForce::Day),
                        display: ouch::Display::Visible,
                        order_reference_number: new_order_id.0,
                        capacity,
                        intermarket_sweep,
                        cross_type: ouch::CrossType::ContinuousMarket,
                        order_state: if priority_kept || booked(new_order_id) {
                            ouch::OrderState::Live
                        } else {
                            ouch::OrderState::Dead
                        },
                        client_order_id,
                        options: Options::NONE,
                    }),
                )),
                Event::Fill {
                    match_number,
                    instrument,
                    price,
                    quantity,
                    maker_account,
                    maker_user_ref_num,
                    taker_account,
                    taker_user_ref_num,
                    ..
                } => {
                    let price = self.price(instrument, price);
                    for (account, user_ref_num, flag) in [
                        (maker_account, maker_user_ref_num, b'A'),
                        (taker_account, taker_user_ref_num, b'R'),
                    ] {
                        let message = Outbound::OrderExecuted(ouch::OrderExecuted {
                            timestamp_ns,
                            user_ref_num: user_ref_num.0 as u32,
                            quantity: wire_quantity(quantity),
                            price,
                            liquidity_flag: ouch::Code::new(flag).expect("printable"),
                            match_number: match_number.0,
                            options: Options::NONE,
                        });
                        if let Some(stream) = self.trader_stream(account, touched) {
                            stream.push_ouch(&message);
                        }
                    }
                    None
                }
                Event::OrderCanceled {
                    account,
                    user_ref_num,
                    side,
                    canceled,
                    remaining,
                    reason,
                    ..
                } => {
                    let message = if o.message_type == b'M'
                        && reason == CancelReason::Requested
                        && matches!(command, Command::CancelOrder(_))
                    {
                        Outbound::OrderModified(ouch::OrderModified {
                            timestamp_ns,
                            user_ref_num: user_ref_num.0 as u32,
                            side: ouch_side(side),
                            quantity: wire_quantity(remaining),
                            options: Options::NONE,
                        })
                    } else {
                        Outbound::OrderCanceled(ouch::OrderCanceled {
                            timestamp_ns,
                            user_ref_num: user_ref_num.0 as u32,
                            quantity: wire_quantity(canceled),
                            reason: ouch_cancel_reason(reason),
                            options: Options::NONE,
                        })
                    };
                    Some((account, message))
                }
                Event::MassCanceled { account, .. } if o.message_type == b'C' => {
                    let mut firm = [b' '; 4];
                    firm.copy_from_slice(&o.client_order_id[..4]);
                    let mut symbol = [b' '; 8];
                    symbol.copy_from_slice(&o.client_order_id[4..12]);
                    Some((
                        account,
                        Outbound::MassCancelResponse(ouch::MassCancelResponse {
                            timestamp_ns,
                            user_ref_num: o.user_ref_num,
                            firm: ouch::Mpid::from_bytes(firm).unwrap_or_default(),
                            symbol: ouch::Symbol::from_bytes(symbol).unwrap_or(ouch::Symbol::BLANK),
                            options: Options::NONE,
                        }),
                    ))
                }
                Event::AccountState {
                    account,
                    last_user_ref_num,
                    ..
                } if o.message_type == b'Q' => {
                    let today = last_user_ref_num.0 >> 32 == self.day;
                    let last = if today { last_user_ref_num.0 as u32 } else { 0 };
                    Some((
                        account,
                        Outbound::AccountQueryResponse(ouch::AccountQueryResponse {
                            timestamp_ns,
                            next_user_ref_num: last.saturating_add(1),
                            options: Options::NONE,
                        }),
                    ))
                }
                _ => None,
            };
            if let Some((account, message)) = message
                && let Some(stream) = self.trader_stream(account, touched)
            {
                stream.push_ouch(&message);
            }
        }
    }

    fn funding_reply(
        &mut self,
        header: CommandHeader,
        command: &Command,
        status: Status,
        events: &[Event],
        login: usize,
        touched: &mut Vec<StreamKey>,
    ) {
        let key = (Channel::Funding, login);
        let timestamp_ns = header.timestamp_ns;
        let request = match *command {
            Command::Deposit(d) => Some((
                funding::FundingKind::Deposit,
                d.transfer_id,
                d.account,
                AccountId(0),
                d.asset,
                d.amount,
            )),
            Command::Withdrawal(w) => Some((
                funding::FundingKind::Withdrawal,
                w.transfer_id,
                w.account,
                AccountId(0),
                w.asset,
                w.amount,
            )),
            Command::Transfer(t) => Some((
                funding::FundingKind::Transfer,
                t.transfer_id,
                t.from,
                t.to,
                t.asset,
                t.amount,
            )),
            _ => None,
        };
        let reply = match (request, status) {
            (Some((kind, transfer_id, account, to, asset, amount)), Status::Applied) => {
                funding::Reply::Applied(funding::Applied {
                    timestamp_ns,
                    transfer_id: transfer_id.0,
                    kind,
                    repeat: false,
                    account: account.0,
                    to: to.0,
                    asset: asset.0,
                    amount,
                })
            }
            (Some((kind, transfer_id, account, to, asset, amount)), Status::Duplicate) => {
                let original = events.iter().find_map(|event| match *event {
                    Event::FundingDuplicate { original, .. } => Some(original),
                    _ => None,
                });
                match original.flatten() {
                    None => funding::Reply::Applied(funding::Applied {
                        timestamp_ns,
                        transfer_id: transfer_id.0,
                        kind,
                        repeat: true,
                        account: account.0,
                        to: to.0,
                        asset: asset.0,
                        amount,
                    }),
                    Some(reason) => funding::Reply::Rejected(funding::Rejected {
                        timestamp_ns,
                        transfer_id: transfer_id.0,
                        kind,
                        repeat: true,
                        account: account.0,
                        reason: reason.code() as u8,
                    }),
                }
            }
            (Some((kind, transfer_id, account, _, _, _)), Status::Rejected(reason)) => {
                funding::Reply::Rejected(funding::Rejected {
                    timestamp_ns,
                    transfer_id: transfer_id.0,
                    kind,
                    repeat: false,
                    account: account.0,
                    reason: reason.code() as u8,
                })
            }
            (None, _) => {
                let Command::AccountQuery(query) = *command else {
                    return;
                };
                let mut report = funding::BalanceReport {
                    timestamp_ns,
                    account: query.account.0,
                    suspended: false,
                    balances: Vec::new(),
                };
                for event in events {
                    match *event {
                        Event::AccountState { status, .. } => {
                            report.suspended = status == AccountStatus::Suspended;
                        }
                        Event::BalanceReport {
                            asset,
                            available,
                            held,
                            ..
                        } => report.balances.push(funding::AssetBalance {
                            asset: asset.0,
                            available,
                            held,
                        }),
                        _ => {}
                    }
                }
                if let Status::Rejected(reason) = status {
                    funding::Reply::Rejected(funding::Rejected {
                        timestamp_ns,
                        transfer_id: 0,
                        kind: funding::FundingKind::Deposit,
                        repeat: false,
                        account: query.account.0,
                        reason: reason.code() as u8,
                    })
                } else {
                    funding::Reply::BalanceReport(report)
                }
            }
        };
        if !touched.contains(&key) {
            touched.push(key);
        }
        self.streams.entry(key).or_default().push_funding(&reply);
    }
}

fn supported_order_options(options: &Options, quantity: u32) -> Result<(), Refusal> {
    let unsupported = Options {
        // Accepted: firm, customer type, handle instructions (no effect),
        // post only, user reference index, and Min Qty equal to the
        // quantity (fill or kill).
        firm: None,
        customer_type: None,
        handle_inst: None,
        post_only: None,
        user_ref_index: None,
        min_quantity: options.min_quantity.filter(|&min| min != quantity),
        ..*options
    };
    if unsupported == Options::NONE {
        Ok(())
    } else if unsupported.min_quantity.is_some() {
        Err(refuse(
            reasons::INVALID_MIN_QUANTITY,
            "Min Qty other than the whole quantity",
        ))
    } else {
        Err(refuse(
            reasons::UNSUPPORTED,
            "an unsupported option (see docs/protocol.md)",
        ))
    }
}

fn engine_side(side: ouch::Side) -> Result<Side, Refusal> {
    match side {
        ouch::Side::Buy => Ok(Side::Buy),
        ouch::Side::Sell => Ok(Side::Sell),
        _ => Err(refuse(reasons::INVALID_SIDE, "short sales (cash accounts)")),
    }
}

fn ouch_side(side: Side) -> ouch::Side {
    match side {
        Side::Buy => ouch::Side::Buy,
        Side::Sell => ouch::Side::Sell,
    }
}

fn ouch_time_in_force(time_in_force: TimeInForce) -> ouch::TimeInForce {
    match time_in_force {
        TimeInForce::Day => ouch::TimeInForce::Day,
        TimeInForce::GoodTillCancel => ouch::TimeInForce::GoodTillExtendedHours,
        TimeInForce::ImmediateOrCancel | TimeInForce::FillOrKill => {
            ouch::TimeInForce::ImmediateOrCancel
        }
    }
}

fn ouch_cancel_reason(reason: CancelReason) -> ouch::CancelReason {
    match reason {
        CancelReason::Requested | CancelReason::MassCancel => ouch::CancelReason::UserRequested,
        CancelReason::ImmediateOrCancel | CancelReason::FillOrKill => {
            ouch::CancelReason::ImmediateOrCancel
        }
        CancelReason::SelfTrade => ouch::CancelReason::SelfMatchPrevention,
        CancelReason::EndOfDay => ouch::CancelReason::Closed,
    }
}
