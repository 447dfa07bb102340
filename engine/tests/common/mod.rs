//! A small exchange for the rule tests: USD (4 decimals), ACME shares and EUR
//! (2 decimals); ACME/USD and EUR/USD books; accounts 1–4 funded. Every
//! command goes through [`Exchange::run`], which checks the invariants after
//! it.

#![allow(dead_code, unreachable_pub)]

use engine::*;

pub const USD: AssetId = AssetId(0);
pub const ACME: AssetId = AssetId(1);
pub const EUR: AssetId = AssetId(2);
pub const ACME_USD: InstrumentId = InstrumentId(0);
pub const EUR_USD: InstrumentId = InstrumentId(1);
pub const FEES: AccountId = AccountId(0);
pub const ALICE: AccountId = AccountId(1);
pub const BOB: AccountId = AccountId(2);
pub const CAROL: AccountId = AccountId(3);
pub const DAVE: AccountId = AccountId(4);

/// 1 000 000.0000 USD in minor units.
pub const USD_FUNDING: u64 = 1_000_000 * 10_000;
pub const ACME_FUNDING: u64 = 10_000;
/// 1 000 000.00 EUR in minor units.
pub const EUR_FUNDING: u64 = 1_000_000 * 100;

/// ACME at `dollars`.`cents` USD.
pub fn usd(dollars: i64, cents: i64) -> Price {
    Price(dollars * 10_000 + cents * 100)
}

pub fn acme_spec() -> InstrumentSpec {
    InstrumentSpec {
        symbol: Symbol::new("ACME").unwrap(),
        base: ACME,
        quote: USD,
        quantity_unit: 1,
        tick_size: Price(100),
        lot_size: Quantity(1),
        min_quantity: Quantity(1),
        max_quantity: Quantity(1_000_000),
        reference_price: usd(100, 0),
        band_bps: 1_000,
        maker_fee_bps: 10,
        taker_fee_bps: 20,
    }
}

pub fn eur_usd_spec() -> InstrumentSpec {
    InstrumentSpec {
        symbol: Symbol::new("EURUSD").unwrap(),
        base: EUR,
        quote: USD,
        quantity_unit: 100,
        tick_size: Price(1),
        lot_size: Quantity(1),
        min_quantity: Quantity(1),
        max_quantity: Quantity(10_000_000),
        reference_price: Price(11_000),
        band_bps: 1_000,
        maker_fee_bps: 0,
        taker_fee_bps: 0,
    }
}

pub struct Exchange {
    pub engine: Engine,
    pub sequence: u64,
    next_transfer_id: u64,
    next_user_ref: [u64; 8],
}

impl Exchange {
    pub fn new() -> Exchange {
        Exchange::with_config(EngineConfig {
            accounts_max: 8,
            assets_max: 4,
            instruments_max: 4,
            orders_max: 1_000,
            price_levels_max: 100_000,
            transfer_records_max: 100,
            fee_account: FEES,
        })
    }

    pub fn with_config(config: EngineConfig) -> Exchange {
        let mut exchange = Exchange {
            engine: Engine::new(config).unwrap(),
            sequence: 0,
            next_transfer_id: 0,
            next_user_ref: [0; 8],
        };
        for (asset, symbol, scale) in [(USD, "USD", 4), (ACME, "ACME", 0), (EUR, "EUR", 2)] {
            let symbol = Symbol::new(symbol).unwrap();
            exchange.ok(Command::Admin(AdminCommand::CreateAsset {
                asset,
                symbol,
                scale,
            }));
        }
        for (instrument, spec) in [(ACME_USD, acme_spec()), (EUR_USD, eur_usd_spec())] {
            exchange.ok(Command::Admin(AdminCommand::CreateInstrument {
                instrument,
                spec,
            }));
        }
        for account in [ALICE, BOB, CAROL, DAVE] {
            exchange.ok(Command::Admin(AdminCommand::CreateAccount { account }));
            exchange.deposit(account, USD, USD_FUNDING);
            exchange.deposit(account, ACME, ACME_FUNDING);
            exchange.deposit(account, EUR, EUR_FUNDING);
        }
        exchange
    }

    /// Apply a command, check every invariant, return status and events.
    pub fn run(&mut self, command: Command) -> (Status, Vec<Event>) {
        self.sequence += 1;
        let header = CommandHeader {
            sequence: self.sequence,
            timestamp_ns: self.sequence * 1_000,
        };
        let mut events = Vec::new();
        let status = self.engine.apply(header, &command, &mut events);
        if let Err(violation) = self.engine.check_invariants() {
            panic!("invariant broken after {command:?}: {violation}\nevents: {events:#?}");
        }
        if let Status::Rejected(reason) = status {
            assert_eq!(
                events.len(),
                1,
                "a reject has exactly one event: {events:?}"
            );
            assert!(matches!(events[0], Event::Rejected { reason: r, .. } if r == reason));
        }
        (status, events)
    }

    /// Apply a command that must be applied.
    pub fn ok(&mut self, command: Command) -> Vec<Event> {
        let (status, events) = self.run(command);
        assert_eq!(status, Status::Applied, "{command:?} → {events:?}");
        events
    }

    /// Apply a command that must be rejected with `reason`.
    pub fn rejected(&mut self, command: Command, reason: RejectReason) {
        let (status, events) = self.run(command);
        assert_eq!(status, Status::Rejected(reason), "{command:?} → {events:?}");
    }

    pub fn next_user_ref(&mut self, account: AccountId) -> UserRefNum {
        let next = &mut self.next_user_ref[account.0 as usize];
        *next += 1;
        UserRefNum(*next)
    }

    pub fn next_transfer_id(&mut self) -> TransferId {
        self.next_transfer_id += 1;
        TransferId(self.next_transfer_id)
    }

    pub fn deposit(&mut self, account: AccountId, asset: AssetId, amount: u64) -> Vec<Event> {
        let transfer_id = self.next_transfer_id();
        self.ok(Command::Deposit(Deposit {
            account,
            asset,
            amount,
            transfer_id,
        }))
    }

    /// A limit order with the next user reference of the account.
    pub fn limit(
        &mut self,
        account: AccountId,
        side: Side,
        price: Price,
        quantity: u64,
        time_in_force: TimeInForce,
    ) -> NewOrder {
        NewOrder {
            account,
            user_ref_num: self.next_user_ref(account),
            instrument: ACME_USD,
            side,
            price: OrderPrice::Limit(price),
            quantity: Quantity(quantity),
            time_in_force,
            post_only: false,
            self_trade: SelfTradePrevention::None,
        }
    }

    /// Enter a GTC ACME limit order that must be applied; its events.
    pub fn gtc(
        &mut self,
        account: AccountId,
        side: Side,
        price: Price,
        quantity: u64,
    ) -> Vec<Event> {
        let order = self.limit(account, side, price, quantity, TimeInForce::GoodTillCancel);
        self.ok(Command::NewOrder(order))
    }

    pub fn balance(&self, account: AccountId, asset: AssetId) -> Balance {
        self.engine.balance(account, asset).unwrap()
    }

    /// The order id an `OrderAccepted` in `events` assigned.
    pub fn accepted_id(events: &[Event]) -> OrderId {
        events
            .iter()
            .find_map(|event| match event {
                Event::OrderAccepted { order_id, .. } => Some(*order_id),
                _ => None,
            })
            .expect("an OrderAccepted event")
    }

    /// The fills in `events`: (price, quantity, maker order, taker order).
    pub fn fills(events: &[Event]) -> Vec<(Price, u64, OrderId, OrderId)> {
        events
            .iter()
            .filter_map(|event| match event {
                Event::Fill {
                    price,
                    quantity,
                    maker_order_id,
                    taker_order_id,
                    ..
                } => Some((*price, quantity.0, *maker_order_id, *taker_order_id)),
                _ => None,
            })
            .collect()
    }

    /// The book side as (order id, open quantity), in priority order.
    pub fn queue(&self, side: Side) -> Vec<(OrderId, u64)> {
        self.engine
            .book_orders(ACME_USD, side)
            .map(|order| (order.order_id, order.remaining.0))
            .collect()
    }
}
