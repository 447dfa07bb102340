//! Funding interleaved with trading: the exchange-core mix on ACME (see
//! [`super::exchange_core`]) for 80% of the measured commands, and 20%
//! funding commands — deposits, withdrawals and transfers between trading
//! accounts, in USD or in shares, drawn 3 : 3 : 3, plus one in ten a repeat.
//!
//! Transfer ids are exactly-once and strictly increasing per account (the
//! debited account for a transfer): each new command takes the account's
//! last id plus one, read from the scratch engine. A repeat sends one of the
//! last `RECENT_FUNDING` funding commands again, unchanged — well inside the
//! engine's record of recent transfers (`transfer_records_max`, 65 536 by
//! default), so the engine must answer `Duplicate` and change nothing.
//! Amounts stay within what the account has available, so nothing is
//! rejected; [`super::FundingStats`] counts what the engine made of each.

use super::exchange_core::{self, ACCOUNTS};
use super::generator::Generator;
use super::{CommandKind, Workload, WorkloadKind};
use crate::market::{BASE_ASSET, QUOTE_ASSET};
use engine::{AccountId, AssetId, Command, Deposit, Transfer, TransferId, Withdrawal};

/// Per hundred measured commands, how many are funding.
const FUNDING_PERCENT: u64 = 20;
/// Per hundred funding commands, how many are repeats.
const REPEAT_PERCENT: u64 = 10;
/// Repeats are drawn from this many most recent funding commands.
const RECENT_FUNDING: usize = 256;
/// Amounts of USD in minor units: up to 10 000.00.
const QUOTE_AMOUNT_MAX: u64 = 100_000_000;
/// Amounts of shares.
const BASE_AMOUNT_MAX: u64 = 1_000;

pub(super) fn generate(seed: u64, commands: usize) -> Workload {
    let mut generator = exchange_core::start(seed, commands);
    let mut recent = RecentFunding::default();
    for _ in 0..commands {
        if generator.random.below(100) < FUNDING_PERCENT {
            fund(&mut generator, &mut recent);
        } else {
            exchange_core::trade(&mut generator);
        }
    }
    generator.finish(WorkloadKind::Funding, seed)
}

/// The last `RECENT_FUNDING` funding commands with a new transfer id, in a
/// ring.
#[derive(Default)]
struct RecentFunding {
    commands: Vec<Command>,
    next: usize,
}

impl RecentFunding {
    fn push(&mut self, command: Command) {
        if self.commands.len() < RECENT_FUNDING {
            self.commands.push(command);
        } else {
            self.commands[self.next] = command;
            self.next = (self.next + 1) % RECENT_FUNDING;
        }
    }
}

/// One funding command: a repeat, or a new deposit, withdrawal or transfer.
fn fund(generator: &mut Generator, recent: &mut RecentFunding) {
    let roll = generator.random.below(100);
    if roll < REPEAT_PERCENT && !recent.commands.is_empty() {
        let position = generator.random.below(recent.commands.len() as u64) as usize;
        let command = recent.commands[position];
        let status = generator.fund(command, CommandKind::FundingRepeat);
        assert_eq!(
            status,
            engine::Status::Duplicate,
            "a recent repeat is a duplicate: {command:?}"
        );
        return;
    }
    let account = generator.random_account();
    let asset = if generator.random.coin() {
        QUOTE_ASSET
    } else {
        BASE_ASSET
    };
    let amount_max = if asset == QUOTE_ASSET {
        QUOTE_AMOUNT_MAX
    } else {
        BASE_AMOUNT_MAX
    };
    let amount = generator.random.between(1, amount_max);
    let transfer_id = next_transfer_id(generator, account);
    // What orders hold cannot move: withdrawals and transfers stay within
    // what is available (a deposit instead when nothing is).
    let available = available(generator, account, asset);
    let choice = generator.random.below(3);
    let (command, kind) = match choice {
        _ if available == 0 => deposit(account, asset, amount, transfer_id),
        0 => deposit(account, asset, amount, transfer_id),
        1 => (
            Command::Withdrawal(Withdrawal {
                account,
                asset,
                amount: amount.min(available),
                transfer_id,
            }),
            CommandKind::Withdrawal,
        ),
        _ => {
            let to = other_account(generator, account);
            (
                Command::Transfer(Transfer {
                    from: account,
                    to,
                    asset,
                    amount: amount.min(available),
                    transfer_id,
                }),
                CommandKind::Transfer,
            )
        }
    };
    generator.fund(command, kind);
    recent.push(command);
}

fn deposit(
    account: AccountId,
    asset: AssetId,
    amount: u64,
    transfer_id: TransferId,
) -> (Command, CommandKind) {
    let command = Command::Deposit(Deposit {
        account,
        asset,
        amount,
        transfer_id,
    });
    (command, CommandKind::Deposit)
}

/// The account's last transfer id plus one.
fn next_transfer_id(generator: &Generator, account: AccountId) -> TransferId {
    // Invariant: trading accounts exist from the setup on.
    let last = generator
        .engine()
        .last_transfer_id(account)
        .expect("a trading account");
    TransferId(last.0 + 1)
}

fn available(generator: &Generator, account: AccountId, asset: AssetId) -> u64 {
    // Invariant: the account and both assets exist from the setup on.
    generator
        .engine()
        .balance(account, asset)
        .expect("a funded trading account")
        .available
}

/// A trading account other than `account`, uniformly.
fn other_account(generator: &mut Generator, account: AccountId) -> AccountId {
    // One of the `ACCOUNTS - 1` others: draw below that, skip `account`.
    let drawn = 1 + generator.random.below(u64::from(ACCOUNTS - 1)) as u32;
    let other = if drawn >= account.0 { drawn + 1 } else { drawn };
    assert_ne!(other, account.0);
    AccountId(other)
}
