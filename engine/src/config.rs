//! The engine's capacities. The order slab, the accounts, balances and the
//! funding records are allocated at start-up to these sizes; an
//! instrument's price ladders when an admin command creates or moves it;
//! the order maps grow to the peak of open orders. A command that would
//! need more than a capacity is rejected.

use crate::types::AccountId;
use std::fmt;

/// Capacities and the fee account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Accounts have ids `0..accounts_max`.
    pub accounts_max: u32,
    /// Assets have ids `0..assets_max`.
    pub assets_max: u16,
    /// Instruments have ids `0..instruments_max`.
    pub instruments_max: u32,
    /// Resting orders, across all instruments.
    pub orders_max: u32,
    /// Price levels per side of one instrument's book.
    pub price_levels_max: u32,
    /// Funding results kept for answering repeats.
    pub transfer_records_max: u32,
    /// The account fees are paid to; created with the engine.
    pub fee_account: AccountId,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            accounts_max: 4_096,
            assets_max: 16,
            instruments_max: 64,
            orders_max: 1 << 20,
            price_levels_max: 1 << 20,
            transfer_records_max: 1 << 16,
            fee_account: AccountId(0),
        }
    }
}

/// A capacity that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub &'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid engine configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl EngineConfig {
    /// Checks that the capacities can be allocated and indexed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.accounts_max == 0 || self.assets_max == 0 || self.instruments_max == 0 {
            return Err(ConfigError(
                "accounts_max, assets_max and instruments_max must be positive",
            ));
        }
        if self.orders_max == 0 || self.orders_max == u32::MAX {
            return Err(ConfigError("orders_max must be between 1 and 2^32 - 2"));
        }
        if self.price_levels_max == 0 || self.transfer_records_max == 0 {
            return Err(ConfigError(
                "price_levels_max and transfer_records_max must be positive",
            ));
        }
        if self.fee_account.0 >= self.accounts_max {
            return Err(ConfigError("fee_account must be below accounts_max"));
        }
        let balances = u64::from(self.accounts_max) * u64::from(self.assets_max);
        if balances > 1 << 28 {
            return Err(ConfigError(
                "accounts_max × assets_max must be at most 2^28",
            ));
        }
        Ok(())
    }
}
