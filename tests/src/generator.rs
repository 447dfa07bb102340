//! Seeded command streams for the engine-versus-reference property tests.
//!
//! A [`CommandGenerator`] draws every choice from a [`SimulationRng`] seeded
//! by one `u64`, and reads only the reference model (itself a function of
//! the commands so far), so a stream is reproduced from its seed alone.
//!
//! A stream starts with setup (assets, accounts, three instruments with
//! small ticks and lots and per-seed fee rates, deposits), then draws a
//! weighted mix of every command. The mix is aimed so that every path is
//! taken often:
//! - few accounts, two of them busy, so that self-trades happen under all
//!   five self-trade modes;
//! - prices clustered a few ticks around the reference (and sometimes at the
//!   best opposite price), so that books cross and trade;
//! - cancels and replaces aimed at live orders, by user reference and by id,
//!   sometimes from another account;
//! - funding with fresh, repeated, altered and stale transfer ids;
//! - suspensions, halts, instrument updates, end of day;
//! - deliberately bad inputs: unknown ids, off-tick and out-of-band prices,
//!   off-lot, zero and huge quantities, amounts that overflow, invalid
//!   specs, and per-seed capacities (`orders_max`, `transfer_records_max`,
//!   `price_levels_max`) small enough that `BookFull`,
//!   `TransferIdNotIncreasing` and `BandTooWide` happen.

use std::collections::VecDeque;

use engine::{
    AccountId, AccountQuery, AccountStatus, AdminCommand, AssetId, CancelOrder, Command, Deposit,
    EngineConfig, InstrumentId, InstrumentSpec, InstrumentUpdate, MassCancel, NewOrder, OrderPrice,
    OrderRef, OrderView, Price, Quantity, ReplaceOrder, SelfTradePrevention, Side, Symbol,
    TimeInForce, TradingStatus, Transfer, TransferId, UserRefNum, Withdrawal,
};

use crate::reference::ReferenceModel;

/// SplitMix64: tiny, fast, and fully determined by its seed, which is all a
/// reproducible simulation needs (it is not for anything secret).
#[derive(Clone, Debug)]
pub struct SimulationRng {
    state: u64,
}

impl SimulationRng {
    pub fn new(seed: u64) -> SimulationRng {
        SimulationRng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in `0..bound` (with a modulo bias far too small to matter
    /// here); `bound` must be positive.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0) has no value");
        self.next_u64() % bound
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: i64, high: i64) -> i64 {
        assert!(low <= high, "an empty range");
        let span = high.abs_diff(low) + 1;
        low.wrapping_add_unsigned(self.below(span))
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        assert!(!items.is_empty(), "pick from nothing");
        items[self.below(items.len() as u64) as usize]
    }
}

const USD: AssetId = AssetId(0);
const ACME: AssetId = AssetId(1);
const EUR: AssetId = AssetId(2);
const BTC: AssetId = AssetId(3);
/// Not created at setup: an admin command may create it later.
const SPARE_ASSET: AssetId = AssetId(4);
const TRADING_ASSETS: [AssetId; 4] = [USD, ACME, EUR, BTC];
const ASSETS_MAX: u16 = 5;

const TRADERS: [AccountId; 5] = [
    AccountId(1),
    AccountId(2),
    AccountId(3),
    AccountId(4),
    AccountId(5),
];
/// Not created at setup: an admin command may create it later.
const SPARE_ACCOUNT: AccountId = AccountId(6);
const ACCOUNTS_MAX: u32 = 8;

const ACME_USD: InstrumentId = InstrumentId(0);
const EUR_USD: InstrumentId = InstrumentId(1);
const BTC_EUR: InstrumentId = InstrumentId(2);
/// Not created at setup: an admin command may create it later.
const SPARE_INSTRUMENT: InstrumentId = InstrumentId(3);
const INSTRUMENTS_MAX: u32 = 4;

/// Fee rates (maker, taker) a seed draws its instruments' rates from.
const FEE_CHOICES: [(u16, u16); 7] = [
    (0, 0),
    (10, 25),
    (25, 10),
    (1, 3),
    (100, 100),
    (30, 0),
    (0, 30),
];
/// Rarer, extreme rates an update may set (a maker fee of 100 % leaves a
/// selling maker nothing).
const EXTREME_FEES: [(u16, u16); 3] = [(10_000, 0), (0, 10_000), (10_000, 10_000)];

/// How many recent funding commands are kept for resending.
const FUNDING_HISTORY_MAX: usize = 32;

/// The shape of an instrument as the generator aims prices and quantities
/// (defaults for an instrument that does not exist).
#[derive(Clone, Copy, Debug)]
struct Shape {
    reference: i64,
    tick: i64,
    lot: u64,
    min: u64,
    max: u64,
    band_low: i64,
    band_high: i64,
}

/// Generates one seeded stream: see the module documentation.
#[derive(Debug)]
pub struct CommandGenerator {
    rng: SimulationRng,
    config: EngineConfig,
    setup: VecDeque<Command>,
    funding_history: VecDeque<Command>,
}

fn symbol(text: &str) -> Symbol {
    // Invariant: only called with the constant symbols below, which are
    // 1–8 printable ASCII characters.
    Symbol::new(text).expect("a valid constant symbol")
}

/// `count` ticks away from `base`, saturating (references may be near the
/// ends of `i64` after an update).
fn ticks_from(base: i64, tick: i64, count: i64) -> i64 {
    base.saturating_add(tick.saturating_mul(count))
}

/// The maximum quantity an instrument is created with, which updates go
/// back to (so that a small maximum set by one update does not stick).
fn original_max(instrument: InstrumentId) -> u64 {
    match instrument {
        ACME_USD => 40,
        EUR_USD => 500,
        BTC_EUR => 1 << 62,
        _ => 30,
    }
}

fn admin(command: AdminCommand) -> Command {
    Command::Admin(command)
}

impl CommandGenerator {
    /// The stream of `seed`, and the engine configuration it is meant for.
    pub fn new(seed: u64) -> CommandGenerator {
        let mut rng = SimulationRng::new(seed);
        let config = EngineConfig {
            accounts_max: ACCOUNTS_MAX,
            assets_max: ASSETS_MAX,
            instruments_max: INSTRUMENTS_MAX,
            orders_max: rng.pick(&[3, 6, 16, 64, 256]),
            price_levels_max: rng.pick(&[48, 64, 200]),
            transfer_records_max: rng.pick(&[1, 2, 4, 16, 1_024]),
            fee_account: rng.pick(&[AccountId(0), AccountId(7)]),
        };
        let mut generator = CommandGenerator {
            rng,
            config,
            setup: VecDeque::new(),
            funding_history: VecDeque::new(),
        };
        generator.setup = generator.setup_commands().into();
        generator
    }

    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// The next command, given the state the previous ones produced.
    pub fn next_command(&mut self, model: &ReferenceModel) -> Command {
        if let Some(command) = self.setup.pop_front() {
            return command;
        }
        let command = match self.rng.below(1_000) {
            0..480 => self.new_order(model),
            480..600 => self.cancel(model),
            600..720 => self.replace(model),
            720..735 => self.mass_cancel(),
            735..780 => self.deposit(model),
            780..810 => self.withdrawal(model),
            810..855 => self.transfer(model),
            855..870 => Command::AccountQuery(AccountQuery {
                account: self.account(),
            }),
            870..885 => self.set_account_status(model),
            885..900 => self.set_trading_status(model),
            900..955 => self.update_instrument(model),
            955..970 => admin(AdminCommand::EndOfDay),
            970..980 => self.create_asset(),
            980..990 => self.create_account(),
            _ => self.create_instrument(),
        };
        if matches!(
            command,
            Command::Deposit(_) | Command::Withdrawal(_) | Command::Transfer(_)
        ) {
            self.funding_history.push_back(command);
            if self.funding_history.len() > FUNDING_HISTORY_MAX {
                self.funding_history.pop_front();
            }
        }
        command
    }

    // -----------------------------------------------------------------------
    // Setup.
    // -----------------------------------------------------------------------

    fn setup_commands(&mut self) -> Vec<Command> {
        let mut commands = vec![
            admin(AdminCommand::CreateAsset {
                asset: USD,
                symbol: symbol("USD"),
                scale: 4,
            }),
            admin(AdminCommand::CreateAsset {
                asset: ACME,
                symbol: symbol("ACME"),
                scale: 0,
            }),
            admin(AdminCommand::CreateAsset {
                asset: EUR,
                symbol: symbol("EUR"),
                scale: 2,
            }),
            admin(AdminCommand::CreateAsset {
                asset: BTC,
                symbol: symbol("BTC"),
                scale: 8,
            }),
        ];
        for account in TRADERS {
            commands.push(admin(AdminCommand::CreateAccount { account }));
        }
        for (instrument, spec) in self.instrument_specs() {
            commands.push(admin(AdminCommand::CreateInstrument { instrument, spec }));
        }
        let mut depositors = TRADERS.to_vec();
        depositors.push(self.config.fee_account);
        for account in depositors {
            let amounts = [
                self.rng.pick(&[100_000, 300_000, 1_000_000]),
                self.rng.pick(&[50, 150, 400]),
                self.rng.pick(&[100_000, 400_000]),
                self.rng.pick(&[10_000_000, 40_000_000]),
            ];
            for (index, (asset, amount)) in TRADING_ASSETS.into_iter().zip(amounts).enumerate() {
                commands.push(Command::Deposit(Deposit {
                    account,
                    asset,
                    amount,
                    transfer_id: TransferId(index as u64 + 1),
                }));
            }
        }
        commands
    }

    fn instrument_specs(&mut self) -> [(InstrumentId, InstrumentSpec); 3] {
        let mut fees = || {
            let (maker, taker) = self.rng.pick(&FEE_CHOICES);
            (maker, taker)
        };
        let (acme_maker, acme_taker) = fees();
        let (eur_maker, eur_taker) = fees();
        let (btc_maker, btc_taker) = fees();
        [
            (
                ACME_USD,
                InstrumentSpec {
                    symbol: symbol("ACME"),
                    base: ACME,
                    quote: USD,
                    quantity_unit: 1,
                    tick_size: Price(5),
                    lot_size: Quantity(1),
                    min_quantity: Quantity(1),
                    max_quantity: Quantity(original_max(ACME_USD)),
                    reference_price: Price(1_000),
                    band_bps: 500,
                    maker_fee_bps: acme_maker,
                    taker_fee_bps: acme_taker,
                },
            ),
            (
                EUR_USD,
                InstrumentSpec {
                    symbol: symbol("EURUSD"),
                    base: EUR,
                    quote: USD,
                    quantity_unit: 100,
                    tick_size: Price(1),
                    lot_size: Quantity(10),
                    min_quantity: Quantity(10),
                    max_quantity: Quantity(original_max(EUR_USD)),
                    reference_price: Price(110),
                    band_bps: 1_000,
                    maker_fee_bps: eur_maker,
                    taker_fee_bps: eur_taker,
                },
            ),
            (
                BTC_EUR,
                InstrumentSpec {
                    symbol: symbol("BTCEUR"),
                    base: BTC,
                    quote: EUR,
                    quantity_unit: 1_000_000,
                    tick_size: Price(10),
                    lot_size: Quantity(1),
                    min_quantity: Quantity(1),
                    // Huge, so that huge quantities reach the Overflow check.
                    max_quantity: Quantity(original_max(BTC_EUR)),
                    reference_price: Price(5_000),
                    band_bps: 200,
                    maker_fee_bps: btc_maker,
                    taker_fee_bps: btc_taker,
                },
            ),
        ]
    }

    // -----------------------------------------------------------------------
    // Picking accounts, instruments, references, prices and quantities.
    // -----------------------------------------------------------------------

    /// Mostly the two busy traders; sometimes the fee account, the spare
    /// account, or an id that is not an account.
    fn account(&mut self) -> AccountId {
        let unused = if self.config.fee_account == AccountId(0) {
            AccountId(7)
        } else {
            AccountId(0)
        };
        match self.rng.below(100) {
            0..30 => TRADERS[0],
            30..55 => TRADERS[1],
            55..70 => TRADERS[2],
            70..80 => TRADERS[3],
            80..88 => TRADERS[4],
            88..95 => self.config.fee_account,
            95..98 => SPARE_ACCOUNT,
            _ => self
                .rng
                .pick(&[unused, AccountId(ACCOUNTS_MAX), AccountId(u32::MAX)]),
        }
    }

    fn instrument(&mut self) -> InstrumentId {
        match self.rng.below(100) {
            0..40 => ACME_USD,
            40..65 => EUR_USD,
            65..90 => BTC_EUR,
            90..97 => SPARE_INSTRUMENT,
            _ => self
                .rng
                .pick(&[InstrumentId(INSTRUMENTS_MAX), InstrumentId(u32::MAX)]),
        }
    }

    fn shape(model: &ReferenceModel, instrument: InstrumentId) -> Shape {
        match model.instrument(instrument) {
            Some(view) => Shape {
                reference: view.spec.reference_price.0,
                tick: view.spec.tick_size.0,
                lot: view.spec.lot_size.0,
                min: view.spec.min_quantity.0,
                max: view.spec.max_quantity.0,
                band_low: view.band.low.0,
                band_high: view.band.high.0,
            },
            None => Shape {
                reference: 100,
                tick: 1,
                lot: 1,
                min: 1,
                max: 100,
                band_low: 90,
                band_high: 110,
            },
        }
    }

    /// Mostly the next reference; sometimes a gap, a repeat or zero.
    fn user_ref_num(&mut self, model: &ReferenceModel, account: AccountId) -> UserRefNum {
        let last = model.last_user_ref_num(account).map_or(0, |last| last.0);
        UserRefNum(match self.rng.below(100) {
            0..3 => last,
            3..5 => last.saturating_sub(self.rng.below(4)),
            5..6 => 0,
            6..15 => last + 1 + self.rng.below(5),
            _ => last + 1,
        })
    }

    /// Mostly a few ticks around the reference or at the best opposite
    /// price; sometimes off the tick, outside the band, or not positive.
    fn limit_price(
        &mut self,
        model: &ReferenceModel,
        instrument: InstrumentId,
        side: Side,
    ) -> Price {
        let shape = Self::shape(model, instrument);
        let touch = match side {
            Side::Buy => model.best_ask(instrument),
            Side::Sell => model.best_bid(instrument),
        };
        Price(match self.rng.below(100) {
            0..3 => shape.reference.saturating_add(1),
            3..5 => shape.band_high.saturating_add(shape.tick),
            5..7 => shape.band_low.saturating_sub(shape.tick),
            7..8 => self.rng.pick(&[0, -shape.tick, i64::MIN, i64::MAX]),
            8..30 => touch.map_or(shape.reference, |(price, _)| price.0),
            // Slightly aggressive: a buy a little above the reference more
            // often than below, a sell the other way, so books cross.
            _ => {
                let offset = self.rng.between(-3, 4);
                let offset = if side == Side::Buy { offset } else { -offset };
                ticks_from(shape.reference, shape.tick, offset)
            }
        })
    }

    /// Mostly a few lots; sometimes zero, off the lot, above the maximum or
    /// huge.
    fn quantity(&mut self, model: &ReferenceModel, instrument: InstrumentId) -> Quantity {
        let shape = Self::shape(model, instrument);
        Quantity(match self.rng.below(100) {
            0..2 => 0,
            2..4 => shape.lot * self.rng.between(1, 3) as u64 + 1,
            4..6 => shape.max.saturating_add(shape.lot),
            6..8 => self.rng.pick(&[1 << 40, 1 << 62, u64::MAX]),
            _ => (shape.lot * self.rng.between(1, 6) as u64).max(shape.min),
        })
    }

    fn self_trade(&mut self) -> SelfTradePrevention {
        match self.rng.below(100) {
            0..40 => SelfTradePrevention::None,
            40..55 => SelfTradePrevention::CancelNewest,
            55..70 => SelfTradePrevention::CancelOldest,
            70..85 => SelfTradePrevention::CancelBoth,
            _ => SelfTradePrevention::DecrementAndCancel,
        }
    }

    fn pick_order(&mut self, model: &ReferenceModel) -> Option<OrderView> {
        let orders = model.open_order_views();
        (!orders.is_empty()).then(|| self.rng.pick(&orders))
    }

    // -----------------------------------------------------------------------
    // Trading commands.
    // -----------------------------------------------------------------------

    fn new_order(&mut self, model: &ReferenceModel) -> Command {
        if self.rng.chance(20)
            && let Some(target) = self.pick_order(model)
        {
            return self.crossing_order(model, &target);
        }
        let account = self.account();
        let instrument = self.instrument();
        let side = if self.rng.chance(50) {
            Side::Buy
        } else {
            Side::Sell
        };
        let market = self.rng.chance(20);
        let time_in_force = match (market, self.rng.below(100)) {
            (true, 0..45) | (false, 70..85) => TimeInForce::ImmediateOrCancel,
            (true, 45..90) | (false, 85..100) => TimeInForce::FillOrKill,
            (true, 90..95) | (false, 0..35) => TimeInForce::Day,
            _ => TimeInForce::GoodTillCancel,
        };
        let post_only = if market || !time_in_force.rests() {
            self.rng.chance(3)
        } else {
            self.rng.chance(15)
        };
        let price = if market {
            let protection = match self.rng.below(100) {
                0..45 => None,
                45..90 => Some(self.limit_price(model, instrument, side)),
                90..95 => Some(Price(self.rng.pick(&[0, -5]))),
                _ => Some(Price(self.rng.pick(&[1, i64::MAX]))),
            };
            OrderPrice::Market { protection }
        } else {
            OrderPrice::Limit(self.limit_price(model, instrument, side))
        };
        Command::NewOrder(NewOrder {
            account,
            user_ref_num: self.user_ref_num(model, account),
            instrument,
            side,
            price,
            quantity: self.quantity(model, instrument),
            time_in_force,
            post_only,
            self_trade: self.self_trade(),
        })
    }

    /// An order aimed at a resting one: the opposite side, at its price or
    /// a tick or two through it, usually from the same account, so that
    /// self-trade prevention and fill-or-kill meet an own order often.
    fn crossing_order(&mut self, model: &ReferenceModel, target: &OrderView) -> Command {
        let account = if self.rng.chance(70) {
            target.account
        } else {
            self.account()
        };
        let shape = Self::shape(model, target.instrument);
        let side = target.side.opposite();
        let through = match side {
            Side::Buy => self.rng.between(0, 2),
            Side::Sell => -self.rng.between(0, 2),
        };
        let limit = Price(ticks_from(target.price.0, shape.tick, through));
        let price = if self.rng.chance(15) {
            OrderPrice::Market {
                protection: self.rng.chance(50).then_some(limit),
            }
        } else {
            OrderPrice::Limit(limit)
        };
        let time_in_force = match (
            matches!(price, OrderPrice::Market { .. }),
            self.rng.below(4),
        ) {
            (false, 0) => TimeInForce::Day,
            (false, 1) => TimeInForce::GoodTillCancel,
            (_, 2) => TimeInForce::FillOrKill,
            _ => TimeInForce::ImmediateOrCancel,
        };
        let lots = target.remaining.0 / shape.lot;
        let quantity = Quantity(shape.lot * self.rng.between(1, 2 * lots as i64 + 1) as u64);
        Command::NewOrder(NewOrder {
            account,
            user_ref_num: self.user_ref_num(model, account),
            instrument: target.instrument,
            side,
            price,
            quantity,
            time_in_force,
            post_only: self.rng.chance(5),
            self_trade: self.self_trade(),
        })
    }

    fn cancel(&mut self, model: &ReferenceModel) -> Command {
        let target = self.pick_order(model).filter(|_| self.rng.chance(88));
        let Some(order) = target else {
            let account = self.account();
            let last = model.last_user_ref_num(account).map_or(0, |last| last.0);
            let order = if self.rng.chance(50) {
                OrderRef::UserRef(UserRefNum(self.rng.below(last + 3)))
            } else {
                OrderRef::Id(engine::OrderId(self.rng.pick(&[
                    0,
                    1,
                    7,
                    1 << 40,
                    u64::MAX,
                ])))
            };
            return Command::CancelOrder(CancelOrder {
                account,
                order,
                quantity: Quantity(self.rng.pick(&[0, 1, 10])),
            });
        };
        let account = if self.rng.chance(85) {
            order.account
        } else {
            self.account()
        };
        let lot = Self::shape(model, order.instrument).lot;
        let open = order.remaining.0;
        let quantity = match self.rng.below(100) {
            0..50 => 0,
            50..80 => lot * self.rng.below(open / lot),
            80..88 => lot + 1,
            88..95 => open,
            _ => open + lot,
        };
        Command::CancelOrder(CancelOrder {
            account,
            order: self.order_ref(&order),
            quantity: Quantity(quantity),
        })
    }

    fn order_ref(&mut self, order: &OrderView) -> OrderRef {
        if self.rng.chance(50) {
            OrderRef::UserRef(order.user_ref_num)
        } else {
            OrderRef::Id(order.order_id)
        }
    }

    fn replace(&mut self, model: &ReferenceModel) -> Command {
        let Some(order) = self.pick_order(model) else {
            return self.new_order(model);
        };
        let account = if self.rng.chance(90) {
            order.account
        } else {
            self.account()
        };
        let shape = Self::shape(model, order.instrument);
        let open = order.remaining.0;
        let (price, quantity) = match self.rng.below(100) {
            // Priority kept (unless the band or limits moved meanwhile).
            0..35 => (
                order.price.0,
                shape.lot * self.rng.between(1, (open / shape.lot) as i64) as u64,
            ),
            35..60 => (
                ticks_from(shape.reference, shape.tick, self.rng.between(-4, 4)),
                shape.lot * self.rng.between(1, 6) as u64,
            ),
            60..75 => (
                order.price.0,
                open + shape.lot * self.rng.between(1, 3) as u64,
            ),
            75..85 => {
                let touch = match order.side {
                    Side::Buy => model.best_ask(order.instrument),
                    Side::Sell => model.best_bid(order.instrument),
                };
                (touch.map_or(order.price.0, |(price, _)| price.0), open)
            }
            85..88 => (order.price.0.saturating_add(1), open),
            88..91 => (shape.band_high.saturating_add(shape.tick), open),
            91..94 => (order.price.0, shape.lot + 1),
            94..97 => (order.price.0, 0),
            _ => (order.price.0, self.rng.pick(&[1 << 40, 1 << 62, u64::MAX])),
        };
        Command::ReplaceOrder(ReplaceOrder {
            account,
            order: self.order_ref(&order),
            new_user_ref_num: self.user_ref_num(model, account),
            price: Price(price),
            quantity: Quantity(quantity),
        })
    }

    fn mass_cancel(&mut self) -> Command {
        let account = self.account();
        let instrument = self.rng.chance(50).then(|| self.instrument());
        Command::MassCancel(MassCancel {
            account,
            instrument,
        })
    }

    // -----------------------------------------------------------------------
    // Funding.
    // -----------------------------------------------------------------------

    /// Mostly the next id; sometimes a gap, the last one, zero or an old one.
    fn transfer_id(&mut self, model: &ReferenceModel, account: AccountId) -> TransferId {
        let last = model.last_transfer_id(account).map_or(0, |last| last.0);
        TransferId(match self.rng.below(100) {
            0..4 => last,
            4..6 => 0,
            6..8 => last.saturating_sub(2),
            8..14 => last + 1 + self.rng.below(3),
            _ => last + 1,
        })
    }

    fn funding_asset(&mut self) -> AssetId {
        match self.rng.below(100) {
            0..92 => self.rng.pick(&TRADING_ASSETS),
            92..96 => SPARE_ASSET,
            _ => AssetId(self.rng.pick(&[ASSETS_MAX, 99, u16::MAX])),
        }
    }

    /// A typical amount of `asset`.
    fn typical_amount(&mut self, asset: AssetId) -> u64 {
        let scale = match asset {
            USD | EUR => 50_000,
            ACME => 50,
            BTC => 10_000_000,
            _ => 1_000,
        };
        1 + self.rng.below(scale)
    }

    /// An amount to take out of an account's available balance: often all
    /// or part of it, sometimes more.
    fn debit_amount(&mut self, model: &ReferenceModel, account: AccountId, asset: AssetId) -> u64 {
        let available = model
            .balance(account, asset)
            .map_or(0, |balance| balance.available);
        match self.rng.below(100) {
            0..40 if available > 0 => 1 + self.rng.below(available),
            40..55 => available,
            55..70 => available.saturating_add(1 + self.rng.below(10)),
            70..75 => 0,
            75..77 => u64::MAX,
            _ => self.typical_amount(asset),
        }
    }

    /// A funding command sent before, again or with one field changed.
    fn resend(&mut self) -> Option<Command> {
        if self.funding_history.is_empty() || !self.rng.chance(15) {
            return None;
        }
        let index = self.rng.below(self.funding_history.len() as u64) as usize;
        let mut command = self.funding_history[index];
        if self.rng.chance(40) {
            match &mut command {
                Command::Deposit(deposit) => deposit.amount = deposit.amount.wrapping_add(1),
                Command::Withdrawal(withdrawal) => {
                    withdrawal.asset = AssetId(withdrawal.asset.0 ^ 1)
                }
                Command::Transfer(transfer) => transfer.to = AccountId(transfer.to.0 ^ 1),
                _ => {}
            }
        }
        Some(command)
    }

    fn deposit(&mut self, model: &ReferenceModel) -> Command {
        if let Some(command) = self.resend() {
            return command;
        }
        let account = self.account();
        let asset = self.funding_asset();
        let supply = model.asset_totals(asset).map_or(0, |totals| {
            u64::try_from(totals.supply()).unwrap_or(u64::MAX)
        });
        let amount = match self.rng.below(1_000) {
            0..50 => 0,
            50..60 => u64::MAX,
            60..63 => u64::MAX - supply,
            63..70 => u64::MAX / 8,
            _ => self.typical_amount(asset),
        };
        Command::Deposit(Deposit {
            account,
            asset,
            amount,
            transfer_id: self.transfer_id(model, account),
        })
    }

    fn withdrawal(&mut self, model: &ReferenceModel) -> Command {
        if let Some(command) = self.resend() {
            return command;
        }
        let account = self.account();
        let asset = self.funding_asset();
        Command::Withdrawal(Withdrawal {
            account,
            asset,
            amount: self.debit_amount(model, account, asset),
            transfer_id: self.transfer_id(model, account),
        })
    }

    fn transfer(&mut self, model: &ReferenceModel) -> Command {
        if let Some(command) = self.resend() {
            return command;
        }
        let from = self.account();
        let to = if self.rng.chance(6) {
            from
        } else {
            self.account()
        };
        let asset = self.funding_asset();
        Command::Transfer(Transfer {
            from,
            to,
            asset,
            amount: self.debit_amount(model, from, asset),
            transfer_id: self.transfer_id(model, from),
        })
    }

    // -----------------------------------------------------------------------
    // Admin.
    // -----------------------------------------------------------------------

    /// Suspensions are short: a suspended trader is usually reactivated by
    /// the next status command.
    fn set_account_status(&mut self, model: &ReferenceModel) -> Command {
        let suspended: Vec<AccountId> = model
            .accounts()
            .into_iter()
            .filter(|account| model.account_status(*account) == Some(AccountStatus::Suspended))
            .collect();
        let (account, status) = if !suspended.is_empty() && self.rng.chance(90) {
            (self.rng.pick(&suspended), AccountStatus::Active)
        } else {
            let status = if self.rng.chance(50) {
                AccountStatus::Suspended
            } else {
                AccountStatus::Active
            };
            (self.account(), status)
        };
        admin(AdminCommand::SetAccountStatus { account, status })
    }

    /// Halts are short, like suspensions.
    fn set_trading_status(&mut self, model: &ReferenceModel) -> Command {
        let halted: Vec<InstrumentId> = model
            .instruments()
            .into_iter()
            .filter(|instrument| {
                model.instrument(*instrument).map(|view| view.status) == Some(TradingStatus::Halted)
            })
            .collect();
        let (instrument, status) = if !halted.is_empty() && self.rng.chance(90) {
            (self.rng.pick(&halted), TradingStatus::Open)
        } else {
            let status = if self.rng.chance(50) {
                TradingStatus::Halted
            } else {
                TradingStatus::Open
            };
            (self.instrument(), status)
        };
        admin(AdminCommand::SetTradingStatus { instrument, status })
    }

    fn update_instrument(&mut self, model: &ReferenceModel) -> Command {
        let instrument = self.instrument();
        let shape = Self::shape(model, instrument);
        let reference = ticks_from(shape.reference, shape.tick, self.rng.between(-3, 3));
        let (maker, taker) = if self.rng.chance(5) {
            self.rng.pick(&EXTREME_FEES)
        } else {
            self.rng.pick(&FEE_CHOICES)
        };
        let mut update = InstrumentUpdate {
            reference_price: Price(if reference >= shape.tick {
                reference
            } else {
                shape.reference
            }),
            band_bps: self
                .rng
                .pick(&[0, 100, 500, 500, 500, 1_000, 1_000, 1_000, 2_000, 2_000]),
            min_quantity: Quantity(if self.rng.chance(10) {
                2 * shape.lot
            } else {
                shape.lot
            }),
            max_quantity: Quantity(if self.rng.chance(10) {
                4 * shape.lot
            } else {
                original_max(instrument)
            }),
            maker_fee_bps: maker,
            taker_fee_bps: taker,
        };
        match self.rng.below(100) {
            0..3 => update.reference_price.0 = update.reference_price.0.saturating_add(1),
            3..5 => update.reference_price = Price(self.rng.pick(&[0, -shape.tick])),
            5..7 => update.min_quantity = Quantity(update.max_quantity.0 + shape.lot),
            7..8 => update.min_quantity = Quantity(0),
            8..10 => update.min_quantity = Quantity(shape.lot + 1),
            10..12 => update.maker_fee_bps = 10_001,
            12..13 => update.taker_fee_bps = u16::MAX,
            13..15 => update.band_bps = self.rng.pick(&[10_001, u32::MAX]),
            15..20 => update.band_bps = 10_000,
            20..22 => {
                update.reference_price = Price(i64::MAX / shape.tick * shape.tick);
                update.band_bps = self.rng.pick(&[0, 1, 10_000]);
            }
            _ => {}
        }
        admin(AdminCommand::UpdateInstrument { instrument, update })
    }

    fn create_asset(&mut self) -> Command {
        let (asset, text, scale) = match self.rng.below(6) {
            0 => (SPARE_ASSET, "GOLD", 3),
            1 => (USD, "XAU", 2),
            2 => (SPARE_ASSET, "USD", 2),
            3 => (AssetId(ASSETS_MAX), "SILVER", 2),
            4 => (SPARE_ASSET, "OIL", 19),
            _ => (AssetId(u16::MAX), "USD", 200),
        };
        admin(AdminCommand::CreateAsset {
            asset,
            symbol: symbol(text),
            scale,
        })
    }

    fn create_account(&mut self) -> Command {
        let unused = if self.config.fee_account == AccountId(0) {
            AccountId(7)
        } else {
            AccountId(0)
        };
        let account = self.rng.pick(&[
            SPARE_ACCOUNT,
            unused,
            TRADERS[0],
            self.config.fee_account,
            AccountId(ACCOUNTS_MAX),
            AccountId(u32::MAX),
        ]);
        admin(AdminCommand::CreateAccount { account })
    }

    fn create_instrument(&mut self) -> Command {
        let (maker, taker) = self.rng.pick(&FEE_CHOICES);
        let mut instrument = SPARE_INSTRUMENT;
        let mut spec = InstrumentSpec {
            symbol: symbol("ACMEEUR"),
            base: ACME,
            quote: EUR,
            quantity_unit: 1,
            tick_size: Price(2),
            lot_size: Quantity(1),
            min_quantity: Quantity(1),
            max_quantity: Quantity(original_max(SPARE_INSTRUMENT)),
            reference_price: Price(900),
            band_bps: 500,
            maker_fee_bps: maker,
            taker_fee_bps: taker,
        };
        match self.rng.below(20) {
            0 => instrument = ACME_USD,
            1 => spec.symbol = symbol("ACME"),
            2 => instrument = InstrumentId(INSTRUMENTS_MAX),
            3 => spec.base = SPARE_ASSET,
            4 => spec.quote = AssetId(99),
            5 => spec.quote = spec.base,
            6 => spec.quantity_unit = 0,
            7 => spec.tick_size = Price(self.rng.pick(&[0, -2])),
            8 => spec.lot_size = Quantity(0),
            9 => spec.min_quantity = Quantity(0),
            10 => spec.min_quantity = Quantity(31),
            11 => {
                spec.lot_size = Quantity(4);
                spec.min_quantity = Quantity(4);
            }
            12 => spec.reference_price = Price(901),
            13 => spec.maker_fee_bps = 10_001,
            14 => spec.band_bps = 10_001,
            15 => {
                spec.tick_size = Price(1);
                spec.band_bps = 10_000;
            }
            16 => spec.reference_price = Price(i64::MAX - 1),
            _ => {}
        }
        admin(AdminCommand::CreateInstrument { instrument, spec })
    }
}
