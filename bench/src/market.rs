//! The exchange every workload and bench trades on, and a driver that applies
//! commands the way the sequencer would.
//!
//! One quote asset (USD, 4 decimals, so `Price(1_000_000)` is 100.00), one
//! equity traded in it with the embedded configuration's rules (tick 0.01 =
//! `Price(100)`, lot 1 share, band ±10%, maker 1 bp, taker 3 bp), and
//! accounts `1..=accounts` each funded far beyond anything a workload can
//! spend, so that no order is rejected for want of money: a benchmark of
//! rejections would measure the wrong thing.

use engine::{
    AccountId, AdminCommand, AssetId, Command, CommandHeader, Deposit, Engine, EngineConfig, Event,
    InstrumentId, InstrumentSpec, NewOrder, OrderPrice, Price, Quantity, SelfTradePrevention, Side,
    Status, Symbol, TimeInForce, TransferId, UserRefNum,
};

/// A plain limit order on the benchmark instrument (no post-only, no
/// self-trade prevention), as every workload and bench enters them.
pub fn limit_order(
    account: AccountId,
    user_ref_num: UserRefNum,
    side: Side,
    price: Price,
    quantity: u64,
    time_in_force: TimeInForce,
) -> Command {
    Command::NewOrder(NewOrder {
        account,
        user_ref_num,
        instrument: INSTRUMENT,
        side,
        price: OrderPrice::Limit(price),
        quantity: Quantity(quantity),
        time_in_force,
        post_only: false,
        self_trade: SelfTradePrevention::None,
    })
}

/// The quote asset, USD with 4 decimals.
pub const QUOTE_ASSET: AssetId = AssetId(0);
/// The traded equity, in whole shares.
pub const BASE_ASSET: AssetId = AssetId(1);
/// The one instrument.
pub const INSTRUMENT: InstrumentId = InstrumentId(0);
/// Decimal places of USD.
pub const QUOTE_SCALE: u8 = 4;
/// Each account's deposit of USD in minor units: 10 billion dollars, so that
/// no workload runs out (a buy of 500 shares at 1 100.00 holds 5.5 × 10^9).
/// 4 096 accounts of it stay far below the `u64` supply limit.
pub const QUOTE_DEPOSIT: u64 = 100_000_000_000_000;
/// Each account's deposit of shares.
pub const BASE_DEPOSIT: u64 = 1_000_000_000;

/// The synthetic clock of the driver: the sequencer stamps time, the rules
/// never read it, and a fixed stamp keeps runs identical.
const TIMESTAMP_ORIGIN_NS: u64 = 1_700_000_000_000_000_000;

/// The header the sequencer would give command number `sequence`.
#[inline]
pub fn header(sequence: u64) -> CommandHeader {
    CommandHeader {
        sequence,
        timestamp_ns: TIMESTAMP_ORIGIN_NS + sequence * 1_000,
    }
}

/// An equity quoted in USD with the embedded configuration's rules.
///
/// ```
/// let spec = bench::equity("ACME", engine::Price(1_000_000));
/// assert!(spec.is_valid());
/// assert_eq!(spec.band().unwrap().low, engine::Price(900_000));
/// ```
pub fn equity(symbol: &str, reference_price: Price) -> InstrumentSpec {
    InstrumentSpec {
        // Invariant: callers pass short literal symbols.
        symbol: Symbol::new(symbol).expect("a valid symbol"),
        base: BASE_ASSET,
        quote: QUOTE_ASSET,
        quantity_unit: 1,
        tick_size: Price(100),
        lot_size: Quantity(1),
        min_quantity: Quantity(1),
        max_quantity: Quantity(1_000_000),
        reference_price,
        band_bps: 1_000,
        maker_fee_bps: 1,
        taker_fee_bps: 3,
    }
}

/// The commands that build the exchange: the two assets, the instrument,
/// accounts `1..=accounts` and two deposits each.
pub fn setup_commands(spec: &InstrumentSpec, accounts: u32) -> Vec<Command> {
    let mut commands = vec![
        Command::Admin(AdminCommand::CreateAsset {
            asset: QUOTE_ASSET,
            // Invariant: a literal valid symbol.
            symbol: Symbol::new("USD").expect("a valid symbol"),
            scale: QUOTE_SCALE,
        }),
        Command::Admin(AdminCommand::CreateAsset {
            asset: BASE_ASSET,
            symbol: spec.symbol,
            scale: 0,
        }),
        Command::Admin(AdminCommand::CreateInstrument {
            instrument: INSTRUMENT,
            spec: *spec,
        }),
    ];
    for account in trading_accounts(accounts) {
        commands.push(Command::Admin(AdminCommand::CreateAccount { account }));
        for (asset, amount, transfer_id) in [
            (QUOTE_ASSET, QUOTE_DEPOSIT, 1),
            (BASE_ASSET, BASE_DEPOSIT, 2),
        ] {
            commands.push(Command::Deposit(Deposit {
                account,
                asset,
                amount,
                transfer_id: TransferId(transfer_id),
            }));
        }
    }
    commands
}

/// Accounts `1..=accounts` (account 0 is the fee account).
pub fn trading_accounts(accounts: u32) -> impl Iterator<Item = AccountId> {
    (1..=accounts).map(AccountId)
}

/// An engine fed like the sequencer feeds it: contiguous sequence numbers,
/// a synthetic timestamp, and the events of each command in one reused
/// vector (cleared before each command, so it stops allocating once it has
/// grown to the largest command's events).
///
/// ```
/// use bench::{EngineDriver, equity, setup_commands};
/// let mut driver = EngineDriver::new(engine::EngineConfig::default()).unwrap();
/// for command in setup_commands(&equity("ACME", engine::Price(1_000_000)), 2) {
///     assert_eq!(driver.apply(&command), engine::Status::Applied);
/// }
/// assert_eq!(driver.engine().accounts().count(), 3);
/// ```
#[derive(Debug)]
pub struct EngineDriver {
    engine: Engine,
    last_sequence: u64,
    events: Vec<Event>,
}

impl EngineDriver {
    pub fn new(config: EngineConfig) -> Result<EngineDriver, engine::ConfigError> {
        Ok(EngineDriver {
            engine: Engine::new(config)?,
            last_sequence: 0,
            events: Vec::with_capacity(1_024),
        })
    }

    /// Apply the next command; its events are in [`EngineDriver::events`]
    /// until the next call.
    #[inline]
    pub fn apply(&mut self, command: &Command) -> Status {
        self.events.clear();
        self.last_sequence += 1;
        self.engine
            .apply(header(self.last_sequence), command, &mut self.events)
    }

    /// The events of the last command.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The sequence number of the last command applied.
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_builds_a_funded_exchange() {
        let spec = equity("ACME", Price(1_000_000));
        let mut driver = EngineDriver::new(EngineConfig::default()).unwrap();
        for command in setup_commands(&spec, 3) {
            assert_eq!(driver.apply(&command), Status::Applied, "{command:?}");
        }
        let engine = driver.engine();
        assert_eq!(engine.instrument(INSTRUMENT).unwrap().spec, spec);
        let balance = engine.balance(AccountId(3), QUOTE_ASSET).unwrap();
        assert_eq!((balance.available, balance.held), (QUOTE_DEPOSIT, 0));
        assert_eq!(
            engine.balance(AccountId(1), BASE_ASSET).unwrap().available,
            BASE_DEPOSIT
        );
        assert!(engine.balance(AccountId(4), BASE_ASSET).is_none());
        assert_eq!(driver.last_sequence(), 3 + 3 * 3);
    }
}
