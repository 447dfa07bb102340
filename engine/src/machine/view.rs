//! Read-only views of the state, for tests, tools and the reference-model
//! comparison. None of this is on the hot path.

use super::{Asset, Engine};
use crate::book::{Ladder, NIL, OrderNode, Slot};
use crate::command::OrderRef;
use crate::instrument::{InstrumentSpec, PriceBand};
use crate::ledger::AssetTotals;
use crate::types::{
    AccountId, AccountStatus, AssetId, Balance, InstrumentId, OrderId, Price, Quantity,
    SelfTradePrevention, Side, TimeInForce, TradingStatus, TransferId, UserRefNum,
};

/// An open order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub order_id: OrderId,
    pub account: AccountId,
    pub user_ref_num: UserRefNum,
    pub instrument: InstrumentId,
    pub side: Side,
    pub price: Price,
    /// Open quantity.
    pub remaining: Quantity,
    pub time_in_force: TimeInForce,
    pub self_trade: SelfTradePrevention,
    pub post_only: bool,
}

impl From<&OrderNode> for OrderView {
    fn from(node: &OrderNode) -> OrderView {
        OrderView {
            order_id: node.id,
            account: node.account,
            user_ref_num: node.user_ref_num,
            instrument: node.instrument,
            side: node.side,
            price: node.price,
            remaining: node.remaining,
            time_in_force: node.time_in_force,
            self_trade: node.self_trade,
            post_only: node.post_only,
        }
    }
}

/// An instrument's definition and state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrumentView {
    pub spec: InstrumentSpec,
    /// The prices an order may have now.
    pub band: PriceBand,
    pub status: TradingStatus,
}

impl Engine {
    /// An asset, if it exists.
    pub fn asset(&self, asset: AssetId) -> Option<&Asset> {
        self.assets.get(usize::from(asset.0))?.as_ref()
    }

    /// Every asset, in id order.
    pub fn assets(&self) -> impl Iterator<Item = (AssetId, Asset)> + '_ {
        self.assets.iter().enumerate().filter_map(|(index, asset)| {
            let id = AssetId(u16::try_from(index).expect("assets_max fits u16"));
            asset.map(|asset| (id, asset))
        })
    }

    /// Σ deposits and Σ withdrawals of an asset.
    pub fn asset_totals(&self, asset: AssetId) -> Option<AssetTotals> {
        self.asset(asset).map(|_| self.ledger.totals(asset))
    }

    pub fn instrument(&self, instrument: InstrumentId) -> Option<InstrumentView> {
        self.market(instrument).map(|market| InstrumentView {
            spec: market.instrument.spec,
            band: market.instrument.band,
            status: market.instrument.status,
        })
    }

    /// Every instrument, in id order.
    pub fn instruments(&self) -> impl Iterator<Item = InstrumentId> + '_ {
        self.markets
            .iter()
            .enumerate()
            .filter_map(|(index, market)| {
                let id = InstrumentId(u32::try_from(index).expect("instruments_max fits u32"));
                market.as_ref().map(|_| id)
            })
    }

    /// Every account, in id order.
    pub fn accounts(&self) -> impl Iterator<Item = AccountId> + '_ {
        self.ledger.accounts().map(|(id, _)| id)
    }

    pub fn account_status(&self, account: AccountId) -> Option<AccountStatus> {
        self.ledger.account(account).map(|a| a.status)
    }

    /// The last `user_ref_num` the account used (0: none).
    pub fn last_user_ref_num(&self, account: AccountId) -> Option<UserRefNum> {
        self.ledger.account(account).map(|a| a.last_user_ref_num)
    }

    /// The last transfer id the account used (0: none).
    pub fn last_transfer_id(&self, account: AccountId) -> Option<TransferId> {
        self.ledger.account(account).map(|a| a.last_transfer_id)
    }

    /// An account's balance of an existing asset.
    pub fn balance(&self, account: AccountId, asset: AssetId) -> Option<Balance> {
        self.ledger.account(account)?;
        self.asset(asset)?;
        Some(self.ledger.balance(account, asset))
    }

    /// An open order of `account`, as the account names it.
    pub fn order(&self, account: AccountId, order: OrderRef) -> Option<OrderView> {
        let slot = self.orders.find(account, order)?;
        let node = self.orders.node(slot);
        (node.account == account).then(|| OrderView::from(node))
    }

    /// An open order of any account.
    pub fn order_by_id(&self, order_id: OrderId) -> Option<OrderView> {
        let slot = self.orders.by_id(order_id)?;
        Some(OrderView::from(self.orders.node(slot)))
    }

    /// The number of open orders.
    pub fn open_orders(&self) -> u32 {
        self.orders.open_orders()
    }

    /// One side of a book in priority order: best price first, then oldest.
    pub fn book_orders(
        &self,
        instrument: InstrumentId,
        side: Side,
    ) -> impl Iterator<Item = OrderView> + '_ {
        let ladder = self.market(instrument).map(|market| market.book.side(side));
        ladder
            .into_iter()
            .flat_map(move |ladder| ladder.occupied_levels().map(move |index| (ladder, index)))
            .flat_map(move |(ladder, index)| self.level_orders(ladder.level(index).head))
    }

    /// One side of a book by price level, best first: (price, open quantity,
    /// number of orders).
    pub fn depth(
        &self,
        instrument: InstrumentId,
        side: Side,
    ) -> impl Iterator<Item = (Price, Quantity, u32)> + '_ {
        let ladder: Option<&Ladder> = self.market(instrument).map(|market| market.book.side(side));
        ladder.into_iter().flat_map(|ladder| {
            ladder.occupied_levels().map(move |index| {
                let level = ladder.level(index);
                (ladder.price(index), Quantity(level.quantity), level.orders)
            })
        })
    }

    /// The best bid: price and quantity there.
    pub fn best_bid(&self, instrument: InstrumentId) -> Option<(Price, Quantity)> {
        self.market(instrument)?.book.bids.best_price()
    }

    /// The best ask: price and quantity there.
    pub fn best_ask(&self, instrument: InstrumentId) -> Option<(Price, Quantity)> {
        self.market(instrument)?.book.asks.best_price()
    }

    /// An account's open orders, oldest first.
    pub fn account_orders(&self, account: AccountId) -> impl Iterator<Item = OrderView> + '_ {
        let head = if self.ledger.account(account).is_some() {
            self.orders.account_orders(account).head
        } else {
            NIL
        };
        std::iter::successors((head != NIL).then_some(head), move |&slot| {
            let next = self.orders.node(slot).account_next;
            (next != NIL).then_some(next)
        })
        .map(move |slot| OrderView::from(self.orders.node(slot)))
    }

    fn level_orders(&self, head: Slot) -> impl Iterator<Item = OrderView> + '_ {
        std::iter::successors((head != NIL).then_some(head), move |&slot| {
            let next = self.orders.node(slot).next;
            (next != NIL).then_some(next)
        })
        .map(move |slot| OrderView::from(self.orders.node(slot)))
    }
}
