//! Funding commands (deposit, withdrawal, transfer) with exactly-once
//! transfer ids, and the account query.
//!
//! A funding command whose transfer id is new consumes it, and its result,
//! applied or rejected, is recorded: a repeat with identical fields gets that
//! result back and changes nothing; with different fields it is rejected.
//! Funds move only from `available`: what orders hold cannot be withdrawn.

use super::matching::balance_changed;
use super::{Engine, Handled, Rejecter, Rejection};
use crate::command::{Deposit, Transfer, Withdrawal};
use crate::event::{Event, EventSink, FundingKind, Status};
use crate::funding::{TransferFields, TransferRecord};
use crate::reject::RejectReason;
use crate::types::{AccountId, AccountStatus, AssetId, TransferId};

impl Engine {
    pub(super) fn deposit(&mut self, deposit: &Deposit, events: &mut impl EventSink) -> Handled {
        let fields = TransferFields {
            kind: FundingKind::Deposit,
            account: deposit.account,
            to: deposit.account,
            asset: deposit.asset,
            amount: deposit.amount,
        };
        self.funding(deposit.transfer_id, fields, events, |engine, rejecter| {
            engine.check_active(fields.account, rejecter)?;
            engine.check_asset_and_amount(fields, rejecter)?;
            rejecter.check(
                deposit.amount > engine.ledger.deposit_room(deposit.asset),
                RejectReason::Overflow,
            )?;
            Ok(())
        })
    }

    pub(super) fn withdrawal(
        &mut self,
        withdrawal: &Withdrawal,
        events: &mut impl EventSink,
    ) -> Handled {
        let fields = TransferFields {
            kind: FundingKind::Withdrawal,
            account: withdrawal.account,
            to: withdrawal.account,
            asset: withdrawal.asset,
            amount: withdrawal.amount,
        };
        self.funding(
            withdrawal.transfer_id,
            fields,
            events,
            |engine, rejecter| {
                engine.check_active(fields.account, rejecter)?;
                engine.check_asset_and_amount(fields, rejecter)?;
                engine.check_available(fields, rejecter)
            },
        )
    }

    pub(super) fn transfer(&mut self, transfer: &Transfer, events: &mut impl EventSink) -> Handled {
        let fields = TransferFields {
            kind: FundingKind::Transfer,
            account: transfer.from,
            to: transfer.to,
            asset: transfer.asset,
            amount: transfer.amount,
        };
        self.funding(transfer.transfer_id, fields, events, |engine, rejecter| {
            engine.check_active(fields.account, rejecter)?;
            rejecter.check(
                engine.ledger.account(fields.to).is_none(),
                RejectReason::UnknownAccount,
            )?;
            rejecter.check(fields.to == fields.account, RejectReason::SameAccount)?;
            engine.check_active(fields.to, rejecter)?;
            engine.check_asset_and_amount(fields, rejecter)?;
            engine.check_available(fields, rejecter)
        })
    }

    /// The shared shape of the funding commands: account, then transfer id
    /// (repeat or new), then the command's own checks, then the move.
    fn funding(
        &mut self,
        transfer_id: TransferId,
        fields: TransferFields,
        events: &mut impl EventSink,
        checks: impl FnOnce(&Engine, Rejecter) -> Result<(), Rejection>,
    ) -> Handled {
        let rejecter = Rejecter::new(fields.account, transfer_id.0);
        let account = self
            .ledger
            .account_mut(fields.account)
            .ok_or(rejecter.reject(RejectReason::UnknownAccount))?;
        if transfer_id <= account.last_transfer_id {
            let record = self
                .transfers
                .find(fields.account, transfer_id)
                .ok_or(rejecter.reject(RejectReason::TransferIdNotIncreasing))?;
            rejecter.check(record.fields != fields, RejectReason::TransferIdMismatch)?;
            events.push(Event::FundingDuplicate {
                kind: fields.kind,
                transfer_id,
                account: fields.account,
                original: record.result,
            });
            return Ok(Status::Duplicate);
        }
        account.last_transfer_id = transfer_id;

        let result = checks(self, rejecter);
        self.transfers.record(TransferRecord {
            transfer_id,
            fields,
            result: result.err().map(|rejection| rejection.reason),
        });
        result?;
        events.push(Event::FundingApplied {
            kind: fields.kind,
            transfer_id,
            account: fields.account,
            to: fields.to,
            asset: fields.asset,
            amount: fields.amount,
        });
        let (account, asset, amount) = (fields.account, fields.asset, fields.amount);
        match fields.kind {
            FundingKind::Deposit => {
                let balance = self.ledger.deposit(account, asset, amount);
                events.push(balance_changed(account, asset, balance));
            }
            FundingKind::Withdrawal => {
                let balance = self.ledger.withdraw(account, asset, amount);
                events.push(balance_changed(account, asset, balance));
            }
            FundingKind::Transfer => {
                let balance = self.ledger.debit(account, asset, amount);
                events.push(balance_changed(account, asset, balance));
                let balance = self.ledger.credit(fields.to, asset, amount);
                events.push(balance_changed(fields.to, asset, balance));
            }
        }
        Ok(Status::Applied)
    }

    /// `AccountSuspended` unless the (existing) account is active.
    fn check_active(&self, account: AccountId, rejecter: Rejecter) -> Result<(), Rejection> {
        let status = self.ledger.account(account).map(|a| a.status);
        rejecter.check(
            status == Some(AccountStatus::Suspended),
            RejectReason::AccountSuspended,
        )
    }

    /// A known asset and a positive amount.
    fn check_asset_and_amount(
        &self,
        fields: TransferFields,
        rejecter: Rejecter,
    ) -> Result<(), Rejection> {
        rejecter.check(
            self.asset(fields.asset).is_none(),
            RejectReason::UnknownAsset,
        )?;
        rejecter.check(fields.amount == 0, RejectReason::InvalidAmount)
    }

    fn check_available(&self, fields: TransferFields, rejecter: Rejecter) -> Result<(), Rejection> {
        let available = self.ledger.balance(fields.account, fields.asset).available;
        rejecter.check(fields.amount > available, RejectReason::InsufficientFunds)
    }

    pub(super) fn account_query(
        &mut self,
        account: AccountId,
        events: &mut impl EventSink,
    ) -> Handled {
        let rejecter = Rejecter::new(account, 0);
        let state = *self
            .ledger
            .account(account)
            .ok_or(rejecter.reject(RejectReason::UnknownAccount))?;
        events.push(Event::AccountState {
            account,
            status: state.status,
            last_user_ref_num: state.last_user_ref_num,
            last_transfer_id: state.last_transfer_id,
        });
        for (index, asset) in self.assets.iter().enumerate() {
            if asset.is_some() {
                let asset = AssetId(u16::try_from(index).expect("assets_max fits u16"));
                let balance = self.ledger.balance(account, asset);
                events.push(Event::BalanceReport {
                    account,
                    asset,
                    available: balance.available,
                    held: balance.held,
                });
            }
        }
        Ok(Status::Applied)
    }
}
