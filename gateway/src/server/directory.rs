//! What both directions of the gateway read about the exchange: who the
//! logins are (by origin-record name, and which login trades each account),
//! the instrument catalogue, and the trading day. The outbound side keeps
//! it current from the engine's events (instruments listed, days ended);
//! the inbound side reads it to turn messages into commands.

// Small keys looked up per message, none chosen by a client unchecked
// (login names and accounts are the configuration's): FxHash.
use rustc_hash::FxHashMap as HashMap;

use engine::{AccountId, Event, SelfTradePrevention, UserRefNum};
use wire::Catalogue;

use super::origin::login_field;

/// A login as the directory needs it.
#[derive(Clone, Debug)]
pub struct DirectoryLogin {
    pub name: String,
    pub account: Option<AccountId>,
    pub trades: bool,
    pub self_trade: SelfTradePrevention,
}

/// The gateway's view of logins, instruments and the trading day.
#[derive(Debug)]
pub struct Directory {
    /// Login names (origin field) → index in the login table.
    logins: HashMap<[u8; 6], usize>,
    /// Account → its trading login.
    traders: HashMap<AccountId, usize>,
    /// Per login: its self-trade prevention.
    self_trade: Vec<SelfTradePrevention>,
    catalogue: Catalogue,
    /// End-of-day commands applied: the trading day, part of every engine
    /// user reference (`day << 32 | UserRefNum`).
    day: u64,
}

/// What the directory derived from the commands (the rest is the
/// configuration's), as an edges' snapshot records it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DirectoryState {
    pub catalogue: Catalogue,
    pub day: u64,
}

impl Directory {
    /// What the commands so far made of the directory.
    pub fn state(&self) -> DirectoryState {
        DirectoryState {
            catalogue: self.catalogue.clone(),
            day: self.day,
        }
    }

    /// Takes up `state` (recorded at a sequence this directory's
    /// configuration has not changed since).
    pub fn resume(&mut self, state: DirectoryState) {
        self.catalogue = state.catalogue;
        self.day = state.day;
    }

    /// # Errors
    /// Two trading logins on one account (replies are routed by account).
    pub fn new(logins: &[DirectoryLogin]) -> Result<Directory, String> {
        let mut names = HashMap::default();
        let mut traders = HashMap::default();
        for (index, login) in logins.iter().enumerate() {
            names.insert(login_field(&login.name), index);
            if login.trades
                && let Some(account) = login.account
                && traders.insert(account, index).is_some()
            {
                return Err(format!(
                    "account {account} has more than one trading login; replies are routed by \
                     account, so each account may have one"
                ));
            }
        }
        Ok(Directory {
            logins: names,
            traders,
            self_trade: logins.iter().map(|login| login.self_trade).collect(),
            catalogue: Catalogue::new(),
            day: 0,
        })
    }

    /// The trading day (end-of-day commands applied so far).
    pub fn day(&self) -> u64 {
        self.day
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The login table index of an origin record's login name.
    pub fn login_index(&self, name: &[u8; 6]) -> Option<usize> {
        self.logins.get(name).copied()
    }

    /// The login that trades `account` (its replies go to that login).
    pub fn trading_login(&self, account: AccountId) -> Option<usize> {
        self.traders.get(&account).copied()
    }

    /// The self-trade prevention of login `login`.
    pub fn self_trade(&self, login: usize) -> SelfTradePrevention {
        self.self_trade
            .get(login)
            .copied()
            .unwrap_or(SelfTradePrevention::CancelNewest)
    }

    /// The engine's user reference of today's OUCH UserRefNum.
    pub fn engine_user_ref_num(&self, user_ref_num: u32) -> UserRefNum {
        UserRefNum((self.day << 32) | u64::from(user_ref_num))
    }

    /// Whether an engine user reference is of today's day.
    pub fn is_today(&self, user_ref_num: UserRefNum) -> bool {
        user_ref_num.0 >> 32 == self.day
    }

    /// Keeps the catalogue current (genesis and admin commands).
    pub(crate) fn observe(&mut self, event: &Event) {
        self.catalogue.observe(event);
    }

    /// An end-of-day command was applied.
    pub(crate) fn end_day(&mut self) {
        self.day += 1;
    }
}
