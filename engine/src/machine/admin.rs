//! The operator's commands: assets, accounts, instruments, trading status and
//! end of day. They allocate (a new instrument's book, a moved band's
//! ladder), which is why they are admin commands and never on the hot path.

use super::{Asset, Engine, Handled, Market, Rejecter, Rejection};
use crate::book::Book;
use crate::command::AdminCommand;
use crate::event::{Event, EventSink, Status};
use crate::instrument::{Instrument, InstrumentSpec, InstrumentUpdate, PriceBand};
use crate::reject::RejectReason;
use crate::types::{AccountId, AccountStatus, AssetId, InstrumentId, Price, Symbol, TradingStatus};

/// The largest asset scale: 10^18 fits a `u64`.
const SCALE_MAX: u8 = 18;

impl Engine {
    pub(super) fn admin(&mut self, command: &AdminCommand, events: &mut impl EventSink) -> Handled {
        let rejecter = Rejecter::admin();
        match *command {
            AdminCommand::CreateAsset {
                asset,
                symbol,
                scale,
            } => self.create_asset(asset, symbol, scale, rejecter, events),
            AdminCommand::CreateAccount { account } => {
                rejecter.check(
                    account.0 >= self.config.accounts_max,
                    RejectReason::CapacityExceeded,
                )?;
                rejecter.check(
                    self.ledger.account(account).is_some(),
                    RejectReason::AlreadyExists,
                )?;
                self.ledger.create_account(account);
                events.push(Event::AccountCreated { account });
                Ok(Status::Applied)
            }
            AdminCommand::SetAccountStatus { account, status } => {
                self.set_account_status(account, status, rejecter, events)
            }
            AdminCommand::CreateInstrument { instrument, spec } => {
                self.create_instrument(instrument, spec, rejecter, events)
            }
            AdminCommand::UpdateInstrument { instrument, update } => {
                self.update_instrument(instrument, update, rejecter, events)
            }
            AdminCommand::SetTradingStatus { instrument, status } => {
                self.set_trading_status(instrument, status, rejecter, events)
            }
            AdminCommand::EndOfDay => {
                let count = self.end_of_day(events);
                events.push(Event::EndOfDay { count });
                Ok(Status::Applied)
            }
        }
    }

    fn create_asset(
        &mut self,
        asset: AssetId,
        symbol: Symbol,
        scale: u8,
        rejecter: Rejecter,
        events: &mut impl EventSink,
    ) -> Handled {
        rejecter.check(
            asset.0 >= self.config.assets_max,
            RejectReason::CapacityExceeded,
        )?;
        let taken =
            self.asset(asset).is_some() || self.assets.iter().flatten().any(|a| a.symbol == symbol);
        rejecter.check(taken, RejectReason::AlreadyExists)?;
        rejecter.check(scale > SCALE_MAX, RejectReason::InvalidSpec)?;
        self.assets[usize::from(asset.0)] = Some(Asset { symbol, scale });
        events.push(Event::AssetCreated {
            asset,
            symbol,
            scale,
        });
        Ok(Status::Applied)
    }

    fn set_account_status(
        &mut self,
        account: AccountId,
        status: AccountStatus,
        rejecter: Rejecter,
        events: &mut impl EventSink,
    ) -> Handled {
        let state = self
            .ledger
            .account_mut(account)
            .ok_or(rejecter.reject(RejectReason::UnknownAccount))?;
        state.status = status;
        events.push(Event::AccountStatusChanged { account, status });
        Ok(Status::Applied)
    }

    fn create_instrument(
        &mut self,
        instrument: InstrumentId,
        spec: InstrumentSpec,
        rejecter: Rejecter,
        events: &mut impl EventSink,
    ) -> Handled {
        rejecter.check(
            instrument.0 >= self.config.instruments_max,
            RejectReason::CapacityExceeded,
        )?;
        let taken = self.market(instrument).is_some()
            || self
                .markets
                .iter()
                .flatten()
                .any(|market| market.instrument.spec.symbol == spec.symbol);
        rejecter.check(taken, RejectReason::AlreadyExists)?;
        rejecter.check(
            self.asset(spec.base).is_none() || self.asset(spec.quote).is_none(),
            RejectReason::UnknownAsset,
        )?;
        let band = spec
            .band()
            .filter(|_| spec.is_valid())
            .ok_or(rejecter.reject(RejectReason::InvalidSpec))?;
        self.check_levels(band, spec.tick_size, rejecter)?;
        self.markets[instrument.0 as usize] = Some(Market {
            instrument: Instrument {
                spec,
                band,
                status: TradingStatus::Open,
            },
            book: Book::new(band, spec.tick_size),
        });
        events.push(Event::InstrumentCreated { instrument, spec });
        Ok(Status::Applied)
    }

    fn update_instrument(
        &mut self,
        instrument: InstrumentId,
        update: InstrumentUpdate,
        rejecter: Rejecter,
        events: &mut impl EventSink,
    ) -> Handled {
        let market = self
            .market(instrument)
            .ok_or(rejecter.reject(RejectReason::UnknownInstrument))?;
        let spec = market.instrument.spec.updated(update);
        let band = spec
            .band()
            .filter(|_| spec.is_valid())
            .ok_or(rejecter.reject(RejectReason::InvalidSpec))?;
        // The ladder must cover the new band and every resting order.
        let current = market.book.range();
        let needed = match market.book.occupied_range() {
            None => band,
            Some((low, high)) => PriceBand {
                low: band.low.min(low),
                high: band.high.max(high),
            },
        };
        let covered = current.contains(needed.low) && current.contains(needed.high);
        if !covered {
            self.check_levels(needed, spec.tick_size, rejecter)?;
        }
        let market = self.markets[instrument.0 as usize]
            .as_mut()
            .expect("checked above");
        if !covered {
            market.book = market.book.rebuilt(needed);
        }
        market.instrument.spec = spec;
        market.instrument.band = band;
        events.push(Event::InstrumentUpdated { instrument, update });
        Ok(Status::Applied)
    }

    fn set_trading_status(
        &mut self,
        instrument: InstrumentId,
        status: TradingStatus,
        rejecter: Rejecter,
        events: &mut impl EventSink,
    ) -> Handled {
        let market = self
            .markets
            .get_mut(instrument.0 as usize)
            .and_then(Option::as_mut);
        let market = market.ok_or(rejecter.reject(RejectReason::UnknownInstrument))?;
        market.instrument.status = status;
        events.push(Event::TradingStatusChanged { instrument, status });
        Ok(Status::Applied)
    }

    fn check_levels(
        &self,
        range: PriceBand,
        tick_size: Price,
        rejecter: Rejecter,
    ) -> Result<(), Rejection> {
        rejecter.check(
            range.levels(tick_size) > u64::from(self.config.price_levels_max),
            RejectReason::BandTooWide,
        )
    }
}
