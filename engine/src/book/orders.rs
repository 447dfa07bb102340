//! The order store: every resting order in one slab preallocated at start-up,
//! found in O(1) by engine id or by `(account, user_ref_num)`.
//!
//! A node is linked into two intrusive doubly linked lists: its price level's
//! FIFO queue (`previous`/`next`) and its account's list of open orders
//! (`account_previous`/`account_next`, oldest first, for mass cancel). Free
//! nodes form a LIFO free list through `next`, so slot reuse is deterministic.
//! Both maps use a fixed-seed hasher and are never iterated, so they cannot
//! make the state machine non-deterministic.
//!
//! The maps start small and grow with the number of open orders, never
//! shrinking: a map sized for `orders_max` up front would spread a few
//! thousand live entries over millions of buckets, so every lookup would miss
//! the cache (`exchange-bench engine` on the exchange-core mix ran at about a
//! seventh of its speed with both maps sized for `orders_max` = 2^20).
//!
//! Growth happens only at a new peak of open orders: the maps keep room for
//! twice the peak. A hashbrown map whose live entries are at most half its
//! capacity clears the tombstones that deletes leave by rehashing in place,
//! never by reallocating, so churn below the peak allocates nothing (a test
//! in `tests/no_alloc.rs` churns well past the initial size to check it).
//! A map at its natural 7/8 load would instead reallocate to twice its size
//! the first time tombstones filled it, so the room costs nothing in the
//! long run that churn would not have cost anyway.

use crate::command::OrderRef;
use crate::instrument::FeeRates;
use crate::types::{
    AccountId, InstrumentId, OrderId, Price, Quantity, SelfTradePrevention, Side, TimeInForce,
    UserRefNum,
};
use rustc_hash::FxHashMap;

/// Index of a node in the slab.
pub(crate) type Slot = u32;

/// Entries the order maps have room for at start-up.
const MAP_CAPACITY_INITIAL: usize = 4_096;

/// The end of a list.
pub(crate) const NIL: Slot = Slot::MAX;

/// A resting order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OrderNode {
    /// `OrderId(0)` marks a free node.
    pub(crate) id: OrderId,
    pub(crate) account: AccountId,
    pub(crate) instrument: InstrumentId,
    pub(crate) user_ref_num: UserRefNum,
    pub(crate) price: Price,
    pub(crate) remaining: Quantity,
    pub(crate) fees: FeeRates,
    pub(crate) side: Side,
    pub(crate) time_in_force: TimeInForce,
    pub(crate) self_trade: SelfTradePrevention,
    pub(crate) post_only: bool,
    pub(crate) previous: Slot,
    pub(crate) next: Slot,
    pub(crate) account_previous: Slot,
    pub(crate) account_next: Slot,
}

impl OrderNode {
    const FREE: OrderNode = OrderNode {
        id: OrderId(0),
        account: AccountId(0),
        instrument: InstrumentId(0),
        user_ref_num: UserRefNum(0),
        price: Price(0),
        remaining: Quantity(0),
        fees: FeeRates {
            maker_bps: 0,
            taker_bps: 0,
        },
        side: Side::Buy,
        time_in_force: TimeInForce::Day,
        self_trade: SelfTradePrevention::None,
        post_only: false,
        previous: NIL,
        next: NIL,
        account_previous: NIL,
        account_next: NIL,
    };

    pub(crate) fn is_free(&self) -> bool {
        self.id == OrderId(0)
    }
}

/// The head and tail of an account's list of open orders.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AccountOrders {
    pub(crate) head: Slot,
    pub(crate) tail: Slot,
}

impl AccountOrders {
    const EMPTY: AccountOrders = AccountOrders {
        head: NIL,
        tail: NIL,
    };
}

#[derive(Debug)]
pub(crate) struct OrderStore {
    nodes: Vec<OrderNode>,
    free_head: Slot,
    free_count: u32,
    by_id: FxHashMap<OrderId, Slot>,
    by_user_ref: FxHashMap<(AccountId, UserRefNum), Slot>,
    /// Both maps have room for twice this many entries.
    maps_reserved_for: usize,
    accounts: Vec<AccountOrders>,
}

impl OrderStore {
    pub(crate) fn new(orders_max: u32, accounts_max: u32) -> OrderStore {
        assert!(
            orders_max > 0 && orders_max < NIL,
            "orders_max must fit a slot index"
        );
        let mut nodes = vec![OrderNode::FREE; orders_max as usize];
        // Chain every node into the free list, lowest slot first.
        for (slot, node) in nodes.iter_mut().enumerate() {
            let next = slot + 1;
            node.next = if next == orders_max as usize {
                NIL
            } else {
                Slot::try_from(next).expect("orders_max fits a slot")
            };
        }
        let maps_reserved_for = (orders_max as usize).min(MAP_CAPACITY_INITIAL / 2);
        let map_capacity = 2 * maps_reserved_for;
        OrderStore {
            nodes,
            free_head: 0,
            free_count: orders_max,
            by_id: FxHashMap::with_capacity_and_hasher(map_capacity, Default::default()),
            by_user_ref: FxHashMap::with_capacity_and_hasher(map_capacity, Default::default()),
            maps_reserved_for,
            accounts: vec![AccountOrders::EMPTY; accounts_max as usize],
        }
    }

    pub(crate) fn capacity(&self) -> u32 {
        u32::try_from(self.nodes.len()).expect("orders_max fits u32")
    }

    pub(crate) fn is_full(&self) -> bool {
        self.free_count == 0
    }

    pub(crate) fn open_orders(&self) -> u32 {
        self.capacity() - self.free_count
    }

    #[inline]
    pub(crate) fn node(&self, slot: Slot) -> &OrderNode {
        &self.nodes[slot as usize]
    }

    #[inline]
    pub(crate) fn node_mut(&mut self, slot: Slot) -> &mut OrderNode {
        &mut self.nodes[slot as usize]
    }

    pub(crate) fn nodes_mut(&mut self) -> &mut [OrderNode] {
        &mut self.nodes
    }

    pub(crate) fn by_id(&self, id: OrderId) -> Option<Slot> {
        self.by_id.get(&id).copied()
    }

    pub(crate) fn by_user_ref(&self, account: AccountId, user_ref_num: UserRefNum) -> Option<Slot> {
        self.by_user_ref.get(&(account, user_ref_num)).copied()
    }

    /// The slot of the open order `order` names for `account`: by user
    /// reference within the account, or by id (possibly another account's).
    pub(crate) fn find(&self, account: AccountId, order: OrderRef) -> Option<Slot> {
        match order {
            OrderRef::UserRef(user_ref_num) => self.by_user_ref(account, user_ref_num),
            OrderRef::Id(order_id) => self.by_id(order_id),
        }
    }

    pub(crate) fn account_orders(&self, account: AccountId) -> AccountOrders {
        self.accounts[account.0 as usize]
    }

    /// Take a free node, fill it with `order` and index it. The caller links
    /// it into its price level.
    pub(crate) fn insert(&mut self, order: OrderNode) -> Slot {
        assert!(!self.is_full(), "caller checks capacity before accepting");
        debug_assert!(!order.is_free());
        let slot = self.free_head;
        self.free_head = self.nodes[slot as usize].next;
        self.free_count -= 1;

        let previous_tail = self.accounts[order.account.0 as usize].tail;
        let node = &mut self.nodes[slot as usize];
        *node = order;
        node.previous = NIL;
        node.next = NIL;
        node.account_previous = previous_tail;
        node.account_next = NIL;
        self.link_account_tail(order.account, slot, previous_tail);

        self.reserve_map_room();
        let replaced_id = self.by_id.insert(order.id, slot);
        let replaced_ref = self
            .by_user_ref
            .insert((order.account, order.user_ref_num), slot);
        debug_assert!(replaced_id.is_none() && replaced_ref.is_none());
        slot
    }

    /// At a new peak of open orders, make room in the maps for twice the
    /// peak, so that they stay at most half full (see the module
    /// documentation). Only when that needs more buckets does a map grow,
    /// and then it doubles, so growth stays rare.
    fn reserve_map_room(&mut self) {
        self.reserve_maps_for(self.by_id.len() + 1);
    }

    /// Make room in the maps for twice `entries`, unless they already have
    /// it: what a new peak of `entries` open orders does, and what a restored
    /// snapshot does for the peak its writer had reached, so that the
    /// restored engine is as warmed up as the writer was.
    pub(crate) fn reserve_maps_for(&mut self, entries: usize) {
        if entries <= self.maps_reserved_for {
            return;
        }
        self.maps_reserved_for = entries;
        let room = 2 * entries;
        self.by_id.reserve(room - self.by_id.len());
        self.by_user_ref.reserve(room - self.by_user_ref.len());
    }

    fn link_account_tail(&mut self, account: AccountId, slot: Slot, previous_tail: Slot) {
        if previous_tail == NIL {
            self.accounts[account.0 as usize].head = slot;
        } else {
            self.nodes[previous_tail as usize].account_next = slot;
        }
        self.accounts[account.0 as usize].tail = slot;
    }

    /// Give a node back (already unlinked from its level) and forget it.
    pub(crate) fn remove(&mut self, slot: Slot) {
        let node = self.nodes[slot as usize];
        debug_assert!(!node.is_free());
        let list = &mut self.accounts[node.account.0 as usize];
        if node.account_previous == NIL {
            list.head = node.account_next;
        } else {
            self.nodes[node.account_previous as usize].account_next = node.account_next;
        }
        if node.account_next == NIL {
            self.accounts[node.account.0 as usize].tail = node.account_previous;
        } else {
            self.nodes[node.account_next as usize].account_previous = node.account_previous;
        }
        let removed_id = self.by_id.remove(&node.id);
        let removed_ref = self.by_user_ref.remove(&(node.account, node.user_ref_num));
        debug_assert!(removed_id == Some(slot) && removed_ref == Some(slot));

        let free = &mut self.nodes[slot as usize];
        *free = OrderNode::FREE;
        free.next = self.free_head;
        self.free_head = slot;
        self.free_count += 1;
    }

    /// Re-key a node under a new `user_ref_num` (a replace that keeps
    /// priority).
    pub(crate) fn rename(&mut self, slot: Slot, user_ref_num: UserRefNum) {
        let node = &mut self.nodes[slot as usize];
        let old = (node.account, node.user_ref_num);
        node.user_ref_num = user_ref_num;
        let removed = self.by_user_ref.remove(&old);
        debug_assert_eq!(removed, Some(slot));
        self.by_user_ref.insert((old.0, user_ref_num), slot);
    }

    /// The open orders the maps have room for twice of (the peak of open
    /// orders, or the initial room if that is larger).
    pub(crate) fn maps_reserved_for(&self) -> usize {
        self.maps_reserved_for
    }

    /// The number of entries in the id map and the user-reference map, for
    /// consistency checks.
    pub(crate) fn index_sizes(&self) -> (usize, usize) {
        (self.by_id.len(), self.by_user_ref.len())
    }
}
