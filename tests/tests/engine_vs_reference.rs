//! The engine against the reference model, on seeded random command streams.
//!
//! LONG MODE (not run by default; about 35 minutes per 100 000 streams on
//! two cores):
//!   ENGINE_SIM_CASES=100000 ENGINE_SIM_SEED=random \
//!     cargo test -p tests --test engine_vs_reference -- --nocapture
//! Reproduce a failing stream (the failure message prints this line):
//!   ENGINE_SIM_SEED=<seed> ENGINE_SIM_CASES=1 ENGINE_SIM_COMMANDS=<n> \
//!     cargo test -p tests --test engine_vs_reference
//!
//! Environment variables:
//! - `ENGINE_SIM_CASES`: number of streams (seeds), default 1 500 (25–35 s
//!   on two cores, depending on load);
//! - `ENGINE_SIM_COMMANDS`: commands per stream, default 400 (streams of
//!   every seed ≡ 19 mod 20 are ten times longer);
//! - `ENGINE_SIM_SEED`: first seed, a number or `random` (drawn from the
//!   clock and printed), default 0; stream `i` uses seed `first + i`.
//!
//! Every command of every stream is applied to the engine, to a twin engine
//! and to the reference model (`tests/src/reference.rs`, written from
//! `docs/engine.md` alone). After each command the test requires: the same
//! status and the same events from the engine and the model; the same
//! events and the same `state_hash` from the twin (determinism); a changed
//! `state_hash` whenever the model's state changed; `check_invariants` to
//! pass on both the engine and the model; and the same state through every
//! public view (balances, books in priority order, depth, account orders,
//! orders by reference, last references, totals, instruments). A default run
//! must also take every path in `required_paths` (every reject reason,
//! cancel reason, self-trade mode, funding repeat, ...).
//!
//! A failure prints the seed, the command that disagreed, both sides'
//! events, and the stream shrunk to a short sequence that still fails.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use engine::{
    AccountId, AdminCommand, AssetId, CancelReason, Command, CommandHeader, Engine, EngineConfig,
    Event, GatewayReject, InstrumentId, OrderId, OrderPrice, OrderRef, RejectReason,
    SelfTradePrevention, Side, Status, TimeInForce, UserRefNum,
};
use tests::{
    CommandGenerator, ModelSnapshot, ReferenceModel, environment_number, environment_seed,
    run_seeds, stream_length,
};

const CASES_DEFAULT: u64 = 1_500;
const COMMANDS_DEFAULT: u64 = 400;
/// Below this many streams the coverage check is skipped (a reproduction of
/// one seed need not cover everything).
const CASES_FOR_COVERAGE: u64 = 100;
const SHRINK_REPLAYS_MAX: u32 = 5_000;
const SHRINK_TIME_MAX: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Lockstep: the engine, its twin and the model, fed the same commands.
// ---------------------------------------------------------------------------

struct Lockstep {
    engine: Engine,
    twin: Engine,
    model: ReferenceModel,
    snapshot: ModelSnapshot,
    sequence: u64,
}

impl Lockstep {
    fn new(config: EngineConfig) -> Lockstep {
        let model = ReferenceModel::new(&config);
        Lockstep {
            engine: Engine::new(config).expect("the generator's configuration is valid"),
            twin: Engine::new(config).expect("the generator's configuration is valid"),
            snapshot: model.snapshot(),
            model,
            sequence: 0,
        }
    }

    /// Applies one command to all three and checks everything; the model's
    /// status and events on success.
    fn step(&mut self, command: &Command) -> Result<(Status, Vec<Event>), String> {
        self.sequence += 1;
        let header = CommandHeader {
            sequence: self.sequence,
            timestamp_ns: 1_700_000_000_000_000_000 + self.sequence * 1_000,
        };
        let hash_before = self.engine.state_hash();
        let mut events = Vec::new();
        let status = self.engine.apply(header, command, &mut events);
        let (model_status, model_events) = self.model.apply(header, command);
        if status != model_status || events != model_events {
            return Err(describe_disagreement(
                command,
                (status, &events),
                (model_status, &model_events),
            ));
        }

        let mut twin_events = Vec::new();
        let twin_status = self.twin.apply(header, command, &mut twin_events);
        if twin_status != status || twin_events != events {
            return Err(format!(
                "the twin engine disagrees with the engine on {command:?}"
            ));
        }
        let hash = self.engine.state_hash();
        if self.twin.state_hash() != hash {
            return Err(format!(
                "state hashes of two engines fed the same commands differ after {command:?}"
            ));
        }

        self.engine.check_invariants().map_err(|violation| {
            format!("engine invariant violated after {command:?}: {violation}")
        })?;
        self.model.check_invariants().map_err(|violation| {
            format!("model invariant violated after {command:?}: {violation}")
        })?;
        compare_state(&self.engine, &self.model).map_err(|difference| {
            format!("state differs after {command:?} (engine vs model): {difference}")
        })?;

        let snapshot = self.model.snapshot();
        if snapshot != self.snapshot && hash == hash_before {
            return Err(format!(
                "the state changed but state_hash did not, after {command:?}"
            ));
        }
        self.snapshot = snapshot;
        Ok((model_status, model_events))
    }
}

fn describe_disagreement(
    command: &Command,
    engine: (Status, &[Event]),
    model: (Status, &[Event]),
) -> String {
    let mut text = format!("engine and model disagree on\n  {command:?}\n");
    text += &format!("status: engine {:?}, model {:?}\n", engine.0, model.0);
    let length = engine.1.len().max(model.1.len());
    for index in 0..length {
        let left = engine.1.get(index);
        let right = model.1.get(index);
        let marker = if left == right { "  " } else { "≠ " };
        text += &format!("{marker}[{index}] engine {left:?}\n{marker}    model  {right:?}\n");
    }
    text
}

/// Every public view of the engine against the model's.
fn compare_state(engine: &Engine, model: &ReferenceModel) -> Result<(), String> {
    fn same<T: PartialEq + std::fmt::Debug>(what: &str, engine: T, model: T) -> Result<(), String> {
        if engine == model {
            Ok(())
        } else {
            Err(format!("{what}: engine {engine:?}, model {model:?}"))
        }
    }
    let config = model.config();
    same(
        "last_sequence",
        engine.last_sequence(),
        model.last_sequence(),
    )?;
    same("open_orders", engine.open_orders(), model.open_orders())?;
    same(
        "accounts",
        engine.accounts().collect::<Vec<_>>(),
        model.accounts(),
    )?;
    same(
        "assets",
        engine.assets().collect::<Vec<_>>(),
        model.assets(),
    )?;
    same(
        "instruments",
        engine.instruments().collect::<Vec<_>>(),
        model.instruments(),
    )?;

    for asset in (0..=config.assets_max).map(AssetId) {
        same(
            &format!("asset {asset:?}"),
            engine.asset(asset).copied(),
            model.asset(asset),
        )?;
        same(
            &format!("totals of {asset:?}"),
            engine.asset_totals(asset),
            model.asset_totals(asset),
        )?;
    }
    for account in (0..=config.accounts_max).map(AccountId) {
        same(
            &format!("status of {account:?}"),
            engine.account_status(account),
            model.account_status(account),
        )?;
        same(
            &format!("last user_ref_num of {account:?}"),
            engine.last_user_ref_num(account),
            model.last_user_ref_num(account),
        )?;
        same(
            &format!("last transfer id of {account:?}"),
            engine.last_transfer_id(account),
            model.last_transfer_id(account),
        )?;
        for asset in (0..=config.assets_max).map(AssetId) {
            same(
                &format!("balance of {account:?} in {asset:?}"),
                engine.balance(account, asset),
                model.balance(account, asset),
            )?;
        }
        same(
            &format!("orders of {account:?}"),
            engine.account_orders(account).collect::<Vec<_>>(),
            model.account_orders(account),
        )?;
    }
    for instrument in (0..=config.instruments_max).map(InstrumentId) {
        same(
            &format!("instrument {instrument:?}"),
            engine.instrument(instrument),
            model.instrument(instrument),
        )?;
        for side in [Side::Buy, Side::Sell] {
            same(
                &format!("book {instrument:?} {side:?}"),
                engine.book_orders(instrument, side).collect::<Vec<_>>(),
                model.book_orders(instrument, side),
            )?;
            same(
                &format!("depth {instrument:?} {side:?}"),
                engine.depth(instrument, side).collect::<Vec<_>>(),
                model.depth(instrument, side),
            )?;
        }
        same(
            &format!("best bid {instrument:?}"),
            engine.best_bid(instrument),
            model.best_bid(instrument),
        )?;
        same(
            &format!("best ask {instrument:?}"),
            engine.best_ask(instrument),
            model.best_ask(instrument),
        )?;
    }
    for order in model.open_order_views() {
        same(
            &format!("order {:?} by id", order.order_id),
            engine.order_by_id(order.order_id),
            Some(order),
        )?;
        same(
            &format!("order {:?} by its account's user reference", order.order_id),
            engine.order(order.account, OrderRef::UserRef(order.user_ref_num)),
            model.order_by_user_ref(order.account, order.user_ref_num),
        )?;
        same(
            &format!("order {:?} by its account and id", order.order_id),
            engine.order(order.account, OrderRef::Id(order.order_id)),
            Some(order),
        )?;
    }
    for order in model.open_order_views() {
        // Another account cannot name this order: by id it is not "an open
        // order of" that account.
        let other = AccountId(order.account.0 ^ 1);
        same(
            &format!("order {:?} named by {other:?}", order.order_id),
            engine.order(other, OrderRef::Id(order.order_id)),
            None,
        )?;
    }
    same("order id 0", engine.order_by_id(OrderId(0)), None)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Coverage: which paths the streams took.
// ---------------------------------------------------------------------------

/// How many times each named path was taken.
#[derive(Default)]
struct Paths(BTreeMap<String, u64>);

impl Paths {
    fn insert(&mut self, path: String) {
        *self.0.entry(path).or_default() += 1;
    }

    fn merge(&mut self, other: Paths) {
        for (path, count) in other.0 {
            *self.0.entry(path).or_default() += count;
        }
    }
}

/// The paths every default run must take, so that a generator change that
/// stops exercising one is noticed.
fn required_paths() -> BTreeSet<String> {
    // The generator does not make gateway rejects (adding them would change
    // every seeded stream): `gateway_rejects_agree_with_the_model` covers
    // them instead.
    let mut paths: BTreeSet<String> = RejectReason::ALL
        .iter()
        .filter(|&&reason| reason != RejectReason::GatewayRejected)
        .map(|reason| format!("reject {reason:?}"))
        .collect();
    for reason in [
        CancelReason::Requested,
        CancelReason::ImmediateOrCancel,
        CancelReason::FillOrKill,
        CancelReason::SelfTrade,
        CancelReason::MassCancel,
        CancelReason::EndOfDay,
    ] {
        paths.insert(format!("cancel {reason:?}"));
    }
    for mode in [
        SelfTradePrevention::CancelNewest,
        SelfTradePrevention::CancelOldest,
        SelfTradePrevention::CancelBoth,
        SelfTradePrevention::DecrementAndCancel,
    ] {
        paths.insert(format!("self-trade prevented {mode:?}"));
    }
    for mode in [
        SelfTradePrevention::None,
        SelfTradePrevention::CancelNewest,
        SelfTradePrevention::CancelOldest,
        SelfTradePrevention::CancelBoth,
        SelfTradePrevention::DecrementAndCancel,
    ] {
        paths.insert(format!("fill or kill meets own order {mode:?}"));
    }
    for path in [
        "fill",
        "fill without fees",
        "fill paying the seller nothing",
        "self-trade filled (mode None)",
        "fill of a market order",
        "fill of a replaced order",
        "fill and book",
        "partial cancel",
        "fill or kill filled",
        "booked",
        "replace priority kept",
        "replace priority lost",
        "duplicate of applied funding",
        "duplicate of rejected funding",
        "funding applied Deposit",
        "funding applied Withdrawal",
        "funding applied Transfer",
        "fee account credited",
        "account state",
        "mass canceled",
        "end of day",
        "asset created",
        "account created",
        "instrument created",
        "instrument updated",
        "trading status changed",
        "account status changed",
    ] {
        paths.insert(path.to_string());
    }
    paths
}

/// Paths that depend on the state before the command: a fill-or-kill
/// order that meets an order of its own account, under each mode.
fn record_paths_before(paths: &mut Paths, command: &Command, model: &ReferenceModel) {
    let Command::NewOrder(order) = command else {
        return;
    };
    if order.time_in_force != TimeInForce::FillOrKill {
        return;
    }
    let Some(view) = model.instrument(order.instrument) else {
        return;
    };
    let limit = match order.price {
        OrderPrice::Limit(price) => price,
        OrderPrice::Market { protection: None } => match order.side {
            Side::Buy => view.band.high,
            Side::Sell => view.band.low,
        },
        OrderPrice::Market {
            protection: Some(price),
        } => match order.side {
            Side::Buy => price.min(view.band.high),
            Side::Sell => price.max(view.band.low),
        },
    };
    let meets_own = model
        .book_orders(order.instrument, order.side.opposite())
        .iter()
        .any(|resting| {
            resting.account == order.account
                && match order.side {
                    Side::Buy => resting.price <= limit,
                    Side::Sell => resting.price >= limit,
                }
        });
    if meets_own {
        paths.insert(format!(
            "fill or kill meets own order {:?}",
            order.self_trade
        ));
    }
}

fn record_paths(
    paths: &mut Paths,
    command: &Command,
    status: Status,
    events: &[Event],
    fee_account: AccountId,
) {
    let kind = match command {
        Command::NewOrder(_) => "new order",
        Command::CancelOrder(_) => "cancel",
        Command::ReplaceOrder(_) => "replace",
        Command::MassCancel(_) => "mass cancel",
        Command::Deposit(_) => "deposit",
        Command::Withdrawal(_) => "withdrawal",
        Command::Transfer(_) => "transfer",
        Command::AccountQuery(_) => "account query",
        Command::GatewayReject(_) => "gateway reject",
        Command::Admin(_) => "admin",
    };
    let outcome = match status {
        Status::Applied => "applied",
        Status::Duplicate => "duplicate",
        Status::Rejected(reason) => {
            paths.insert(format!("reject {reason:?}"));
            "rejected"
        }
    };
    paths.insert(format!("status: {kind} {outcome}"));
    let fills = events
        .iter()
        .filter(|event| matches!(event, Event::Fill { .. }))
        .count();
    record_settlement_paths(paths, events, fee_account);
    for event in events {
        let path = match event {
            Event::Fill {
                maker_account,
                taker_account,
                ..
            } => {
                if maker_account == taker_account {
                    paths.insert("self-trade filled (mode None)".to_string());
                }
                match command {
                    Command::NewOrder(order)
                        if matches!(order.price, OrderPrice::Market { .. }) =>
                    {
                        paths.insert("fill of a market order".to_string());
                    }
                    Command::NewOrder(order) if order.time_in_force == TimeInForce::FillOrKill => {
                        paths.insert("fill or kill filled".to_string());
                    }
                    Command::ReplaceOrder(_) => {
                        paths.insert("fill of a replaced order".to_string());
                    }
                    _ => {}
                }
                "fill".to_string()
            }
            Event::OrderCanceled {
                reason: CancelReason::SelfTrade,
                ..
            } => {
                let mode = match command {
                    Command::NewOrder(order) => format!("{:?}", order.self_trade),
                    _ => "of a replaced order".to_string(),
                };
                paths.insert("cancel SelfTrade".to_string());
                format!("self-trade prevented {mode}")
            }
            Event::OrderCanceled {
                reason: CancelReason::Requested,
                remaining,
                ..
            } if remaining.0 > 0 => {
                paths.insert("cancel Requested".to_string());
                "partial cancel".to_string()
            }
            Event::OrderCanceled { reason, .. } => format!("cancel {reason:?}"),
            Event::OrderBooked { .. } if fills > 0 => {
                paths.insert("booked".to_string());
                "fill and book".to_string()
            }
            Event::OrderBooked { .. } => "booked".to_string(),
            Event::OrderReplaced {
                priority_kept: true,
                ..
            } => "replace priority kept".to_string(),
            Event::OrderReplaced {
                priority_kept: false,
                ..
            } => "replace priority lost".to_string(),
            Event::FundingDuplicate { original: None, .. } => {
                "duplicate of applied funding".to_string()
            }
            Event::FundingDuplicate {
                original: Some(_), ..
            } => "duplicate of rejected funding".to_string(),
            Event::FundingApplied { kind, .. } => format!("funding applied {kind:?}"),
            Event::BalanceChanged { account, .. } if *account == fee_account && fills > 0 => {
                "fee account credited".to_string()
            }
            Event::AccountState { .. } => "account state".to_string(),
            Event::MassCanceled { .. } => "mass canceled".to_string(),
            Event::EndOfDay { .. } => "end of day".to_string(),
            Event::AssetCreated { .. } => "asset created".to_string(),
            Event::AccountCreated { .. } => "account created".to_string(),
            Event::InstrumentCreated { .. } => "instrument created".to_string(),
            Event::InstrumentUpdated { .. } => "instrument updated".to_string(),
            Event::TradingStatusChanged { .. } => "trading status changed".to_string(),
            Event::AccountStatusChanged { .. } => "account status changed".to_string(),
            _ => continue,
        };
        paths.insert(path);
    }
}

/// The optional settlement events: a fill is followed by 3 to 5
/// `BalanceChanged` (buyer quote, buyer base, seller base, then the seller's
/// quote if it receives anything, then the fee account's if fees are due).
fn record_settlement_paths(paths: &mut Paths, events: &[Event], fee_account: AccountId) {
    for (index, event) in events.iter().enumerate() {
        let seller = match event {
            Event::Fill {
                taker_side: Side::Sell,
                taker_account,
                ..
            } => *taker_account,
            Event::Fill { maker_account, .. } => *maker_account,
            _ => continue,
        };
        if seller == fee_account {
            continue;
        }
        let changes: Vec<AccountId> = events[index + 1..]
            .iter()
            .map_while(|event| match event {
                Event::BalanceChanged { account, .. } => Some(*account),
                _ => None,
            })
            .take(5)
            .collect();
        let fourth = changes.get(3).copied();
        let fifth = changes.get(4).copied();
        let seller_paid = fourth == Some(seller);
        let fees_paid = if seller_paid {
            fifth == Some(fee_account)
        } else {
            fourth == Some(fee_account)
        };
        if !seller_paid {
            paths.insert("fill paying the seller nothing".to_string());
        }
        if !fees_paid {
            paths.insert("fill without fees".to_string());
        }
    }
}

// ---------------------------------------------------------------------------
// Running streams, and shrinking a failing one.
// ---------------------------------------------------------------------------

struct CaseFailure {
    seed: u64,
    /// `ENGINE_SIM_COMMANDS` of the run (before `stream_length`).
    commands_setting: u64,
    config: EngineConfig,
    commands: Vec<Command>,
    message: String,
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Applies one command in lockstep, turning a panic (in the engine or the
/// model) into a failure.
fn guarded_step(
    lockstep: &mut Lockstep,
    command: &Command,
) -> Result<(Status, Vec<Event>), String> {
    match catch_unwind(AssertUnwindSafe(|| lockstep.step(command))) {
        Ok(result) => result,
        Err(payload) => Err(format!(
            "panic on {command:?}: {}",
            panic_text(payload.as_ref())
        )),
    }
}

/// Generates and checks the stream of `seed`, of
/// `stream_length(seed, commands_setting)` commands.
fn run_case(seed: u64, commands_setting: u64, paths: &mut Paths) -> Result<(), CaseFailure> {
    let mut generator = CommandGenerator::new(seed);
    let config = generator.config();
    let mut lockstep = Lockstep::new(config);
    let mut applied = Vec::new();
    for _ in 0..stream_length(seed, commands_setting) {
        let generated = catch_unwind(AssertUnwindSafe(|| generator.next_command(&lockstep.model)));
        let command = match generated {
            Ok(command) => command,
            Err(payload) => {
                return Err(CaseFailure {
                    seed,
                    commands_setting,
                    config,
                    message: format!("the generator panicked: {}", panic_text(payload.as_ref())),
                    commands: applied,
                });
            }
        };
        applied.push(command);
        record_paths_before(paths, &command, &lockstep.model);
        match guarded_step(&mut lockstep, &command) {
            Ok((status, events)) => {
                record_paths(paths, &command, status, &events, config.fee_account)
            }
            Err(message) => {
                return Err(CaseFailure {
                    seed,
                    commands_setting,
                    config,
                    commands: applied,
                    message,
                });
            }
        }
    }
    Ok(())
}

/// The failure of replaying `commands` from an empty state, if any.
fn replay(config: EngineConfig, commands: &[Command]) -> Option<String> {
    let mut lockstep = Lockstep::new(config);
    commands
        .iter()
        .find_map(|command| guarded_step(&mut lockstep, command).err())
}

/// Removes chunks of commands, then single commands, while the replay still
/// fails; bounded in replays and time.
fn shrink(config: EngineConfig, commands: Vec<Command>) -> (Vec<Command>, String) {
    let mut current = commands;
    let Some(mut message) = replay(config, &current) else {
        return (
            current,
            "the failure did not reproduce on replay".to_string(),
        );
    };
    let started = Instant::now();
    let mut replays = 0;
    let mut chunk = current.len().div_ceil(2);
    while chunk >= 1 {
        let mut progressed = false;
        let mut start = 0;
        while start < current.len() {
            if replays >= SHRINK_REPLAYS_MAX || started.elapsed() > SHRINK_TIME_MAX {
                return (current, message);
            }
            replays += 1;
            let end = (start + chunk).min(current.len());
            let candidate: Vec<Command> = current[..start]
                .iter()
                .chain(&current[end..])
                .copied()
                .collect();
            match replay(config, &candidate) {
                Some(failure) => {
                    current = candidate;
                    message = failure;
                    progressed = true;
                }
                None => start += chunk,
            }
        }
        if !progressed {
            chunk /= 2;
        }
    }
    (current, message)
}

fn report(failure: CaseFailure) -> String {
    // The shrinker's replays panic on purpose; keep their noise out of the
    // report (the failure is already decided, so other tests' output is of
    // no concern any more).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let (shrunk, shrunk_message) = shrink(failure.config, failure.commands.clone());
    std::panic::set_hook(hook);
    let mut text = format!(
        "seed {seed} failed at command {index} of its stream.\n\
         Reproduce: ENGINE_SIM_SEED={seed} ENGINE_SIM_CASES=1 ENGINE_SIM_COMMANDS={setting} \
         cargo test -p tests --test engine_vs_reference\n\
         {config:?}\n\n{message}\n\nShrunk to {count} commands:\n",
        seed = failure.seed,
        setting = failure.commands_setting,
        index = failure.commands.len(),
        config = failure.config,
        message = failure.message,
        count = shrunk.len(),
    );
    for command in &shrunk {
        text += &format!("  {command:?}\n");
    }
    text + &format!("\nwhich fails with:\n{shrunk_message}")
}

#[test]
fn engine_matches_reference_model() {
    let cases = environment_number("ENGINE_SIM_CASES").unwrap_or(CASES_DEFAULT);
    let commands = environment_number("ENGINE_SIM_COMMANDS").unwrap_or(COMMANDS_DEFAULT);
    let first = environment_seed("ENGINE_SIM_SEED", 0);
    let started = Instant::now();
    let (all_seen, failures) = run_seeds(cases, first, |seed, seen: &mut Paths| {
        run_case(seed, commands, seen)
    });
    if let Some((_, failure)) = failures.into_iter().next() {
        panic!("{}", report(failure));
    }
    let mut seen = Paths::default();
    for paths in all_seen {
        seen.merge(paths);
    }
    eprintln!(
        "{cases} streams of {commands} commands from seed {first}: engine and model agree ({:.1?})",
        started.elapsed()
    );
    for (path, count) in &seen.0 {
        eprintln!("{count:>10}  {path}");
    }
    if cases >= CASES_FOR_COVERAGE {
        let missing: Vec<String> = required_paths()
            .into_iter()
            .filter(|path| !seen.0.contains_key(path))
            .collect();
        assert!(
            missing.is_empty(),
            "the streams never took these paths: {missing:?}"
        );
    }
}

/// The hash is a function of the commands: equal for two engines fed the
/// same stream, different once the state differs.
#[test]
fn state_hash_is_deterministic_and_follows_the_state() {
    let mut generator = CommandGenerator::new(42);
    let config = generator.config();
    let mut lockstep = Lockstep::new(config);
    let mut hashes = BTreeSet::new();
    for _ in 0..300 {
        let command = generator.next_command(&lockstep.model);
        lockstep.step(&command).expect("seed 42 agrees");
        hashes.insert(lockstep.engine.state_hash());
    }
    assert_eq!(lockstep.engine.state_hash(), lockstep.twin.state_hash());
    assert!(
        hashes.len() > 200,
        "the hash moved only {} times in 300 commands",
        hashes.len()
    );

    // One more applied command on one engine only: the hashes part.
    let before = lockstep.engine.state_hash();
    let account = config.fee_account;
    let last = lockstep
        .model
        .last_transfer_id(account)
        .expect("the fee account exists");
    let deposit = Command::Deposit(engine::Deposit {
        account,
        asset: AssetId(0),
        amount: 1,
        transfer_id: engine::TransferId(last.0 + 1),
    });
    let header = CommandHeader {
        sequence: lockstep.sequence + 1,
        timestamp_ns: 0,
    };
    let mut events = Vec::new();
    assert_eq!(
        lockstep.engine.apply(header, &deposit, &mut events),
        Status::Applied
    );
    assert_ne!(lockstep.engine.state_hash(), before);
    assert_ne!(lockstep.engine.state_hash(), lockstep.twin.state_hash());
}

/// Gateway rejects, which the generator does not make, interleaved with a
/// seeded stream: unknown accounts, reference 0, new and old references,
/// suspended accounts; the engine and the model agree on each.
#[test]
fn gateway_rejects_agree_with_the_model() {
    let mut seen = Paths::default();
    for seed in 0..20 {
        let mut generator = CommandGenerator::new(seed);
        let config = generator.config();
        let mut lockstep = Lockstep::new(config);
        for step in 0..400_u64 {
            let command = generator.next_command(&lockstep.model);
            let (status, events) = lockstep
                .step(&command)
                .unwrap_or_else(|error| panic!("seed {seed} step {step}: {error}"));
            record_paths(&mut seen, &command, status, &events, config.fee_account);
            if !step.is_multiple_of(3) {
                continue;
            }
            let account = AccountId(u32::try_from(step / 3).unwrap() % (config.accounts_max + 2));
            let last = lockstep
                .model
                .last_user_ref_num(account)
                .map_or(0, |last| last.0);
            let user_ref_num = match step % 4 {
                0 => 0,
                1 => last.saturating_sub(step % 2),
                _ => last + 1 + step % 5,
            };
            let reject = Command::GatewayReject(GatewayReject {
                account,
                user_ref_num: UserRefNum(user_ref_num),
            });
            let (status, events) = lockstep
                .step(&reject)
                .unwrap_or_else(|error| panic!("seed {seed} step {step}: {error}"));
            record_paths(&mut seen, &reject, status, &events, config.fee_account);
        }
    }
    for path in [
        "status: gateway reject rejected",
        "reject GatewayRejected",
        "reject DuplicateUserRefNum",
        "reject UnknownAccount",
    ] {
        assert!(seen.0.contains_key(path), "never took {path}: {:?}", seen.0);
    }
}

/// The lockstep harness itself notices a disagreement: a model fed one
/// command more than the engine is caught at the next comparison.
#[test]
fn lockstep_detects_a_divergence() {
    let mut generator = CommandGenerator::new(7);
    let mut lockstep = Lockstep::new(generator.config());
    for _ in 0..60 {
        let command = generator.next_command(&lockstep.model);
        lockstep.step(&command).expect("seed 7 agrees");
    }
    // Suspend an account in the model only (with the sequence it expects).
    let header = CommandHeader {
        sequence: lockstep.sequence + 1,
        timestamp_ns: 0,
    };
    lockstep.sequence += 1;
    lockstep.model.apply(
        header,
        &Command::Admin(AdminCommand::SetAccountStatus {
            account: AccountId(1),
            status: engine::AccountStatus::Suspended,
        }),
    );
    let mut engine_events = Vec::new();
    lockstep.engine.apply(
        header,
        &Command::Admin(AdminCommand::SetAccountStatus {
            account: AccountId(1),
            status: engine::AccountStatus::Active,
        }),
        &mut engine_events,
    );
    let difference =
        compare_state(&lockstep.engine, &lockstep.model).expect_err("the states differ");
    assert!(
        difference.contains("status of AccountId(1)"),
        "{difference}"
    );
}
