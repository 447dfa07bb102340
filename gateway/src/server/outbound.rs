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
use super::streams::SessionStreams;
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
    /// concerns and keeps the directory current.
    pub fn applied(
        &mut self,
        directory: &mut Directory,
        streams: &mut SessionStreams,
        applied: &AppliedCommand<'_>,
    ) -> Routed {
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
                    );
                }
            }
            _ => self.order_messages(directory, streams, applied, origin),
        }
        let day_ended = matches!(applied.command, Command::Admin(AdminCommand::EndOfDay));
        if day_ended {
            directory.end_day();
        }
        Routed { day_ended }
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

    fn order_messages(
        &mut self,
        directory: &Directory,
        streams: &mut SessionStreams,
        applied: &AppliedCommand<'_>,
        origin: Option<OriginRecord>,
    ) {
        let context = OrderContext::new(applied, origin);
        for event in applied.events {
            for (account, message) in order_event(directory, &context, event)
                .into_iter()
                .flatten()
            {
                let Some(login) = directory.trading_login(account) else {
                    continue;
                };
                self.scratch.clear();
                message.encode(&mut self.scratch);
                streams.append(
                    (Channel::OrderEntry, login),
                    &self.scratch,
                    applied.header.sequence,
                );
            }
        }
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

/// The OUCH messages of one event (a fill has two).
fn order_event(
    directory: &Directory,
    context: &OrderContext<'_>,
    event: &Event,
) -> [Option<Addressed>; 2] {
    let one = match *event {
        Event::Rejected {
            account: Some(account),
            reason,
            ..
        } => Some((account, rejected(context, reason))),
        Event::OrderAccepted { .. } => accepted(directory, context, event),
        Event::OrderReplaced { .. } => replaced(directory, context, event),
        Event::Fill { .. } => return executed(directory, context, event),
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
    [one, None]
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
fn executed(
    directory: &Directory,
    context: &OrderContext<'_>,
    event: &Event,
) -> [Option<Addressed>; 2] {
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
        return [None, None];
    };
    let price = ouch::Price(directory.catalogue().wire_price(instrument, price));
    let side = |account: AccountId, user_ref_num: engine::UserRefNum, flag: u8| {
        let message = Outbound::OrderExecuted(ouch::OrderExecuted {
            timestamp_ns: context.timestamp_ns,
            user_ref_num: user_ref_num.0 as u32,
            quantity: wire_quantity(quantity),
            price,
            liquidity_flag: ouch::Code::new(flag).expect("printable"),
            match_number: match_number.0,
            options: Options::NONE,
        });
        Some((account, message))
    };
    [
        side(maker_account, maker_user_ref_num, b'A'),
        side(taker_account, taker_user_ref_num, b'R'),
    ]
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
