//! `exchange serve`: start the exchange from its journal.
//!
//! Start-up is recovery: the journal under `data_dir/journal` is verified
//! (a torn tail truncated), the newest valid snapshot restored and every
//! command after it replayed. A journal with no commands gets the genesis
//! commands of the configuration (assets, instruments, accounts and their
//! first deposits), journaled like any other command. The order-entry,
//! funding and market-data listeners come on top of this (issues #4, #5).

use crate::config::{Config, format_scaled};
use engine::{Engine, Recovered, Sequencer, Status};

/// The sequencer started from the journal, with genesis applied if the
/// journal was empty, and what recovery did.
pub fn boot(config: &Config) -> anyhow::Result<(Sequencer, Recovered)> {
    let dir = config.journal_dir();
    let (mut sequencer, recovered) =
        Sequencer::open(&dir, config.engine_config()?, config.journal_options())?;
    if sequencer.engine().last_sequence() == 0 {
        let mut events = Vec::new();
        for command in config.genesis()? {
            events.clear();
            let (_, status) = sequencer.submit(&command, &mut events)?;
            if status != Status::Applied {
                anyhow::bail!("genesis command {command:?} was not applied: {status:?}");
            }
        }
        let durable_through = sequencer.engine().last_sequence();
        let durable = sequencer.durable();
        sequencer.journal().sync()?;
        anyhow::ensure!(
            durable.wait_for(durable_through, std::time::Duration::from_secs(10)),
            "the journal did not make genesis durable"
        );
    }
    sequencer
        .engine()
        .check_invariants()
        .map_err(|violation| anyhow::anyhow!("invariant broken after start: {violation}"))?;
    Ok((sequencer, recovered))
}

/// What recovery did, for the operator.
pub fn describe_recovery(recovered: &Recovered) -> String {
    let mut text = String::new();
    if let Some(torn) = &recovered.journal.torn_tail {
        text.push_str(&format!(
            "exchange: truncated a torn tail of {} bytes at offset {} of {}: {}\n",
            torn.bytes,
            torn.offset,
            torn.segment.display(),
            torn.reason
        ));
    }
    for skipped in &recovered.snapshots_skipped {
        text.push_str(&format!(
            "exchange: passed over a bad snapshot: {skipped}\n"
        ));
    }
    match &recovered.snapshot {
        Some(snapshot) => text.push_str(&format!(
            "exchange: recovered from snapshot at sequence {} and {} journaled commands\n",
            snapshot.sequence, recovered.replayed
        )),
        None => text.push_str(&format!(
            "exchange: recovered {} journaled commands\n",
            recovered.replayed
        )),
    }
    text
}

/// A summary of the booted exchange, for the operator.
pub fn describe(config: &Config, engine: &Engine) -> String {
    let mut text = String::new();
    text.push_str(&format!(
        "exchange: at sequence {}; state hash {:032x}\n",
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
