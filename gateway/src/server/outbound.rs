//! The outbound proxy: one applied engine command (its outcome and events)
//! becomes the sequenced OUCH and funding messages of the sessions it
//! concerns, appended to the [`SessionStreams`].
//!
//! Order-entry messages go to the login that trades the event's account
//! (a fill reaches both sides); a funding reply goes to the funding login
//! that sent the request. The OUCH fields the engine does not keep come
//! from the command's origin record. A pure function of the journal, so the
//! same code builds the streams live and, at start-up, from the journal.
//!
//! | engine | OUCH |
//! |---|---|
//! | `OrderAccepted` | Order Accepted `A` (state L if it rests, else D) |
//! | `OrderReplaced` | Order Replaced `U` |
//! | `Fill` | Order Executed `E` to the maker (flag A) and the taker (R) |
//! | `OrderCanceled` | Order Canceled `C`, or Order Modified `M` for a Modify |
//! | `MassCanceled` of a Mass Cancel Request | Mass Cancel Response `X` |
//! | `AccountState` of an Account Query | Account Query Response `Q` |
//! | `Rejected` | Cancel Reject `I` (cancel, modify), else Order Rejected `J` |

use engine::{
    AccountId, AccountStatus, AdminCommand, CancelReason, Command, CommandHeader, Event, OrderId,
    RejectReason, Side, Status, TimeInForce,
};
use wire::catalogue::wire_quantity;
use wire::trading_day::time_of_day_ns;

use super::directory::Directory;
use super::origin::{Channel, OriginRecord};
use super::reasons::{self, ouch_reason};
use super::streams::{StreamError, StreamSink};
use crate::funding::{self, FundingKind};
use crate::ouch::{self, Options, Outbound};

/// One command as the engine applied it.
#[derive(Clone, Copy, Debug)]
pub struct AppliedCommand<'a> {
    pub header: CommandHeader,
    pub command: &'a Command,
    /// The journaled origin bytes (see [`OriginRecord`]).
    pub origin: &'a [u8],
    pub status: Status,
    pub events: &'a [Event],
}

/// What routing a command did besides filling streams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Routed {
    /// The command ended the trading day: the sessions get End of Session
    /// and the streams start anew (the caller clears them once sent).
    pub day_ended: bool,
}

/// Encodes outcomes into the streams (one reused buffer: no allocation per
/// message once warm).
#[derive(Debug, Default)]
pub struct OutboundProxy {
    scratch: Vec<u8>,
    origin_errors: u64,
}

impl OutboundProxy {
    pub fn new() -> OutboundProxy {
        OutboundProxy::default()
    }

    /// Origin records that could not be read (logged; their command's
    /// messages were routed as if it had no origin).
    pub fn origin_errors(&self) -> u64 {
        self.origin_errors
    }

    /// Appends the messages of one applied command to the streams it
    /// concerns and keeps the directory current. `Err`: a stream's store
    /// failed (the streams can no longer follow the journal).
    pub fn applied<S: StreamSink>(
        &mut self,
        directory: &mut Directory,
        streams: &mut S,
        applied: &AppliedCommand<'_>,
    ) -> Result<Routed, StreamError> {
        let origin = self.origin(applied);
        for event in applied.events {
            directory.observe(event);
        }
        match origin {
            Some(record) if record.channel == Channel::Funding => {
                if let Some(login) = directory.login_index(&record.login)
                    && let Some(reply) = funding_reply(applied)
                {
                    self.scratch.clear();
                    reply.encode(&mut self.scratch);
                    streams.append(
                        (Channel::Funding, login),
                        &self.scratch,
                        applied.header.sequence,
                    )?;
                }
            }
            _ => self.order_messages(directory, streams, applied, origin)?,
        }
        let day_ended = matches!(applied.command, Command::Admin(AdminCommand::EndOfDay));
        if day_ended {
            directory.end_day();
        }
        Ok(Routed { day_ended })
    }

    fn origin(&mut self, applied: &AppliedCommand<'_>) -> Option<OriginRecord> {
        match OriginRecord::decode(applied.origin) {
            Ok(record) => record,
            Err(error) => {
                if self.origin_errors == 0 {
                    tracing::error!(sequence = applied.header.sequence, %error,
                        "an origin record this gateway cannot read: its replies are not sent");
                }
                self.origin_errors += 1;
                None
            }
        }
    }

    fn order_messages<S: StreamSink>(
        &mut self,
        directory: &Directory,
        streams: &mut S,
        applied: &AppliedCommand<'_>,
        origin: Option<OriginRecord>,
    ) -> Result<(), StreamError> {
        let context = OrderContext::new(applied, origin);
        let scratch = &mut self.scratch;
        // By reference: an `Outbound` is large (over 200 bytes), and moving
        // messages out of arrays and options showed in profiles as a tenth
        // of the gateway's thread.
        let mut emit = |account: AccountId, message: &Outbound| {
            let Some(login) = directory.trading_login(account) else {
                return Ok(());
            };
            streams
                .append_ouch(
                    (Channel::OrderEntry, login),
                    message,
                    scratch,
                    applied.header.sequence,
                )
                .map(drop)
        };
        for event in applied.events {
            order_event(directory, &context, event, &mut emit)?;
        }
        Ok(())
    }
}

/// What every OUCH message of one command shares.
#[derive(Debug)]
struct OrderContext<'a> {
    timestamp_ns: u64,
    command: &'a Command,
    events: &'a [Event],
    origin: OriginRecord,
    client_order_id: ouch::ClOrdId,
    capacity: ouch::Capacity,
    intermarket_sweep: ouch::IntermarketSweep,
}

impl<'a> OrderContext<'a> {
    fn new(applied: &AppliedCommand<'a>, origin: Option<OriginRecord>) -> OrderContext<'a> {
        // A command without an origin (admin, genesis) answers with blanks.
        let origin = origin.unwrap_or(OriginRecord::new(Channel::OrderEntry, [b' '; 6], 0));
        OrderContext {
            timestamp_ns: time_of_day_ns(applied.header.timestamp_ns),
            command: applied.command,
            events: applied.events,
            origin,
            client_order_id: ouch::ClOrdId::from_bytes(origin.client_order_id).unwrap_or_default(),
            capacity: ouch::Capacity::from_byte(origin.capacity).unwrap_or(ouch::Capacity::Agency),
            intermarket_sweep: ouch::IntermarketSweep::from_byte(origin.intermarket_sweep)
                .unwrap_or(ouch::IntermarketSweep::NotEligible),
        }
    }

    /// Whether `order_id` ends the command resting on the book.
    fn booked(&self, order_id: OrderId) -> bool {
        self.events.iter().any(|event| {
            matches!(event, Event::OrderBooked { order_id: booked, .. } if *booked == order_id)
        })
    }

    fn order_state(&self, live: bool) -> ouch::OrderState {
        if live {
            ouch::OrderState::Live
        } else {
            ouch::OrderState::Dead
        }
    }
}

/// An OUCH message and the account whose trading login receives it.
type Addressed = (AccountId, Outbound);

/// Hands the OUCH messages of one event (a fill has two) to `emit`.
fn order_event<E>(
    directory: &Directory,
    context: &OrderContext<'_>,
    event: &Event,
    emit: &mut impl FnMut(AccountId, &Outbound) -> Result<(), E>,
) -> Result<(), E> {
    let one = match *event {
        Event::Rejected {
            account: Some(account),
            reason,
            ..
        } => Some((account, rejected(context, reason))),
        Event::OrderAccepted { .. } => accepted(directory, context, event),
        Event::OrderReplaced { .. } => replaced(directory, context, event),
        Event::Fill { .. } => return executed(directory, context, event, emit),
        Event::OrderCanceled { .. } => canceled(context, event),
        Event::MassCanceled { account, .. } if context.origin.message_type == b'C' => {
            Some((account, mass_cancel_response(context)))
        }
        Event::AccountState {
            account,
            last_user_ref_num,
            ..
        } if context.origin.message_type == b'Q' => {
            let last = if directory.is_today(last_user_ref_num) {
                last_user_ref_num.0 as u32
            } else {
                0
            };
            Some((
                account,
                Outbound::AccountQueryResponse(ouch::AccountQueryResponse {
                    timestamp_ns: context.timestamp_ns,
                    next_user_ref_num: last.saturating_add(1),
                    options: Options::NONE,
                }),
            ))
        }
        _ => None,
    };
    match &one {
        Some((account, message)) => emit(*account, message),
        None => Ok(()),
    }
}

fn rejected(context: &OrderContext<'_>, reason: RejectReason) -> Outbound {
    let o = &context.origin;
    let cancel_reject = Outbound::CancelReject(ouch::CancelAcknowledgement {
        timestamp_ns: context.timestamp_ns,
        user_ref_num: o.original_user_ref_num,
        options: Options::NONE,
    });
    match (context.command, o.message_type) {
        (Command::CancelOrder(_), _) | (Command::GatewayReject(_), b'X' | b'M') => cancel_reject,
        // Account queries and mass cancels of an unknown account have no
        // OUCH answer but a rejection.
        _ => {
            let code = if reason == RejectReason::GatewayRejected {
                o.gateway_reason
            } else {
                ouch_reason(reason)
            };
            Outbound::OrderRejected(ouch::OrderRejected {
                timestamp_ns: context.timestamp_ns,
                user_ref_num: o.user_ref_num,
                reason: ouch::RejectReason::new(code)
                    .unwrap_or(ouch::RejectReason::new(reasons::OTHER).expect("assigned")),
                client_order_id: context.client_order_id,
                options: Options::NONE,
            })
        }
    }
}

fn accepted(directory: &Directory, context: &OrderContext<'_>, event: &Event) -> Option<Addressed> {
    let Event::OrderAccepted {
        order_id,
        account,
        user_ref_num,
        instrument,
        side,
        price,
        quantity,
        time_in_force,
        ..
    } = *event
    else {
        return None;
    };
    let catalogue = directory.catalogue();
    let message = Outbound::OrderAccepted(ouch::OrderAccepted {
        timestamp_ns: context.timestamp_ns,
        user_ref_num: user_ref_num.0 as u32,
        side: ouch_side(side),
        quantity: wire_quantity(quantity),
        symbol: ouch_symbol(directory, instrument),
        price: ouch::Price(catalogue.wire_price(instrument, price)),
        // What the client asked for (0 and 5 both rest as Day orders in
        // the engine).
        time_in_force: ouch::TimeInForce::from_byte(context.origin.time_in_force)
            .unwrap_or(ouch_time_in_force(time_in_force)),
        display: ouch::Display::Visible,
        order_reference_number: order_id.0,
        capacity: context.capacity,
        intermarket_sweep: context.intermarket_sweep,
        cross_type: ouch::CrossType::ContinuousMarket,
        order_state: context.order_state(context.booked(order_id)),
        client_order_id: context.client_order_id,
        options: Options::NONE,
    });
    Some((account, message))
}

fn replaced(directory: &Directory, context: &OrderContext<'_>, event: &Event) -> Option<Addressed> {
    let Event::OrderReplaced {
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
    } = *event
    else {
        return None;
    };
    let message = Outbound::OrderReplaced(ouch::OrderReplaced {
        timestamp_ns: context.timestamp_ns,
        original_user_ref_num: old_user_ref_num.0 as u32,
        user_ref_num: new_user_ref_num.0 as u32,
        side: ouch_side(side),
        quantity: wire_quantity(quantity),
        symbol: ouch_symbol(directory, instrument),
        price: ouch::Price(directory.catalogue().wire_price(instrument, price)),
        time_in_force: ouch::TimeInForce::from_byte(context.origin.time_in_force)
            .unwrap_or(ouch::TimeInForce::Day),
        display: ouch::Display::Visible,
        order_reference_number: new_order_id.0,
        capacity: context.capacity,
        intermarket_sweep: context.intermarket_sweep,
        cross_type: ouch::CrossType::ContinuousMarket,
        order_state: context.order_state(priority_kept || context.booked(new_order_id)),
        client_order_id: context.client_order_id,
        options: Options::NONE,
    });
    Some((account, message))
}

/// Order Executed to the maker (liquidity flag A, added) and the taker
/// (R, removed), both at the fill's price.
fn executed<E>(
    directory: &Directory,
    context: &OrderContext<'_>,
    event: &Event,
    emit: &mut impl FnMut(AccountId, &Outbound) -> Result<(), E>,
) -> Result<(), E> {
    let Event::Fill {
        match_number,
        instrument,
        price,
        quantity,
        maker_account,
        maker_user_ref_num,
        taker_account,
        taker_user_ref_num,
        ..
    } = *event
    else {
        return Ok(());
    };
    let price = ouch::Price(directory.catalogue().wire_price(instrument, price));
    let side = |user_ref_num: engine::UserRefNum, flag: u8| {
        Outbound::OrderExecuted(ouch::OrderExecuted {
            timestamp_ns: context.timestamp_ns,
            user_ref_num: user_ref_num.0 as u32,
            quantity: wire_quantity(quantity),
            price,
            liquidity_flag: ouch::Code::new(flag).expect("printable"),
            match_number: match_number.0,
            options: Options::NONE,
        })
    };
    emit(maker_account, &side(maker_user_ref_num, b'A'))?;
    emit(taker_account, &side(taker_user_ref_num, b'R'))
}

/// Order Canceled, or Order Modified when a Modify Order reduced it.
fn canceled(context: &OrderContext<'_>, event: &Event) -> Option<Addressed> {
    let Event::OrderCanceled {
        account,
        user_ref_num,
        side,
        canceled,
        remaining,
        reason,
        ..
    } = *event
    else {
        return None;
    };
    let modified = context.origin.message_type == b'M'
        && reason == CancelReason::Requested
        && matches!(context.command, Command::CancelOrder(_));
    let message = if modified {
        Outbound::OrderModified(ouch::OrderModified {
            timestamp_ns: context.timestamp_ns,
            user_ref_num: user_ref_num.0 as u32,
            side: ouch_side(side),
            quantity: wire_quantity(remaining),
            options: Options::NONE,
        })
    } else {
        Outbound::OrderCanceled(ouch::OrderCanceled {
            timestamp_ns: context.timestamp_ns,
            user_ref_num: user_ref_num.0 as u32,
            quantity: wire_quantity(canceled),
            reason: ouch_cancel_reason(reason),
            options: Options::NONE,
        })
    };
    Some((account, message))
}

/// The request's firm and symbol come back from the origin record's
/// ClOrdID field, where the adapter kept them.
fn mass_cancel_response(context: &OrderContext<'_>) -> Outbound {
    let o = &context.origin;
    let mut firm = [b' '; 4];
    firm.copy_from_slice(&o.client_order_id[..4]);
    let mut symbol = [b' '; 8];
    symbol.copy_from_slice(&o.client_order_id[4..12]);
    Outbound::MassCancelResponse(ouch::MassCancelResponse {
        timestamp_ns: context.timestamp_ns,
        user_ref_num: o.user_ref_num,
        firm: ouch::Mpid::from_bytes(firm).unwrap_or_default(),
        symbol: ouch::Symbol::from_bytes(symbol).unwrap_or(ouch::Symbol::BLANK),
        options: Options::NONE,
    })
}

fn ouch_symbol(directory: &Directory, instrument: engine::InstrumentId) -> ouch::Symbol {
    directory
        .catalogue()
        .by_id(instrument)
        .and_then(|listing| ouch::Symbol::from_bytes(listing.symbol))
        .unwrap_or(ouch::Symbol::BLANK)
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

// ---------------------------------------------------------------------
// Funding.
// ---------------------------------------------------------------------

/// The fields of a deposit, withdrawal or transfer its reply repeats.
#[derive(Clone, Copy, Debug)]
struct FundingRequest {
    kind: FundingKind,
    transfer_id: u64,
    /// The account (the from account of a transfer).
    account: u32,
    /// The to account of a transfer, else 0.
    to: u32,
    asset: u16,
    amount: u64,
}

impl FundingRequest {
    fn of(command: &Command) -> Option<FundingRequest> {
        let (kind, transfer_id, account, to, asset, amount) = match *command {
            Command::Deposit(d) => (
                FundingKind::Deposit,
                d.transfer_id,
                d.account,
                AccountId(0),
                d.asset,
                d.amount,
            ),
            Command::Withdrawal(w) => (
                FundingKind::Withdrawal,
                w.transfer_id,
                w.account,
                AccountId(0),
                w.asset,
                w.amount,
            ),
            Command::Transfer(t) => (
                FundingKind::Transfer,
                t.transfer_id,
                t.from,
                t.to,
                t.asset,
                t.amount,
            ),
            _ => return None,
        };
        Some(FundingRequest {
            kind,
            transfer_id: transfer_id.0,
            account: account.0,
            to: to.0,
            asset: asset.0,
            amount,
        })
    }

    fn applied(self, timestamp_ns: u64, repeat: bool) -> funding::Reply {
        funding::Reply::Applied(funding::Applied {
            timestamp_ns,
            transfer_id: self.transfer_id,
            kind: self.kind,
            repeat,
            account: self.account,
            to: self.to,
            asset: self.asset,
            amount: self.amount,
        })
    }

    fn rejected(self, timestamp_ns: u64, repeat: bool, reason: RejectReason) -> funding::Reply {
        funding::Reply::Rejected(funding::Rejected {
            timestamp_ns,
            transfer_id: self.transfer_id,
            kind: self.kind,
            repeat,
            account: self.account,
            reason: reason.code() as u8,
        })
    }
}

/// The funding reply to one applied command; `None` for a command that is
/// not a funding request.
fn funding_reply(applied: &AppliedCommand<'_>) -> Option<funding::Reply> {
    let timestamp_ns = applied.header.timestamp_ns;
    let Some(request) = FundingRequest::of(applied.command) else {
        return balance_reply(applied);
    };
    Some(match applied.status {
        Status::Applied => request.applied(timestamp_ns, false),
        Status::Rejected(reason) => request.rejected(timestamp_ns, false, reason),
        Status::Duplicate => {
            // A repeat answers as the first request did.
            let original = applied.events.iter().find_map(|event| match *event {
                Event::FundingDuplicate { original, .. } => Some(original),
                _ => None,
            });
            match original.flatten() {
                None => request.applied(timestamp_ns, true),
                Some(reason) => request.rejected(timestamp_ns, true, reason),
            }
        }
    })
}

/// A Balance Query's Balance Report, or its rejection (an unknown account:
/// kind D, transfer id 0).
fn balance_reply(applied: &AppliedCommand<'_>) -> Option<funding::Reply> {
    let Command::AccountQuery(query) = *applied.command else {
        return None;
    };
    let timestamp_ns = applied.header.timestamp_ns;
    if let Status::Rejected(reason) = applied.status {
        return Some(funding::Reply::Rejected(funding::Rejected {
            timestamp_ns,
            transfer_id: 0,
            kind: FundingKind::Deposit,
            repeat: false,
            account: query.account.0,
            reason: reason.code() as u8,
        }));
    }
    let mut report = funding::BalanceReport {
        timestamp_ns,
        account: query.account.0,
        suspended: false,
        balances: Vec::new(),
    };
    for event in applied.events {
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
    Some(funding::Reply::BalanceReport(report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{
        AccountQuery, CancelOrder, Deposit, GatewayReject, InstrumentId, MassCancel, MatchNumber,
        NewOrder, OrderPrice, OrderRef, Price, Quantity, SelfTradePrevention, TransferId,
        UserRefNum,
    };
    use wire::trading_day::DAY_NS;

    use crate::server::origin::login_field;
    use crate::server::streams::{SessionStreams, StreamCounts};
    use crate::server::test_support::{
        ACME, ALICE, ALICE_ACCOUNT, BOB, BOB_ACCOUNT, FUND, directory,
    };

    /// 09:30 on day 20,000 after the epoch.
    const TIMESTAMP_NS: u64 = 20_000 * DAY_NS + 34_200_000_000_000;
    const TIME_OF_DAY_NS: u64 = 34_200_000_000_000;

    /// Routes one command; returns the OUCH messages of Alice's and Bob's
    /// streams that it added.
    /// Every command also goes through a second proxy into
    /// [`StreamCounts`] (the snapshot agent's shadow, which counts without
    /// encoding), checked to agree with the streams.
    struct Harness {
        directory: Directory,
        streams: SessionStreams,
        proxy: OutboundProxy,
        counted: (Directory, StreamCounts, OutboundProxy),
        sequence: u64,
    }

    impl Harness {
        fn new(scale: u8) -> Harness {
            Harness {
                directory: directory(scale),
                streams: SessionStreams::temporary(Vec::new()),
                proxy: OutboundProxy::new(),
                counted: (directory(scale), StreamCounts::new(), OutboundProxy::new()),
                sequence: 0,
            }
        }

        /// The counts agree with the streams, message for message and
        /// byte for byte.
        fn check_counts(&self) {
            for stream in self.counted.1.state().streams {
                let key = (stream.channel, stream.login as usize);
                assert_eq!(self.streams.len(key), stream.len, "{key:?}");
                assert_eq!(
                    self.streams.bytes_from(key, 1) as u64,
                    stream.bytes,
                    "{key:?}"
                );
            }
            for key in [
                (Channel::OrderEntry, ALICE),
                (Channel::OrderEntry, BOB),
                (Channel::Funding, FUND),
            ] {
                let counted = self
                    .counted
                    .1
                    .state()
                    .streams
                    .iter()
                    .any(|stream| (stream.channel, stream.login as usize) == key);
                assert_eq!(counted, self.streams.len(key) > 0, "{key:?}");
            }
        }

        fn route(
            &mut self,
            command: Command,
            origin: &[u8],
            status: Status,
            events: &[Event],
        ) -> Routed {
            self.sequence += 1;
            let applied = AppliedCommand {
                header: CommandHeader {
                    sequence: self.sequence,
                    timestamp_ns: TIMESTAMP_NS,
                },
                command: &command,
                origin,
                status,
                events,
            };
            let routed = self
                .proxy
                .applied(&mut self.directory, &mut self.streams, &applied)
                .unwrap();
            let (directory, counts, proxy) = &mut self.counted;
            assert_eq!(proxy.applied(directory, counts, &applied).unwrap(), routed);
            if routed.day_ended {
                counts.clear();
            } else {
                self.check_counts();
            }
            routed
        }

        fn ouch(&self, login: usize) -> Vec<Outbound> {
            let key = (Channel::OrderEntry, login);
            (1..=self.streams.len(key))
                .map(|sequence| {
                    Outbound::decode(&self.streams.message(key, sequence).unwrap()).unwrap()
                })
                .collect()
        }

        fn funding(&self) -> Vec<funding::Reply> {
            let key = (Channel::Funding, FUND);
            (1..=self.streams.len(key))
                .map(|sequence| {
                    funding::Reply::decode(&self.streams.message(key, sequence).unwrap()).unwrap()
                })
                .collect()
        }
    }

    /// The `N` messages, or a failure naming what came instead.
    fn exactly<const N: usize>(messages: Vec<Outbound>) -> [Outbound; N] {
        messages
            .try_into()
            .unwrap_or_else(|messages| panic!("expected {N} messages, got {messages:?}"))
    }

    fn origin(message_type: u8, user_ref_num: u32, original: u32) -> OriginRecord {
        OriginRecord {
            user_ref_num,
            original_user_ref_num: original,
            client_order_id: *b"ORDER-7       ",
            capacity: b'P',
            intermarket_sweep: b'N',
            time_in_force: b'5',
            ..OriginRecord::new(Channel::OrderEntry, login_field("alice"), message_type)
        }
    }

    fn new_order() -> Command {
        Command::NewOrder(NewOrder {
            account: ALICE_ACCOUNT,
            user_ref_num: UserRefNum(7),
            instrument: ACME,
            side: Side::Buy,
            price: OrderPrice::Limit(Price(1234)),
            quantity: Quantity(100),
            time_in_force: TimeInForce::Day,
            post_only: false,
            self_trade: SelfTradePrevention::CancelOldest,
        })
    }

    fn accepted_event() -> Event {
        Event::OrderAccepted {
            order_id: OrderId(42),
            account: ALICE_ACCOUNT,
            user_ref_num: UserRefNum(7),
            instrument: ACME,
            side: Side::Buy,
            price: Price(1234),
            quantity: Quantity(100),
            time_in_force: TimeInForce::Day,
            market: false,
            post_only: false,
            self_trade: SelfTradePrevention::CancelOldest,
        }
    }

    fn booked_event() -> Event {
        Event::OrderBooked {
            order_id: OrderId(42),
            account: ALICE_ACCOUNT,
            instrument: ACME,
            side: Side::Buy,
            price: Price(1234),
            quantity: Quantity(100),
        }
    }

    fn canceled_event(reason: CancelReason) -> Event {
        Event::OrderCanceled {
            order_id: OrderId(42),
            account: ALICE_ACCOUNT,
            user_ref_num: UserRefNum(7),
            instrument: ACME,
            side: Side::Buy,
            canceled: Quantity(60),
            remaining: Quantity(40),
            reason,
        }
    }

    fn cancel() -> Command {
        Command::CancelOrder(CancelOrder {
            account: ALICE_ACCOUNT,
            order: OrderRef::UserRef(UserRefNum(7)),
            quantity: Quantity(0),
        })
    }

    #[test]
    fn accepted_and_booked_scales_the_price_and_keeps_the_client_fields() {
        // Quoted in cents: 1234 ticks are 12.3400.
        let mut harness = Harness::new(2);
        let origin = origin(b'O', 7, 0).encode();
        harness.route(
            new_order(),
            &origin,
            Status::Applied,
            &[accepted_event(), booked_event()],
        );
        let [Outbound::OrderAccepted(accepted)] = exactly(harness.ouch(ALICE)) else {
            panic!("one Order Accepted");
        };
        assert_eq!(accepted.timestamp_ns, TIME_OF_DAY_NS);
        assert_eq!(accepted.user_ref_num, 7);
        assert_eq!(accepted.price, ouch::Price(12_3400));
        assert_eq!(accepted.quantity, 100);
        assert_eq!(accepted.symbol, ouch::Symbol::new("ACME").unwrap());
        assert_eq!(accepted.side, ouch::Side::Buy);
        assert_eq!(accepted.order_reference_number, 42);
        assert_eq!(accepted.order_state, ouch::OrderState::Live);
        // What the client asked for (5), not the engine's Day.
        assert_eq!(
            accepted.time_in_force,
            ouch::TimeInForce::GoodTillExtendedHours
        );
        assert_eq!(accepted.capacity, ouch::Capacity::Principal);
        assert_eq!(
            accepted.client_order_id,
            ouch::ClOrdId::new("ORDER-7").unwrap()
        );
        assert!(harness.ouch(BOB).is_empty());
    }

    #[test]
    fn accepted_but_not_booked_is_dead() {
        let mut harness = Harness::new(4);
        let origin = origin(b'O', 7, 0).encode();
        let events = [
            accepted_event(),
            canceled_event(CancelReason::ImmediateOrCancel),
        ];
        harness.route(new_order(), &origin, Status::Applied, &events);
        let messages = harness.ouch(ALICE);
        let Outbound::OrderAccepted(accepted) = &messages[0] else {
            panic!("Order Accepted first");
        };
        assert_eq!(accepted.order_state, ouch::OrderState::Dead);
        assert_eq!(accepted.price, ouch::Price(1234));
        let Outbound::OrderCanceled(canceled) = &messages[1] else {
            panic!("then Order Canceled");
        };
        assert_eq!(canceled.reason, ouch::CancelReason::ImmediateOrCancel);
        assert_eq!(canceled.quantity, 60);
    }

    #[test]
    fn fills_reach_maker_and_taker_with_scaled_prices() {
        let mut harness = Harness::new(6);
        let fill = Event::Fill {
            match_number: MatchNumber(77),
            instrument: ACME,
            price: Price(12_340_000),
            quantity: Quantity(30),
            taker_side: Side::Buy,
            maker_order_id: OrderId(41),
            maker_account: BOB_ACCOUNT,
            maker_user_ref_num: UserRefNum(3),
            taker_order_id: OrderId(42),
            taker_account: ALICE_ACCOUNT,
            taker_user_ref_num: UserRefNum(7),
        };
        let origin = origin(b'O', 7, 0).encode();
        harness.route(new_order(), &origin, Status::Applied, &[fill]);
        let check = |messages: Vec<Outbound>, user_ref_num: u32, flag: u8| {
            let [Outbound::OrderExecuted(executed)] = exactly(messages) else {
                panic!("one Order Executed");
            };
            assert_eq!(executed.user_ref_num, user_ref_num);
            assert_eq!(executed.price, ouch::Price(12_3400));
            assert_eq!(executed.quantity, 30);
            assert_eq!(executed.match_number, 77);
            assert_eq!(executed.liquidity_flag, ouch::Code::new(flag).unwrap());
        };
        check(harness.ouch(ALICE), 7, b'R');
        check(harness.ouch(BOB), 3, b'A');
    }

    #[test]
    fn cancel_reasons_map_to_ouch() {
        let cases = [
            (CancelReason::Requested, ouch::CancelReason::UserRequested),
            (CancelReason::MassCancel, ouch::CancelReason::UserRequested),
            (
                CancelReason::ImmediateOrCancel,
                ouch::CancelReason::ImmediateOrCancel,
            ),
            (
                CancelReason::FillOrKill,
                ouch::CancelReason::ImmediateOrCancel,
            ),
            (
                CancelReason::SelfTrade,
                ouch::CancelReason::SelfMatchPrevention,
            ),
            (CancelReason::EndOfDay, ouch::CancelReason::Closed),
        ];
        for (reason, expected) in cases {
            let mut harness = Harness::new(4);
            let origin = origin(b'X', 0, 7).encode();
            harness.route(
                cancel(),
                &origin,
                Status::Applied,
                &[canceled_event(reason)],
            );
            let [Outbound::OrderCanceled(canceled)] = exactly(harness.ouch(ALICE)) else {
                panic!("one Order Canceled for {reason:?}");
            };
            assert_eq!(canceled.reason, expected, "{reason:?}");
            assert_eq!((canceled.user_ref_num, canceled.quantity), (7, 60));
        }
    }

    #[test]
    fn a_modify_answers_order_modified_with_what_is_left() {
        let mut harness = Harness::new(4);
        let origin = origin(b'M', 0, 7).encode();
        harness.route(
            cancel(),
            &origin,
            Status::Applied,
            &[canceled_event(CancelReason::Requested)],
        );
        let [Outbound::OrderModified(modified)] = exactly(harness.ouch(ALICE)) else {
            panic!("one Order Modified");
        };
        assert_eq!((modified.user_ref_num, modified.quantity), (7, 40));
        assert_eq!(modified.side, ouch::Side::Buy);
    }

    #[test]
    fn replaced_reports_both_user_ref_nums() {
        let mut harness = Harness::new(2);
        let replaced = Event::OrderReplaced {
            old_order_id: OrderId(42),
            new_order_id: OrderId(43),
            account: ALICE_ACCOUNT,
            old_user_ref_num: UserRefNum(7),
            new_user_ref_num: UserRefNum(8),
            instrument: ACME,
            side: Side::Buy,
            price: Price(1235),
            quantity: Quantity(50),
            priority_kept: true,
        };
        let command = Command::ReplaceOrder(engine::ReplaceOrder {
            account: ALICE_ACCOUNT,
            order: OrderRef::UserRef(UserRefNum(7)),
            new_user_ref_num: UserRefNum(8),
            price: Price(1235),
            quantity: Quantity(50),
        });
        harness.route(
            command,
            &origin(b'U', 8, 7).encode(),
            Status::Applied,
            &[replaced],
        );
        let [Outbound::OrderReplaced(message)] = exactly(harness.ouch(ALICE)) else {
            panic!("one Order Replaced");
        };
        assert_eq!(
            (message.original_user_ref_num, message.user_ref_num),
            (7, 8)
        );
        assert_eq!(message.price, ouch::Price(12_3500));
        assert_eq!(message.order_reference_number, 43);
        assert_eq!(message.order_state, ouch::OrderState::Live);
    }

    fn rejected_event(reason: RejectReason) -> Event {
        Event::Rejected {
            account: Some(ALICE_ACCOUNT),
            reference: 7,
            reason,
        }
    }

    #[test]
    fn engine_rejections_map_to_ouch_reasons() {
        let cases = [
            (RejectReason::PriceOffTick, reasons::INVALID_PRICE),
            (RejectReason::UnknownInstrument, reasons::INVALID_SYMBOL),
            (RejectReason::QuantityOutOfRange, reasons::INVALID_QUANTITY),
            (RejectReason::InstrumentHalted, reasons::HALTED),
            (
                RejectReason::InsufficientFunds,
                reasons::ENGINE_BASE + RejectReason::InsufficientFunds.code(),
            ),
        ];
        for (reason, code) in cases {
            let mut harness = Harness::new(4);
            let origin = origin(b'O', 7, 0).encode();
            harness.route(
                new_order(),
                &origin,
                Status::Rejected(reason),
                &[rejected_event(reason)],
            );
            let [Outbound::OrderRejected(rejected)] = exactly(harness.ouch(ALICE)) else {
                panic!("one Order Rejected for {reason:?}");
            };
            assert_eq!(rejected.reason.code(), code, "{reason:?}");
            assert_eq!(rejected.user_ref_num, 7);
            assert_eq!(
                rejected.client_order_id,
                ouch::ClOrdId::new("ORDER-7").unwrap()
            );
        }
    }

    #[test]
    fn gateway_refusals_answer_with_the_journaled_reason() {
        let mut harness = Harness::new(4);
        let mut record = origin(b'O', 7, 0);
        record.gateway_reason = reasons::INVALID_DISPLAY;
        let command = Command::GatewayReject(GatewayReject {
            account: ALICE_ACCOUNT,
            user_ref_num: UserRefNum(7),
        });
        let reason = RejectReason::GatewayRejected;
        harness.route(
            command,
            &record.encode(),
            Status::Rejected(reason),
            &[rejected_event(reason)],
        );
        let [Outbound::OrderRejected(rejected)] = exactly(harness.ouch(ALICE)) else {
            panic!("one Order Rejected");
        };
        assert_eq!(rejected.reason.code(), reasons::INVALID_DISPLAY);
    }

    #[test]
    fn rejected_cancels_answer_cancel_reject() {
        let reason = RejectReason::UnknownOrder;
        let mut harness = Harness::new(4);
        harness.route(
            cancel(),
            &origin(b'X', 0, 7).encode(),
            Status::Rejected(reason),
            &[rejected_event(reason)],
        );
        // A cancel refused at the gateway, too.
        let refused = Command::GatewayReject(GatewayReject {
            account: ALICE_ACCOUNT,
            user_ref_num: UserRefNum(0),
        });
        let gateway = RejectReason::GatewayRejected;
        harness.route(
            refused,
            &origin(b'M', 0, 9).encode(),
            Status::Rejected(gateway),
            &[rejected_event(gateway)],
        );
        let messages = harness.ouch(ALICE);
        let [
            Outbound::CancelReject(first),
            Outbound::CancelReject(second),
        ] = exactly(messages)
        else {
            panic!("two Cancel Rejects");
        };
        assert_eq!((first.user_ref_num, second.user_ref_num), (7, 9));
    }

    #[test]
    fn mass_cancel_and_account_query_responses() {
        let mut harness = Harness::new(4);
        let mut record = origin(b'C', 9, 0);
        record.client_order_id = *b"FIRMACME      ";
        let mass = Command::MassCancel(MassCancel {
            account: ALICE_ACCOUNT,
            instrument: Some(ACME),
        });
        let done = Event::MassCanceled {
            account: ALICE_ACCOUNT,
            instrument: Some(ACME),
            count: 2,
        };
        harness.route(mass, &record.encode(), Status::Applied, &[done]);
        let state = |last| Event::AccountState {
            account: ALICE_ACCOUNT,
            status: AccountStatus::Active,
            last_user_ref_num: UserRefNum(last),
            last_transfer_id: TransferId(0),
        };
        let query = Command::AccountQuery(AccountQuery {
            account: ALICE_ACCOUNT,
        });
        let q = origin(b'Q', 0, 0).encode();
        harness.route(query, &q, Status::Applied, &[state(11)]);
        // A UserRefNum of an earlier day: today starts from 1.
        harness.route(query, &q, Status::Applied, &[state(1 << 32 | 11)]);
        let [
            Outbound::MassCancelResponse(response),
            Outbound::AccountQueryResponse(today),
            Outbound::AccountQueryResponse(other_day),
        ] = exactly(harness.ouch(ALICE))
        else {
            panic!("a Mass Cancel Response and two Account Query Responses");
        };
        assert_eq!(response.user_ref_num, 9);
        assert_eq!(response.firm, ouch::Mpid::new("FIRM").unwrap());
        assert_eq!(response.symbol, ouch::Symbol::new("ACME").unwrap());
        assert_eq!(today.next_user_ref_num, 12);
        assert_eq!(other_day.next_user_ref_num, 1);
    }

    #[test]
    fn a_command_without_origin_still_reaches_the_account() {
        let mut harness = Harness::new(4);
        harness.route(new_order(), &[], Status::Applied, &[accepted_event()]);
        let [Outbound::OrderAccepted(accepted)] = exactly(harness.ouch(ALICE)) else {
            panic!("one Order Accepted");
        };
        assert_eq!(accepted.capacity, ouch::Capacity::Agency);
        assert_eq!(harness.proxy.origin_errors(), 0);
    }

    #[test]
    fn an_unreadable_origin_is_counted() {
        let mut harness = Harness::new(4);
        let mut bytes = origin(b'O', 7, 0).encode();
        bytes[0] = 9;
        harness.route(new_order(), &bytes, Status::Applied, &[accepted_event()]);
        assert_eq!(harness.proxy.origin_errors(), 1);
    }

    #[test]
    fn end_of_day_is_reported_and_advances_the_day() {
        let mut harness = Harness::new(4);
        let routed = harness.route(new_order(), &[], Status::Applied, &[]);
        assert!(!routed.day_ended);
        let routed = harness.route(
            Command::Admin(AdminCommand::EndOfDay),
            &[],
            Status::Applied,
            &[],
        );
        assert!(routed.day_ended);
        assert_eq!(harness.directory.day(), 1);
    }

    #[test]
    fn instruments_listed_later_are_priced_by_their_quote() {
        let mut harness = Harness::new(4);
        let listed = [
            Event::AssetCreated {
                asset: engine::AssetId(2),
                symbol: engine::Symbol::new("JPY").unwrap(),
                scale: 0,
            },
            Event::InstrumentCreated {
                instrument: InstrumentId(7),
                spec: crate::server::test_support::spec("SONY", engine::AssetId(2)),
            },
        ];
        harness.route(
            Command::Admin(AdminCommand::EndOfDay),
            &[],
            Status::Applied,
            &listed,
        );
        assert_eq!(
            harness
                .directory
                .catalogue()
                .wire_price(InstrumentId(7), Price(5)),
            5_0000
        );
    }

    // -----------------------------------------------------------------
    // Funding.
    // -----------------------------------------------------------------

    fn fund_origin(message_type: u8) -> [u8; OriginRecord::BYTES] {
        OriginRecord::new(Channel::Funding, login_field("fund"), message_type).encode()
    }

    fn deposit() -> Command {
        Command::Deposit(Deposit {
            account: ALICE_ACCOUNT,
            asset: engine::AssetId(1),
            amount: 500,
            transfer_id: TransferId(5),
        })
    }

    #[test]
    fn funding_replies() {
        let mut harness = Harness::new(4);
        let d = fund_origin(b'D');
        harness.route(deposit(), &d, Status::Applied, &[]);
        let invalid = RejectReason::InvalidAmount;
        harness.route(deposit(), &d, Status::Rejected(invalid), &[]);
        let duplicate = |original| Event::FundingDuplicate {
            kind: engine::FundingKind::Deposit,
            transfer_id: TransferId(5),
            account: ALICE_ACCOUNT,
            original,
        };
        harness.route(deposit(), &d, Status::Duplicate, &[duplicate(None)]);
        harness.route(
            deposit(),
            &d,
            Status::Duplicate,
            &[duplicate(Some(invalid))],
        );
        let replies = harness.funding();
        let applied = |repeat| {
            funding::Reply::Applied(funding::Applied {
                timestamp_ns: TIMESTAMP_NS,
                transfer_id: 5,
                kind: FundingKind::Deposit,
                repeat,
                account: 1,
                to: 0,
                asset: 1,
                amount: 500,
            })
        };
        let rejected = |repeat| {
            funding::Reply::Rejected(funding::Rejected {
                timestamp_ns: TIMESTAMP_NS,
                transfer_id: 5,
                kind: FundingKind::Deposit,
                repeat,
                account: 1,
                reason: invalid.code() as u8,
            })
        };
        assert_eq!(
            replies,
            [
                applied(false),
                rejected(false),
                applied(true),
                rejected(true)
            ]
        );
        // Nothing reached the trading logins.
        assert!(harness.ouch(ALICE).is_empty());
    }

    #[test]
    fn balance_queries_report_or_reject() {
        let mut harness = Harness::new(4);
        let b = fund_origin(b'B');
        let query = Command::AccountQuery(AccountQuery {
            account: BOB_ACCOUNT,
        });
        let events = [
            Event::AccountState {
                account: BOB_ACCOUNT,
                status: AccountStatus::Suspended,
                last_user_ref_num: UserRefNum(0),
                last_transfer_id: TransferId(0),
            },
            Event::BalanceReport {
                account: BOB_ACCOUNT,
                asset: engine::AssetId(1),
                available: 70,
                held: 30,
            },
        ];
        harness.route(query, &b, Status::Applied, &events);
        let unknown = RejectReason::UnknownAccount;
        harness.route(query, &b, Status::Rejected(unknown), &[]);
        let replies = harness.funding();
        assert_eq!(
            replies[0],
            funding::Reply::BalanceReport(funding::BalanceReport {
                timestamp_ns: TIMESTAMP_NS,
                account: 2,
                suspended: true,
                balances: vec![funding::AssetBalance {
                    asset: 1,
                    available: 70,
                    held: 30,
                }],
            })
        );
        assert_eq!(
            replies[1],
            funding::Reply::Rejected(funding::Rejected {
                timestamp_ns: TIMESTAMP_NS,
                transfer_id: 0,
                kind: FundingKind::Deposit,
                repeat: false,
                account: 2,
                reason: unknown.code() as u8,
            })
        );
        // The query came from the funding port: Bob's OUCH stream is untouched.
        assert!(harness.ouch(BOB).is_empty());
    }
}
