//! Fixtures for the adapter and proxy tests: a directory with two logins
//! (`ALICE` trades account 1, `BOB` trades account 2; `FUND` funds) and
//! instruments listed through the engine's own events.

use engine::{
    AccountId, AssetId, Event, InstrumentId, InstrumentSpec, Price, Quantity, SelfTradePrevention,
    Symbol,
};

use super::directory::{Directory, DirectoryLogin};

pub(super) const ALICE: usize = 0;
pub(super) const BOB: usize = 1;
pub(super) const FUND: usize = 2;
pub(super) const ALICE_ACCOUNT: AccountId = AccountId(1);
pub(super) const BOB_ACCOUNT: AccountId = AccountId(2);
pub(super) const ACME: InstrumentId = InstrumentId(0);

fn login(name: &str, account: Option<u32>, trades: bool) -> DirectoryLogin {
    DirectoryLogin {
        name: name.to_owned(),
        account: account.map(AccountId),
        trades,
        self_trade: SelfTradePrevention::CancelOldest,
    }
}

/// A directory whose instruments are quoted in an asset of `scale`
/// decimals: `ACME` (instrument 0) and `WIDG` (1).
pub(super) fn directory(scale: u8) -> Directory {
    let logins = [
        login("alice", Some(1), true),
        login("bob", Some(2), true),
        login("fund", None, false),
    ];
    let mut directory = Directory::new(&logins).expect("one trading login per account");
    for event in listing_events(scale) {
        directory.observe(&event);
    }
    directory
}

/// Asset 1 (`scale` decimals) and the two instruments quoted in it.
pub(super) fn listing_events(scale: u8) -> Vec<Event> {
    let mut events = vec![Event::AssetCreated {
        asset: AssetId(1),
        symbol: Symbol::new("USD").expect("valid"),
        scale,
    }];
    for (id, symbol) in [(0, "ACME"), (1, "WIDG")] {
        events.push(Event::InstrumentCreated {
            instrument: InstrumentId(id),
            spec: spec(symbol, AssetId(1)),
        });
    }
    events
}

pub(super) fn spec(symbol: &str, quote: AssetId) -> InstrumentSpec {
    InstrumentSpec {
        symbol: Symbol::new(symbol).expect("valid"),
        base: AssetId(0),
        quote,
        quantity_unit: 1,
        tick_size: Price(1),
        lot_size: Quantity(1),
        min_quantity: Quantity(1),
        max_quantity: Quantity(1_000_000),
        reference_price: Price(100),
        band_bps: 10_000,
        maker_fee_bps: 0,
        taker_fee_bps: 0,
    }
}
