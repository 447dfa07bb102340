//! `exchange serve`: boot the exchange from its configuration.
//!
//! Today this builds the engine's state exactly as the server will at first
//! start — the genesis commands (assets, instruments, accounts, their
//! journaled first deposits) applied in sequence — checks every invariant and
//! reports the result. The order-entry, funding and market-data listeners
//! and the journal are built on top of this (issues #3, #4 and #5).

use crate::config::{Config, format_scaled};
use engine::{CommandHeader, Engine, Status};

/// The engine after the genesis commands of `config`.
pub fn boot(config: &Config) -> anyhow::Result<Engine> {
    let mut engine = Engine::new(config.engine_config()?)?;
    let mut events = Vec::new();
    for (index, command) in config.genesis()?.iter().enumerate() {
        let header = CommandHeader {
            sequence: u64::try_from(index)? + 1,
            timestamp_ns: 0,
        };
        events.clear();
        let status = engine.apply(header, command, &mut events);
        if status != Status::Applied {
            anyhow::bail!("genesis command {command:?} was not applied: {status:?}");
        }
    }
    engine
        .check_invariants()
        .map_err(|violation| anyhow::anyhow!("invariant broken after genesis: {violation}"))?;
    Ok(engine)
}

/// A summary of the booted exchange, for the operator.
pub fn describe(config: &Config, engine: &Engine) -> String {
    let mut text = String::new();
    text.push_str(&format!(
        "exchange: {} commands of genesis applied; state hash {:032x}\n",
        engine.last_sequence(),
        engine.state_hash()
    ));
    for id in engine.instruments() {
        let view = engine.instrument(id).expect("listed instruments exist");
        let quote = engine
            .asset(view.spec.quote)
            .expect("instruments quote existing assets");
        let scale = u32::from(quote.scale);
        let price = |price: engine::Price| format_scaled(u128::from(price.0.unsigned_abs()), scale);
        text.push_str(&format!(
            "  instrument {} {}: reference {} {}, band {}..{}, tick {}, status {:?}\n",
            id,
            view.spec.symbol,
            price(view.spec.reference_price),
            quote.symbol,
            price(view.band.low),
            price(view.band.high),
            price(view.spec.tick_size),
            view.status,
        ));
    }
    for account in &config.accounts {
        text.push_str(&format!("  account {} {}:", account.id, account.name));
        for (asset_id, asset) in engine.assets() {
            let balance = engine
                .balance(engine::AccountId(account.id), asset_id)
                .expect("configured accounts exist");
            let available = format_scaled(u128::from(balance.available), u32::from(asset.scale));
            text.push_str(&format!(" {} {}", available, asset.symbol));
        }
        text.push('\n');
    }
    text
}
