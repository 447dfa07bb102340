//! The inbound adapters: a decoded OUCH or funding message from a logged-in
//! session becomes one engine command and its origin record. A pure
//! function of the message and the [`Directory`], so the same message on
//! the same day always makes the same command.
//!
//! A message the exchange does not support (an unknown symbol, a price off
//! the quote asset's minor unit, an option it does not implement) is not
//! dropped: it becomes a [`GatewayReject`] command, journaled like any
//! other so that its OUCH rejection replays, and the [`Refusal`] is handed
//! back for the log. The refusal's code travels in the origin record.

use engine::{
    AccountId, AccountQuery, AssetId, CancelOrder, Command, Deposit, GatewayReject, MassCancel,
    NewOrder, OrderPrice, OrderRef, ReplaceOrder, SelfTradePrevention, Side, TimeInForce, Transfer,
    TransferId, UserRefNum, Withdrawal,
};

use super::directory::Directory;
use super::origin::{Channel, OriginRecord};
use super::reasons::{self, Refusal, refuse};
use crate::funding;
use crate::ouch::{self, Inbound, Options};

/// What an inbound message becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    pub command: Command,
    pub origin: OriginRecord,
    /// Why the command is a [`GatewayReject`], if it is one.
    pub refusal: Option<Refusal>,
}

/// The command for an OUCH message from `login` (its index in the login
/// table, named `login_name` in origin records) trading `account`.
pub fn order_entry(
    directory: &Directory,
    login: usize,
    login_name: [u8; 6],
    account: AccountId,
    message: &Inbound,
) -> Admitted {
    let mut origin = OriginRecord::new(Channel::OrderEntry, login_name, message.message_type());
    // The UserRefNum a refusal consumes (0: none).
    let (consumed, command) = match message {
        Inbound::EnterOrder(order) => {
            record_enter(&mut origin, order);
            let self_trade = directory.self_trade(login);
            (
                order.user_ref_num,
                new_order(directory, account, order, self_trade),
            )
        }
        Inbound::ReplaceOrder(replace) => {
            record_replace(&mut origin, replace);
            (
                replace.user_ref_num,
                replace_order(directory, account, replace),
            )
        }
        Inbound::CancelOrder(cancel) => {
            origin.original_user_ref_num = cancel.user_ref_num;
            (0, cancel_order(directory, account, cancel))
        }
        Inbound::ModifyOrder(modify) => {
            origin.original_user_ref_num = modify.user_ref_num;
            (0, modify_order(directory, account, modify))
        }
        Inbound::MassCancelRequest(mass) => {
            origin.user_ref_num = mass.user_ref_num;
            origin.client_order_id[..4].copy_from_slice(mass.firm.as_bytes());
            origin.client_order_id[4..12].copy_from_slice(mass.symbol.as_bytes());
            (mass.user_ref_num, mass_cancel(directory, account, mass))
        }
        Inbound::AccountQueryRequest(_) => (0, Ok(Command::AccountQuery(AccountQuery { account }))),
    };
    match command {
        Ok(command) => Admitted {
            command,
            origin,
            refusal: None,
        },
        Err(refusal) => refused(directory, account, origin, consumed, refusal),
    }
}

/// A [`GatewayReject`] in place of the message; it consumes `user_ref_num`
/// (unless 0) like a rejected order would.
fn refused(
    directory: &Directory,
    account: AccountId,
    mut origin: OriginRecord,
    user_ref_num: u32,
    refusal: Refusal,
) -> Admitted {
    origin.gateway_reason = refusal.reason;
    let user_ref_num = if user_ref_num == 0 {
        UserRefNum(0)
    } else {
        directory.engine_user_ref_num(user_ref_num)
    };
    Admitted {
        command: Command::GatewayReject(GatewayReject {
            account,
            user_ref_num,
        }),
        origin,
        refusal: Some(refusal),
    }
}

fn record_enter(origin: &mut OriginRecord, order: &ouch::EnterOrder) {
    origin.user_ref_num = order.user_ref_num;
    origin.client_order_id = *order.client_order_id.as_bytes();
    origin.capacity = order.capacity.byte();
    origin.time_in_force = order.time_in_force.byte();
    origin.intermarket_sweep = order.intermarket_sweep.byte();
}

fn record_replace(origin: &mut OriginRecord, replace: &ouch::ReplaceOrder) {
    origin.user_ref_num = replace.user_ref_num;
    origin.original_user_ref_num = replace.original_user_ref_num;
    origin.client_order_id = *replace.client_order_id.as_bytes();
    origin.time_in_force = replace.time_in_force.byte();
    origin.intermarket_sweep = replace.intermarket_sweep.byte();
}

fn new_order(
    directory: &Directory,
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
    let time_in_force = engine_time_in_force(order)?;
    let listing = directory
        .catalogue()
        .by_symbol(order.symbol.as_bytes())
        .ok_or(refuse(reasons::INVALID_SYMBOL, "unknown symbol"))?;
    let price = listing
        .price_scale
        .engine_price(order.price.0)
        .ok_or(refuse(reasons::INVALID_PRICE, "price not representable"))?;
    Ok(Command::NewOrder(NewOrder {
        account,
        user_ref_num: directory.engine_user_ref_num(order.user_ref_num),
        instrument: listing.id,
        side,
        price: OrderPrice::Limit(price),
        quantity: engine::Quantity(u64::from(order.quantity)),
        time_in_force,
        post_only: order.options.post_only == Some(ouch::PostOnly::PostOnly),
        self_trade,
    }))
}

fn engine_time_in_force(order: &ouch::EnterOrder) -> Result<TimeInForce, Refusal> {
    match order.time_in_force {
        ouch::TimeInForce::Day => Ok(TimeInForce::Day),
        ouch::TimeInForce::ImmediateOrCancel => {
            if order.options.min_quantity == Some(order.quantity) {
                Ok(TimeInForce::FillOrKill)
            } else {
                Ok(TimeInForce::ImmediateOrCancel)
            }
        }
        // No extended-hours session: good till extended hours rests until
        // the end of the day, like a Day order. OUCH numbers orders by
        // UserRefNum within a day, so no order entered over OUCH may
        // outlive its day.
        ouch::TimeInForce::GoodTillExtendedHours => Ok(TimeInForce::Day),
        _ => Err(refuse(
            reasons::UNSUPPORTED,
            "time in force (only 0 Day, 3 IOC and 5 GTX)",
        )),
    }
}

fn replace_order(
    directory: &Directory,
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
    // A replaced order keeps its time in force; one that rests is a Day
    // order (0 or 5), so an IOC replace would not mean what it says.
    if !matches!(
        replace.time_in_force,
        ouch::TimeInForce::Day | ouch::TimeInForce::GoodTillExtendedHours
    ) {
        return Err(refuse(
            reasons::UNSUPPORTED,
            "a replace keeps the order's time in force (0 or 5)",
        ));
    }
    // The price converts with the order's instrument, which a Replace does
    // not name and the gateway does not track: it is refused unless every
    // listing converts prices alike (true of the default configuration,
    // where every instrument is quoted in USD).
    let price_scale = directory.catalogue().common_price_scale().ok_or(refuse(
        reasons::UNSUPPORTED,
        "a replace where instruments are quoted at different scales",
    ))?;
    let price = price_scale
        .engine_price(replace.price.0)
        .ok_or(refuse(reasons::INVALID_PRICE, "price not representable"))?;
    Ok(Command::ReplaceOrder(ReplaceOrder {
        account,
        order: OrderRef::UserRef(directory.engine_user_ref_num(replace.original_user_ref_num)),
        new_user_ref_num: directory.engine_user_ref_num(replace.user_ref_num),
        price,
        quantity: engine::Quantity(u64::from(replace.quantity)),
    }))
}

fn cancel_order(
    directory: &Directory,
    account: AccountId,
    cancel: &ouch::CancelOrder,
) -> Result<Command, Refusal> {
    if cancel.options != Options::NONE && cancel.options.user_ref_index.is_none() {
        return Err(refuse(reasons::UNSUPPORTED, "cancel options"));
    }
    Ok(reduce(
        directory,
        account,
        cancel.user_ref_num,
        cancel.quantity,
    ))
}

fn modify_order(
    directory: &Directory,
    account: AccountId,
    modify: &ouch::ModifyOrder,
) -> Result<Command, Refusal> {
    if modify.options != Options::NONE && modify.options.user_ref_index.is_none() {
        return Err(refuse(reasons::UNSUPPORTED, "modify options"));
    }
    // The side cannot change (no short sales): T and E are refused. A
    // quantity reduction is a partial cancel; the gateway does not know the
    // order's side, so B and S are not checked against it
    // (docs/protocol.md).
    if engine_side(modify.side).is_err() {
        return Err(refuse(reasons::INVALID_SIDE, "a side change"));
    }
    Ok(reduce(
        directory,
        account,
        modify.user_ref_num,
        modify.quantity,
    ))
}

/// Cancel Order and Modify Order: leave `quantity` open (0 cancels).
fn reduce(directory: &Directory, account: AccountId, user_ref_num: u32, quantity: u32) -> Command {
    Command::CancelOrder(CancelOrder {
        account,
        order: OrderRef::UserRef(directory.engine_user_ref_num(user_ref_num)),
        quantity: engine::Quantity(u64::from(quantity)),
    })
}

fn mass_cancel(
    directory: &Directory,
    account: AccountId,
    mass: &ouch::MassCancelRequest,
) -> Result<Command, Refusal> {
    if mass.options != Options::NONE {
        return Err(refuse(
            reasons::UNSUPPORTED,
            "mass cancel by side, group or index",
        ));
    }
    let instrument = if *mass.symbol.as_bytes() == [b' '; 8] {
        None
    } else {
        let listing = directory
            .catalogue()
            .by_symbol(mass.symbol.as_bytes())
            .ok_or(refuse(reasons::INVALID_SYMBOL, "unknown symbol"))?;
        Some(listing.id)
    };
    Ok(Command::MassCancel(MassCancel {
        account,
        instrument,
    }))
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

/// The command for a funding request from the login named `login_name`.
pub fn funding(login_name: [u8; 6], request: &funding::Request) -> (Command, OriginRecord) {
    let origin = OriginRecord::new(Channel::Funding, login_name, request.message_type());
    let command = match *request {
        funding::Request::Deposit(f) => Command::Deposit(Deposit {
            account: AccountId(f.account),
            asset: AssetId(f.asset),
            amount: f.amount,
            transfer_id: TransferId(f.transfer_id),
        }),
        funding::Request::Withdrawal(f) => Command::Withdrawal(Withdrawal {
            account: AccountId(f.account),
            asset: AssetId(f.asset),
            amount: f.amount,
            transfer_id: TransferId(f.transfer_id),
        }),
        funding::Request::Transfer(t) => Command::Transfer(Transfer {
            from: AccountId(t.from),
            to: AccountId(t.to),
            asset: AssetId(t.asset),
            amount: t.amount,
            transfer_id: TransferId(t.transfer_id),
        }),
        funding::Request::BalanceQuery { account } => Command::AccountQuery(AccountQuery {
            account: AccountId(account),
        }),
    };
    (command, origin)
}
