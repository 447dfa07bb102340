//! `exchange serve`: start the exchange from its journal.
//!
//! Start-up is recovery: the journal under `data_dir/journal` is verified
//! (a torn tail truncated), the newest valid snapshot restored and every
//! command after it replayed. A journal with no commands gets the genesis
//! commands of the configuration (assets, instruments, accounts and their
//! first deposits), journaled like any other command. The order-entry,
//! funding and market-data listeners come on top of this (issues #4, #5).

use crate::config::{Config, format_scaled};
use engine::{Command, Engine, Recovered, Sequencer, Status};

/// The sequencer started from the journal, with the configuration's
/// genesis commands journaled if they are not all there yet, and what
/// recovery did.
pub fn boot(config: &Config) -> anyhow::Result<(Sequencer, Recovered)> {
    let dir = config.journal_dir();
    let genesis = config.genesis()?;
    // A bad login table stops the start, before anything is journaled.
    config.logins()?;
    let (mut sequencer, recovered) =
        Sequencer::open(&dir, config.engine_config()?, config.journal_options())?;
    let journaled = check_genesis_prefix(&sequencer, &genesis)?;
    if journaled < genesis.len() {
        let mut events = Vec::new();
        for command in &genesis[journaled..] {
            events.clear();
            let (_, status) = sequencer.submit(command, &mut events)?;
            if status != Status::Applied {
                anyhow::bail!("genesis command {command} was not applied: {status:?}");
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

/// How many of the genesis commands the journal already starts with. A
/// first start stopped part-way through genesis is finished by the next
/// one; a journal that starts otherwise was begun with another
/// configuration, and assets, instruments and accounts are changed by admin
/// commands, not by editing the configuration, so the start is refused.
fn check_genesis_prefix(sequencer: &Sequencer, genesis: &[Command]) -> anyhow::Result<usize> {
    let journal = sequencer.journal();
    let last = journal.last_sequence();
    let first_present = journal.segments().first().map_or(1, |&(_, first, _)| first);
    if first_present > 1 {
        // The early segments are gone (a snapshot covers them): nothing to
        // compare with, and genesis was long finished.
        return Ok(genesis.len());
    }
    let compared = genesis.len().min(usize::try_from(last)?);
    let mut reader = journal.reader(1);
    for (index, expected) in genesis[..compared].iter().enumerate() {
        let record = reader
            .next()?
            .ok_or_else(|| anyhow::anyhow!("the journal ended before record {}", index + 1))?;
        let command = engine::codec::decode(record.record_type, record.body)?;
        if command != *expected {
            anyhow::bail!(
                "journal record {} is `{command}`, but this configuration's genesis has \
                 `{expected}` there: the journal in {} was begun with another configuration",
                record.sequence,
                journal.dir().display()
            );
        }
    }
    Ok(compared)
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
            let Some(balance) = engine.balance(engine::AccountId(account.id), asset_id) else {
                continue;
            };
            let available = format_scaled(u128::from(balance.available), u32::from(asset.scale));
            text.push_str(&format!(" {} {}", available, asset.symbol));
        }
        text.push('\n');
    }
    text
}
