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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ouch::{
        AccountQueryRequest, Capacity, ClOrdId, CrossType, Display, EnterOrder, IntermarketSweep,
        ModifyOrder, Mpid, PostOnly, Price, Symbol,
    };
    use crate::server::origin::login_field;
    use crate::server::test_support::{ACME, ALICE, ALICE_ACCOUNT, directory};

    const NAME: [u8; 6] = *b"ALICE ";

    /// What a case is, how it changes a valid message, and the code it is
    /// refused with.
    type Case<M> = (&'static str, fn(&mut M), u16);

    fn enter() -> EnterOrder {
        EnterOrder {
            user_ref_num: 7,
            side: ouch::Side::Buy,
            quantity: 100,
            symbol: Symbol::new("ACME").unwrap(),
            price: Price(12_3400),
            time_in_force: ouch::TimeInForce::Day,
            display: Display::Visible,
            capacity: Capacity::Principal,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cross_type: CrossType::ContinuousMarket,
            client_order_id: ClOrdId::new("ORDER-7").unwrap(),
            options: Options::NONE,
        }
    }

    fn replace() -> ouch::ReplaceOrder {
        ouch::ReplaceOrder {
            original_user_ref_num: 7,
            user_ref_num: 8,
            quantity: 50,
            price: Price(12_3500),
            time_in_force: ouch::TimeInForce::Day,
            display: Display::Visible,
            intermarket_sweep: IntermarketSweep::NotEligible,
            client_order_id: ClOrdId::new("ORDER-8").unwrap(),
            options: Options::NONE,
        }
    }

    fn admit(directory: &Directory, message: &Inbound) -> Admitted {
        order_entry(directory, ALICE, NAME, ALICE_ACCOUNT, message)
    }

    /// The refusal's code, after checking the command is a GatewayReject
    /// consuming `user_ref_num` and the code travels in the origin.
    fn refusal_code(admitted: &Admitted, user_ref_num: u64) -> u16 {
        let refusal = admitted.refusal.expect("refused");
        assert_eq!(
            admitted.command,
            Command::GatewayReject(GatewayReject {
                account: ALICE_ACCOUNT,
                user_ref_num: UserRefNum(user_ref_num),
            })
        );
        assert_eq!(admitted.origin.gateway_reason, refusal.reason);
        refusal.reason
    }

    #[test]
    fn enter_order_becomes_a_new_order_with_engine_ticks() {
        // Quoted in cents: 12.3400 is 1234 ticks.
        let directory = directory(2);
        let admitted = admit(&directory, &Inbound::EnterOrder(enter()));
        assert_eq!(admitted.refusal, None);
        assert_eq!(
            admitted.command,
            Command::NewOrder(NewOrder {
                account: ALICE_ACCOUNT,
                user_ref_num: UserRefNum(7),
                instrument: ACME,
                side: Side::Buy,
                price: OrderPrice::Limit(engine::Price(1234)),
                quantity: engine::Quantity(100),
                time_in_force: TimeInForce::Day,
                post_only: false,
                self_trade: SelfTradePrevention::CancelOldest,
            })
        );
        let origin = admitted.origin;
        assert_eq!(origin.channel, Channel::OrderEntry);
        assert_eq!((origin.login, origin.message_type), (NAME, b'O'));
        assert_eq!(origin.user_ref_num, 7);
        assert_eq!(&origin.client_order_id, b"ORDER-7       ");
        assert_eq!((origin.capacity, origin.time_in_force), (b'P', b'0'));
        assert_eq!((origin.intermarket_sweep, origin.gateway_reason), (b'N', 0));
    }

    #[test]
    fn finer_quote_scales_multiply() {
        let directory = directory(6);
        let Command::NewOrder(order) = admit(&directory, &Inbound::EnterOrder(enter())).command
        else {
            panic!("a new order");
        };
        assert_eq!(order.price, OrderPrice::Limit(engine::Price(12_340_000)));
    }

    #[test]
    fn time_in_force_and_post_only() {
        let directory = directory(4);
        let cases = [
            (
                ouch::TimeInForce::ImmediateOrCancel,
                None,
                TimeInForce::ImmediateOrCancel,
            ),
            (
                ouch::TimeInForce::ImmediateOrCancel,
                Some(100),
                TimeInForce::FillOrKill,
            ),
            (
                ouch::TimeInForce::GoodTillExtendedHours,
                None,
                TimeInForce::Day,
            ),
        ];
        for (asked, min_quantity, expected) in cases {
            let mut order = enter();
            order.time_in_force = asked;
            order.options.min_quantity = min_quantity;
            order.options.post_only = Some(PostOnly::PostOnly);
            let Command::NewOrder(new) = admit(&directory, &Inbound::EnterOrder(order)).command
            else {
                panic!("a new order for {asked:?}");
            };
            assert_eq!(new.time_in_force, expected);
            assert!(new.post_only);
        }
    }

    #[test]
    fn enter_order_refusals_carry_their_codes() {
        let directory = directory(2);
        let cases: [Case<EnterOrder>; 9] = [
            (
                "unknown symbol",
                |o| o.symbol = Symbol::new("NOPE").unwrap(),
                reasons::INVALID_SYMBOL,
            ),
            (
                "price finer than a cent",
                |o| o.price = Price(12_3456),
                reasons::INVALID_PRICE,
            ),
            (
                "short sale",
                |o| o.side = ouch::Side::SellShort,
                reasons::INVALID_SIDE,
            ),
            (
                "hidden",
                |o| o.display = Display::Hidden,
                reasons::INVALID_DISPLAY,
            ),
            (
                "opening cross",
                |o| o.cross_type = CrossType::OpeningCross,
                reasons::INVALID_CROSS,
            ),
            (
                "good till time",
                |o| o.time_in_force = ouch::TimeInForce::GoodTillTime,
                reasons::UNSUPPORTED,
            ),
            (
                "min qty below quantity",
                |o| o.options.min_quantity = Some(10),
                reasons::INVALID_MIN_QUANTITY,
            ),
            (
                "max floor",
                |o| o.options.max_floor = Some(10),
                reasons::UNSUPPORTED,
            ),
            (
                "route",
                |o| o.options.route = Mpid::new("ROUT"),
                reasons::UNSUPPORTED,
            ),
        ];
        for (what, change, code) in cases {
            let mut order = enter();
            change(&mut order);
            let admitted = admit(&directory, &Inbound::EnterOrder(order));
            assert_eq!(refusal_code(&admitted, 7), code, "{what}");
            // The origin still carries what the reply needs.
            assert_eq!(
                &admitted.origin.client_order_id, b"ORDER-7       ",
                "{what}"
            );
        }
    }

    #[test]
    fn prices_out_of_range_are_refused() {
        let directory = directory(18);
        let mut order = enter();
        order.price = Price(i64::MAX);
        let admitted = admit(&directory, &Inbound::EnterOrder(order));
        assert_eq!(refusal_code(&admitted, 7), reasons::INVALID_PRICE);
    }

    #[test]
    fn user_ref_nums_carry_the_trading_day() {
        let mut directory = directory(4);
        directory.end_day();
        directory.end_day();
        let Command::NewOrder(order) = admit(&directory, &Inbound::EnterOrder(enter())).command
        else {
            panic!("a new order");
        };
        assert_eq!(order.user_ref_num, UserRefNum((2 << 32) | 7));
        let mut bad = enter();
        bad.symbol = Symbol::new("NOPE").unwrap();
        let admitted = admit(&directory, &Inbound::EnterOrder(bad));
        assert_eq!(
            refusal_code(&admitted, (2 << 32) | 7),
            reasons::INVALID_SYMBOL
        );
    }

    #[test]
    fn replace_order_becomes_a_replace() {
        let directory = directory(2);
        let admitted = admit(&directory, &Inbound::ReplaceOrder(replace()));
        assert_eq!(
            admitted.command,
            Command::ReplaceOrder(ReplaceOrder {
                account: ALICE_ACCOUNT,
                order: OrderRef::UserRef(UserRefNum(7)),
                new_user_ref_num: UserRefNum(8),
                price: engine::Price(1235),
                quantity: engine::Quantity(50),
            })
        );
        let origin = admitted.origin;
        assert_eq!((origin.user_ref_num, origin.original_user_ref_num), (8, 7));
        assert_eq!(&origin.client_order_id, b"ORDER-8       ");
    }

    #[test]
    fn replace_refusals_carry_their_codes() {
        let directory = directory(2);
        let cases: [Case<ouch::ReplaceOrder>; 5] = [
            (
                "IOC",
                |r| r.time_in_force = ouch::TimeInForce::ImmediateOrCancel,
                reasons::UNSUPPORTED,
            ),
            (
                "min qty",
                |r| r.options.min_quantity = Some(50),
                reasons::INVALID_MIN_QUANTITY,
            ),
            (
                "hidden",
                |r| r.display = Display::Hidden,
                reasons::INVALID_DISPLAY,
            ),
            (
                "off the cent",
                |r| r.price = Price(12_3401),
                reasons::INVALID_PRICE,
            ),
            (
                "max floor",
                |r| r.options.max_floor = Some(1),
                reasons::UNSUPPORTED,
            ),
        ];
        for (what, change, code) in cases {
            let mut message = replace();
            change(&mut message);
            let admitted = admit(&directory, &Inbound::ReplaceOrder(message));
            assert_eq!(refusal_code(&admitted, 8), code, "{what}");
        }
    }

    #[test]
    fn replace_needs_one_price_scale() {
        let mut directory = directory(2);
        directory.observe(&engine::Event::AssetCreated {
            asset: engine::AssetId(2),
            symbol: engine::Symbol::new("EUR").unwrap(),
            scale: 6,
        });
        directory.observe(&engine::Event::InstrumentCreated {
            instrument: engine::InstrumentId(5),
            spec: crate::server::test_support::spec("EURO", engine::AssetId(2)),
        });
        let admitted = admit(&directory, &Inbound::ReplaceOrder(replace()));
        assert_eq!(refusal_code(&admitted, 8), reasons::UNSUPPORTED);
    }

    #[test]
    fn cancel_and_modify_reduce_the_order() {
        let directory = directory(4);
        let cancel = ouch::CancelOrder {
            user_ref_num: 7,
            quantity: 0,
            options: Options::NONE,
        };
        let admitted = admit(&directory, &Inbound::CancelOrder(cancel));
        let expected = |quantity| {
            Command::CancelOrder(CancelOrder {
                account: ALICE_ACCOUNT,
                order: OrderRef::UserRef(UserRefNum(7)),
                quantity: engine::Quantity(quantity),
            })
        };
        assert_eq!(admitted.command, expected(0));
        assert_eq!(admitted.origin.original_user_ref_num, 7);
        assert_eq!(admitted.origin.message_type, b'X');
        let modify = ModifyOrder {
            user_ref_num: 7,
            side: ouch::Side::Sell,
            quantity: 40,
            options: Options::NONE,
        };
        let admitted = admit(&directory, &Inbound::ModifyOrder(modify));
        assert_eq!(admitted.command, expected(40));
        assert_eq!(admitted.origin.message_type, b'M');
    }

    #[test]
    fn cancel_and_modify_refusals_consume_no_user_ref_num() {
        let directory = directory(4);
        let cancel = ouch::CancelOrder {
            user_ref_num: 7,
            quantity: 0,
            options: Options {
                firm: Mpid::new("FIRM"),
                ..Options::NONE
            },
        };
        let admitted = admit(&directory, &Inbound::CancelOrder(cancel));
        assert_eq!(refusal_code(&admitted, 0), reasons::UNSUPPORTED);
        let modify = ModifyOrder {
            user_ref_num: 7,
            side: ouch::Side::SellShort,
            quantity: 40,
            options: Options::NONE,
        };
        let admitted = admit(&directory, &Inbound::ModifyOrder(modify));
        assert_eq!(refusal_code(&admitted, 0), reasons::INVALID_SIDE);
        assert_eq!(admitted.origin.original_user_ref_num, 7);
    }

    #[test]
    fn mass_cancel_by_symbol_or_all() {
        let directory = directory(4);
        let mut mass = ouch::MassCancelRequest {
            user_ref_num: 9,
            firm: Mpid::new("FIRM").unwrap(),
            symbol: Symbol::BLANK,
            options: Options::NONE,
        };
        let all = admit(&directory, &Inbound::MassCancelRequest(mass));
        assert_eq!(
            all.command,
            Command::MassCancel(MassCancel {
                account: ALICE_ACCOUNT,
                instrument: None,
            })
        );
        // The firm and symbol ride in the ClOrdID field for the response.
        assert_eq!(&all.origin.client_order_id, b"FIRM          ");
        mass.symbol = Symbol::new("ACME").unwrap();
        let one = admit(&directory, &Inbound::MassCancelRequest(mass));
        assert_eq!(
            one.command,
            Command::MassCancel(MassCancel {
                account: ALICE_ACCOUNT,
                instrument: Some(ACME),
            })
        );
        assert_eq!(&one.origin.client_order_id, b"FIRMACME      ");
        mass.symbol = Symbol::new("NOPE").unwrap();
        let unknown = admit(&directory, &Inbound::MassCancelRequest(mass));
        assert_eq!(refusal_code(&unknown, 9), reasons::INVALID_SYMBOL);
        mass.symbol = Symbol::BLANK;
        mass.options.side = Some(ouch::Side::Buy);
        let by_side = admit(&directory, &Inbound::MassCancelRequest(mass));
        assert_eq!(refusal_code(&by_side, 9), reasons::UNSUPPORTED);
    }

    #[test]
    fn account_query() {
        let directory = directory(4);
        let query = Inbound::AccountQueryRequest(AccountQueryRequest {
            options: Options::NONE,
        });
        let admitted = admit(&directory, &query);
        assert_eq!(
            admitted.command,
            Command::AccountQuery(AccountQuery {
                account: ALICE_ACCOUNT
            })
        );
        assert_eq!(admitted.origin.message_type, b'Q');
    }

    #[test]
    fn funding_requests_become_funding_commands() {
        let name = login_field("fund");
        let deposit = funding::Funding {
            transfer_id: 5,
            account: 1,
            asset: 1,
            amount: 1_000,
        };
        let cases = [
            (
                funding::Request::Deposit(deposit),
                Command::Deposit(Deposit {
                    account: AccountId(1),
                    asset: AssetId(1),
                    amount: 1_000,
                    transfer_id: TransferId(5),
                }),
                b'D',
            ),
            (
                funding::Request::Withdrawal(deposit),
                Command::Withdrawal(Withdrawal {
                    account: AccountId(1),
                    asset: AssetId(1),
                    amount: 1_000,
                    transfer_id: TransferId(5),
                }),
                b'W',
            ),
            (
                funding::Request::Transfer(funding::TransferRequest {
                    transfer_id: 6,
                    from: 1,
                    to: 2,
                    asset: 1,
                    amount: 10,
                }),
                Command::Transfer(Transfer {
                    from: AccountId(1),
                    to: AccountId(2),
                    asset: AssetId(1),
                    amount: 10,
                    transfer_id: TransferId(6),
                }),
                b'T',
            ),
            (
                funding::Request::BalanceQuery { account: 2 },
                Command::AccountQuery(AccountQuery {
                    account: AccountId(2),
                }),
                b'B',
            ),
        ];
        for (request, expected, message_type) in cases {
            let (command, origin) = funding(name, &request);
            assert_eq!(command, expected);
            assert_eq!(
                origin,
                OriginRecord::new(Channel::Funding, name, message_type)
            );
        }
    }
}
