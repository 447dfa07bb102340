//! Accounts and their balances: per asset an `available` and a `held`
//! amount, in one flat preallocated array indexed by `account × assets_max +
//! asset`.
//!
//! The ledger keeps, per asset, the supply: Σ deposits − Σ withdrawals. The
//! conservation invariant is that Σ available + Σ held over all accounts
//! equals the supply, after every command. Deposits are refused when the
//! supply would pass `u64::MAX`, so no balance, and no sum of balances of one
//! asset, can exceed `u64::MAX`: a credit inside the ledger cannot overflow.
//! The methods here therefore assert rather than return errors; the engine
//! checks every amount that comes from outside before it moves anything.

use crate::types::{AccountId, AccountStatus, AssetId, Balance, TransferId, UserRefNum};

/// What the ledger knows of one account besides its balances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) status: AccountStatus,
    /// The last `user_ref_num` this account consumed (0: none yet).
    pub(crate) last_user_ref_num: UserRefNum,
    /// The last transfer id this account consumed (0: none yet).
    pub(crate) last_transfer_id: TransferId,
}

/// Per asset: where it came from and where it went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssetTotals {
    /// Σ deposits.
    pub deposited: u128,
    /// Σ withdrawals.
    pub withdrawn: u128,
}

impl AssetTotals {
    /// Σ deposits − Σ withdrawals: what all balances of the asset sum to.
    pub fn supply(&self) -> u128 {
        self.deposited - self.withdrawn
    }
}

#[derive(Debug)]
pub(crate) struct Ledger {
    assets_max: usize,
    accounts: Vec<Option<Account>>,
    balances: Vec<Balance>,
    totals: Vec<AssetTotals>,
}

impl Ledger {
    pub(crate) fn new(accounts_max: u32, assets_max: u16) -> Ledger {
        let assets_max = usize::from(assets_max);
        let accounts_max = accounts_max as usize;
        Ledger {
            assets_max,
            accounts: vec![None; accounts_max],
            balances: vec![Balance::default(); accounts_max * assets_max],
            totals: vec![AssetTotals::default(); assets_max],
        }
    }

    pub(crate) fn account(&self, account: AccountId) -> Option<&Account> {
        self.accounts.get(account.0 as usize)?.as_ref()
    }

    pub(crate) fn account_mut(&mut self, account: AccountId) -> Option<&mut Account> {
        self.accounts.get_mut(account.0 as usize)?.as_mut()
    }

    pub(crate) fn create_account(&mut self, account: AccountId) {
        let entry = &mut self.accounts[account.0 as usize];
        assert!(entry.is_none(), "caller checks the account is new");
        *entry = Some(Account {
            status: AccountStatus::Active,
            last_user_ref_num: UserRefNum(0),
            last_transfer_id: TransferId(0),
        });
    }

    /// Every existing account, in id order.
    pub(crate) fn accounts(&self) -> impl Iterator<Item = (AccountId, &Account)> {
        self.accounts
            .iter()
            .enumerate()
            .filter_map(|(index, account)| {
                let id = AccountId(u32::try_from(index).expect("accounts_max fits u32"));
                account.as_ref().map(|account| (id, account))
            })
    }

    #[inline]
    fn slot(&self, account: AccountId, asset: AssetId) -> usize {
        debug_assert!(usize::from(asset.0) < self.assets_max);
        account.0 as usize * self.assets_max + usize::from(asset.0)
    }

    #[inline]
    pub(crate) fn balance(&self, account: AccountId, asset: AssetId) -> Balance {
        self.balances[self.slot(account, asset)]
    }

    #[inline]
    fn balance_mut(&mut self, account: AccountId, asset: AssetId) -> &mut Balance {
        let slot = self.slot(account, asset);
        &mut self.balances[slot]
    }

    pub(crate) fn totals(&self, asset: AssetId) -> AssetTotals {
        self.totals[usize::from(asset.0)]
    }

    /// The largest amount a deposit of `asset` may have without the supply
    /// passing `u64::MAX`.
    pub(crate) fn deposit_room(&self, asset: AssetId) -> u64 {
        let supply = self.totals(asset).supply();
        u64::try_from(u128::from(u64::MAX) - supply).expect("supply never exceeds u64::MAX")
    }

    /// Available → held.
    #[inline]
    pub(crate) fn hold(&mut self, account: AccountId, asset: AssetId, amount: u64) -> Balance {
        let balance = self.balance_mut(account, asset);
        balance.available = balance
            .available
            .checked_sub(amount)
            .expect("caller checked the available balance");
        balance.held = balance.held.checked_add(amount).expect("bounded by supply");
        *balance
    }

    /// Held → available.
    #[inline]
    pub(crate) fn release(&mut self, account: AccountId, asset: AssetId, amount: u64) -> Balance {
        let balance = self.balance_mut(account, asset);
        balance.held = balance
            .held
            .checked_sub(amount)
            .expect("release at most what is held");
        balance.available = balance
            .available
            .checked_add(amount)
            .expect("bounded by supply");
        *balance
    }

    /// Held → gone (`consumed`) and held → available (`released`), in one
    /// step: what a fill does to the payer's hold.
    #[inline]
    pub(crate) fn settle_held(
        &mut self,
        account: AccountId,
        asset: AssetId,
        consumed: u64,
        released: u64,
    ) -> Balance {
        let balance = self.balance_mut(account, asset);
        let taken = consumed.checked_add(released).expect("bounded by held");
        balance.held = balance
            .held
            .checked_sub(taken)
            .expect("settle at most what is held");
        balance.available = balance
            .available
            .checked_add(released)
            .expect("bounded by supply");
        *balance
    }

    /// Add to available. Only moves within the ledger, whose sums are
    /// bounded by the supply, credit through here.
    #[inline]
    pub(crate) fn credit(&mut self, account: AccountId, asset: AssetId, amount: u64) -> Balance {
        let balance = self.balance_mut(account, asset);
        balance.available = balance
            .available
            .checked_add(amount)
            .expect("bounded by supply");
        *balance
    }

    /// − available.
    #[inline]
    pub(crate) fn debit(&mut self, account: AccountId, asset: AssetId, amount: u64) -> Balance {
        let balance = self.balance_mut(account, asset);
        balance.available = balance
            .available
            .checked_sub(amount)
            .expect("caller checked the available balance");
        *balance
    }

    /// Money enters the exchange. The caller checked `deposit_room`.
    pub(crate) fn deposit(&mut self, account: AccountId, asset: AssetId, amount: u64) -> Balance {
        assert!(
            amount <= self.deposit_room(asset),
            "deposit within the supply bound"
        );
        self.totals[usize::from(asset.0)].deposited += u128::from(amount);
        self.credit(account, asset, amount)
    }

    /// Set a balance outright, when a snapshot is restored. The restorer
    /// sets the totals too and audits the result with the invariants.
    pub(crate) fn restore_balance(&mut self, account: AccountId, asset: AssetId, balance: Balance) {
        *self.balance_mut(account, asset) = balance;
    }

    /// Set an asset's totals outright, when a snapshot is restored.
    pub(crate) fn restore_totals(&mut self, asset: AssetId, totals: AssetTotals) {
        assert!(
            totals.withdrawn <= totals.deposited && totals.supply() <= u128::from(u64::MAX),
            "the restorer checks the supply bound"
        );
        self.totals[usize::from(asset.0)] = totals;
    }

    /// Money leaves the exchange. The caller checked the available balance.
    pub(crate) fn withdraw(&mut self, account: AccountId, asset: AssetId, amount: u64) -> Balance {
        self.totals[usize::from(asset.0)].withdrawn += u128::from(amount);
        self.debit(account, asset, amount)
    }
}
