//! Exactly-once funding: the record of recent funding commands.
//!
//! Transfer ids are strictly increasing per account, so whether an id is new
//! is known from the account's last id alone, however old the id is: an id
//! at or below the last one is never applied again. The results of the most
//! recent `transfer_records_max` commands are kept in a ring so that a
//! repeat with identical fields gets its original result back; a repeat with
//! different fields is rejected (`TransferIdMismatch`); a repeat too old to
//! have a record is rejected (`TransferIdNotIncreasing`).

use crate::event::FundingKind;
use crate::reject::RejectReason;
use crate::types::{AccountId, AssetId, TransferId};
use rustc_hash::FxHashMap;

/// The fields a repeat must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TransferFields {
    pub(crate) kind: FundingKind,
    /// The account the transfer id is scoped to (debited, or credited by a
    /// deposit).
    pub(crate) account: AccountId,
    /// The account credited by a transfer; `account` otherwise.
    pub(crate) to: AccountId,
    pub(crate) asset: AssetId,
    pub(crate) amount: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TransferRecord {
    pub(crate) transfer_id: TransferId,
    pub(crate) fields: TransferFields,
    /// `None`: applied.
    pub(crate) result: Option<RejectReason>,
}

#[derive(Debug)]
pub(crate) struct TransferLog {
    /// A ring; `records[(oldest + i) % capacity]` for `i < len`.
    records: Vec<TransferRecord>,
    capacity: usize,
    oldest: usize,
    index: FxHashMap<(AccountId, TransferId), usize>,
}

impl TransferLog {
    pub(crate) fn new(capacity: u32) -> TransferLog {
        assert!(capacity > 0, "transfer_records_max must be at least 1");
        let capacity = capacity as usize;
        TransferLog {
            records: Vec::with_capacity(capacity),
            capacity,
            oldest: 0,
            index: FxHashMap::with_capacity_and_hasher(
                capacity.saturating_mul(2),
                Default::default(),
            ),
        }
    }

    pub(crate) fn find(
        &self,
        account: AccountId,
        transfer_id: TransferId,
    ) -> Option<&TransferRecord> {
        let position = *self.index.get(&(account, transfer_id))?;
        Some(&self.records[position])
    }

    /// Remember a record, forgetting the oldest when full.
    pub(crate) fn record(&mut self, record: TransferRecord) {
        let key = (record.fields.account, record.transfer_id);
        let position = if self.records.len() < self.capacity {
            self.records.push(record);
            self.records.len() - 1
        } else {
            let position = self.oldest;
            let evicted = self.records[position];
            let removed = self
                .index
                .remove(&(evicted.fields.account, evicted.transfer_id));
            debug_assert_eq!(removed, Some(position));
            self.records[position] = record;
            self.oldest = (position + 1) % self.capacity;
            position
        };
        let previous = self.index.insert(key, position);
        debug_assert!(previous.is_none(), "transfer ids are consumed once");
    }

    /// The records, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &TransferRecord> {
        let (newer, older) = self.records.split_at(self.oldest);
        older.iter().chain(newer.iter())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(account: u32, id: u64) -> TransferRecord {
        TransferRecord {
            transfer_id: TransferId(id),
            fields: TransferFields {
                kind: FundingKind::Deposit,
                account: AccountId(account),
                to: AccountId(account),
                asset: AssetId(0),
                amount: id,
            },
            result: None,
        }
    }

    #[test]
    fn ring_forgets_the_oldest_and_iterates_in_order() {
        let mut log = TransferLog::new(3);
        for id in 1..=5 {
            log.record(record(7, id));
        }
        assert_eq!(log.len(), 3);
        assert!(log.find(AccountId(7), TransferId(2)).is_none());
        assert_eq!(
            log.find(AccountId(7), TransferId(4)).unwrap().fields.amount,
            4
        );
        let ids: Vec<u64> = log.iter().map(|r| r.transfer_id.0).collect();
        assert_eq!(ids, [3, 4, 5]);
        assert!(log.find(AccountId(8), TransferId(5)).is_none());
    }
}
