//! Logins and their rights: who may open a SoupBinTCP session, with which
//! password, on which account, and for what (trading, funding).
//!
//! The table comes from the configuration (`[[logins]]`, see
//! `tools/default.toml`). Passwords are never kept in plain text: each login
//! carries an Argon2id hash in the PHC string format
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), made with [`hash_password`]
//! (`exchange config hash-password`). Verification is the `argon2` crate's
//! (RustCrypto) `verify_password`, which compares the outputs in constant
//! time; it uses the parameters written in each hash, so stronger hashes can
//! be configured without a code change.
//!
//! # Cost
//!
//! [`hash_password`] uses Argon2id with m = 4 MiB, t = 3, p = 1 (see
//! [`HASH_PARAMS`]): a verification takes a few milliseconds on a 2-vCPU
//! machine (about 5 ms measured in a release build), which keeps logins and
//! tests fast while still costing an attacker of a stolen configuration
//! 4 MiB and three passes per guess. A login arrives at most once per session, so this is
//! not on any order path. A lookup of an unknown username costs one
//! verification too (against a dummy hash), so response time does not tell
//! which usernames exist.
//!
//! # Matching the SoupBinTCP fields
//!
//! The Login Request's Username (6) and Password (10) are Alpha fields,
//! left-justified and padded on the right with spaces. Some clients pad on
//! the left, or with NUL bytes instead of spaces, so both fields are
//! trimmed of spaces and NULs on either side before they are compared.
//! Usernames compare ASCII case-insensitively (`demo1` is `DEMO1`);
//! passwords compare exactly.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use std::fmt;
use std::sync::OnceLock;

/// Width of the SoupBinTCP Login Request Username field: the longest name.
pub const NAME_BYTES_MAX: usize = 6;
/// Width of the SoupBinTCP Login Request Password field: the longest
/// password a client can send.
pub const PASSWORD_BYTES_MAX: usize = 10;

/// Argon2id memory cost of new hashes, in KiB (4 MiB).
pub const HASH_M_COST_KIB: u32 = 4096;
/// Argon2id passes over the memory of new hashes.
pub const HASH_T_COST: u32 = 3;
/// Argon2id lanes of new hashes.
pub const HASH_P_COST: u32 = 1;

/// The Argon2 parameters of new hashes (see the module documentation).
pub const HASH_PARAMS: (u32, u32, u32) = (HASH_M_COST_KIB, HASH_T_COST, HASH_P_COST);

/// What a login may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entitlement {
    /// Enter, replace and cancel orders and query balances on its account
    /// (the order-entry port).
    Trade,
    /// Deposit, withdraw, transfer and query balances of any account (the
    /// funding port; the operator).
    Fund,
}

impl Entitlement {
    /// The configuration's name of the entitlement.
    pub fn name(self) -> &'static str {
        match self {
            Entitlement::Trade => "trade",
            Entitlement::Fund => "fund",
        }
    }
}

/// One login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// The SoupBinTCP username: 1 to 6 printable ASCII characters, no
    /// spaces.
    pub name: String,
    /// The account a session of this login acts on; required for
    /// [`Entitlement::Trade`].
    pub account: Option<u32>,
    pub entitlements: Vec<Entitlement>,
    /// An Argon2 PHC string (see [`hash_password`]).
    pub password_hash: String,
}

impl Login {
    /// Whether the login has `entitlement`.
    pub fn may(&self, entitlement: Entitlement) -> bool {
        self.entitlements.contains(&entitlement)
    }
}

/// A login table that cannot be built, or a login that is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// The name is empty, longer than 6 bytes, or holds anything but
    /// printable, non-space ASCII.
    InvalidName { name: String },
    /// Two logins with the same name (compared case-insensitively).
    DuplicateName { name: String },
    /// A login without any entitlement.
    NoEntitlements { name: String },
    /// A trading login without an account.
    MissingAccount { name: String },
    /// The password hash is not an Argon2 PHC string this build can verify.
    InvalidHash { name: String, problem: String },
    /// A password that could not be sent in a Login Request: empty, longer
    /// than 10 bytes, or holding anything but printable, non-space ASCII.
    InvalidPassword,
    /// No login has this username. On the wire this is the same "not
    /// authorised" as [`AuthError::WrongPassword`].
    UnknownUser,
    /// The password does not match the login's hash.
    WrongPassword,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::InvalidName { name } => write!(
                f,
                "login {name:?}: a name is 1 to {NAME_BYTES_MAX} printable ASCII characters without spaces"
            ),
            AuthError::DuplicateName { name } => write!(f, "login {name:?} is configured twice"),
            AuthError::NoEntitlements { name } => {
                write!(f, "login {name:?} has no entitlements")
            }
            AuthError::MissingAccount { name } => write!(
                f,
                "login {name:?} is entitled to trade but names no account"
            ),
            AuthError::InvalidHash { name, problem } => write!(
                f,
                "login {name:?}: password_hash is not a usable Argon2 PHC string ({problem})"
            ),
            AuthError::InvalidPassword => write!(
                f,
                "a password is 1 to {PASSWORD_BYTES_MAX} printable ASCII characters without spaces"
            ),
            AuthError::UnknownUser => write!(f, "unknown username"),
            AuthError::WrongPassword => write!(f, "wrong password"),
        }
    }
}

impl std::error::Error for AuthError {}

/// The login table.
#[derive(Clone, Debug)]
pub struct Logins {
    logins: Vec<Login>,
}

impl Logins {
    /// The table of `logins`, each checked: a valid, unique name, at least
    /// one entitlement, an account if it trades, and a password hash that
    /// parses as an Argon2 PHC string with valid parameters.
    pub fn new(logins: Vec<Login>) -> Result<Logins, AuthError> {
        for (index, login) in logins.iter().enumerate() {
            let name = || login.name.clone();
            if !valid_text(login.name.as_bytes(), NAME_BYTES_MAX) {
                return Err(AuthError::InvalidName { name: name() });
            }
            if logins[..index]
                .iter()
                .any(|other| other.name.eq_ignore_ascii_case(&login.name))
            {
                return Err(AuthError::DuplicateName { name: name() });
            }
            if login.entitlements.is_empty() {
                return Err(AuthError::NoEntitlements { name: name() });
            }
            if login.may(Entitlement::Trade) && login.account.is_none() {
                return Err(AuthError::MissingAccount { name: name() });
            }
            check_hash(&login.password_hash).map_err(|problem| AuthError::InvalidHash {
                name: name(),
                problem,
            })?;
        }
        Ok(Logins { logins })
    }

    /// The logins, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Login> {
        self.logins.iter()
    }

    /// The login named `name` (ASCII case-insensitive), if any.
    pub fn get(&self, name: &str) -> Option<&Login> {
        self.logins
            .iter()
            .find(|login| login.name.eq_ignore_ascii_case(name))
    }

    /// Checks a SoupBinTCP Login Request's raw Username and Password fields
    /// (see the module documentation for how they are trimmed and
    /// compared). Takes one Argon2 verification (a few milliseconds), also
    /// for an unknown username.
    ///
    /// The caller still checks the entitlement the port needs
    /// ([`Login::may`]).
    pub fn authenticate(
        &self,
        username: &[u8; NAME_BYTES_MAX],
        password: &[u8; PASSWORD_BYTES_MAX],
    ) -> Result<&Login, AuthError> {
        let username = trimmed(username);
        let password = trimmed(password);
        let login = self.logins.iter().find(|login| {
            let name = login.name.as_bytes();
            name.eq_ignore_ascii_case(username)
        });
        match login {
            Some(login) => {
                if verify(password, &login.password_hash) {
                    Ok(login)
                } else {
                    Err(AuthError::WrongPassword)
                }
            }
            None => {
                // As long as a real verification, so timing does not reveal
                // which usernames exist.
                let _ = verify(password, dummy_hash());
                Err(AuthError::UnknownUser)
            }
        }
    }
}

/// `field` without spaces and NUL bytes on either side.
fn trimmed(field: &[u8]) -> &[u8] {
    let pad = |byte: &u8| *byte == b' ' || *byte == 0;
    let start = field
        .iter()
        .position(|byte| !pad(byte))
        .unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|byte| !pad(byte))
        .map_or(start, |last| last + 1);
    &field[start..end]
}

/// 1 to `max` bytes of printable, non-space ASCII.
fn valid_text(text: &[u8], max: usize) -> bool {
    !text.is_empty() && text.len() <= max && text.iter().all(u8::is_ascii_graphic)
}

/// Checks that `password` could be sent in a SoupBinTCP Login Request and
/// compared after trimming: 1 to 10 printable ASCII characters, no spaces.
pub fn check_password(password: &str) -> Result<(), AuthError> {
    if valid_text(password.as_bytes(), PASSWORD_BYTES_MAX) {
        Ok(())
    } else {
        Err(AuthError::InvalidPassword)
    }
}

fn hasher() -> Argon2<'static> {
    // Invariant: the constants are within Argon2's limits (tested).
    let params = Params::new(HASH_M_COST_KIB, HASH_T_COST, HASH_P_COST, None)
        .expect("the hash parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An Argon2id PHC string of `password` with a fresh random salt and
/// [`HASH_PARAMS`]. Check the password with [`check_password`] first: a
/// password a client cannot send is hashed all the same.
///
/// # Panics
///
/// If the operating system's random number generator fails.
pub fn hash_password(password: &str) -> String {
    // Invariant: a 16-byte salt and valid parameters always hash; only the
    // system RNG can fail.
    hasher()
        .hash_password(password.as_bytes())
        .expect("Argon2id hashing with a random salt")
        .to_string()
}

/// Whether `hash` is an Argon2 PHC string this build can verify; the
/// problem otherwise.
fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|error| error.to_string())?;
    Algorithm::try_from(parsed.algorithm.as_str()).map_err(|error| error.to_string())?;
    if let Some(version) = parsed.version {
        Version::try_from(version).map_err(|error| error.to_string())?;
    }
    Params::try_from(&parsed).map_err(|error| error.to_string())?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("no salt or no hash".into());
    }
    Ok(())
}

/// Whether `password` matches `hash`, in constant time in the password
/// (the crate's `verify_password`).
fn verify(password: &[u8], hash: &str) -> bool {
    hasher().verify_password(password, hash).is_ok()
}

/// A hash no password sent by a client matches (it is of a password longer
/// than the field), verified for unknown usernames.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no login has this password"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    fn field<const N: usize>(text: &[u8]) -> [u8; N] {
        let mut field = [b' '; N];
        field[..text.len()].copy_from_slice(text);
        field
    }

    static HASHES: LazyLock<(String, String)> =
        LazyLock::new(|| (hash_password("demo1"), hash_password("oper1")));

    fn logins() -> Logins {
        let (demo1, oper1) = HASHES.clone();
        Logins::new(vec![
            Login {
                name: "DEMO1".into(),
                account: Some(1),
                entitlements: vec![Entitlement::Trade],
                password_hash: demo1,
            },
            Login {
                name: "OPER1".into(),
                account: None,
                entitlements: vec![Entitlement::Fund],
                password_hash: oper1,
            },
        ])
        .unwrap()
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_with_the_documented_parameters() {
        let hash = &HASHES.0;
        assert!(hash.starts_with("$argon2id$v=19$m=4096,t=3,p=1$"), "{hash}");
        assert_ne!(hash_password("demo1"), *hash, "salts are random");
        assert!(check_hash(hash).is_ok());
    }

    #[test]
    fn logins_authenticate_with_padded_fields() {
        let logins = logins();
        let login = logins
            .authenticate(&field(b"DEMO1"), &field(b"demo1"))
            .unwrap();
        assert_eq!(login.account, Some(1));
        assert!(login.may(Entitlement::Trade) && !login.may(Entitlement::Fund));
        // Padded on the left, with NULs, lower-case username.
        assert_eq!(
            logins.authenticate(b" DEMO1", b"     demo1").unwrap().name,
            "DEMO1"
        );
        assert!(logins.authenticate(b"DEMO1\0", b"demo1\0\0\0\0\0").is_ok());
        assert!(
            logins
                .authenticate(&field(b"demo1"), &field(b"demo1"))
                .is_ok()
        );
        let oper = logins
            .authenticate(&field(b"OPER1"), &field(b"oper1"))
            .unwrap();
        assert!(oper.may(Entitlement::Fund));
    }

    #[test]
    fn wrong_passwords_and_unknown_users_are_refused() {
        let logins = logins();
        assert_eq!(
            logins.authenticate(&field(b"DEMO1"), &field(b"demo2")),
            Err(AuthError::WrongPassword)
        );
        assert_eq!(
            logins.authenticate(&field(b"DEMO1"), &field(b"DEMO1")),
            Err(AuthError::WrongPassword),
            "passwords are case-sensitive"
        );
        assert_eq!(
            logins.authenticate(&field(b"DEMO1"), &field(b"")),
            Err(AuthError::WrongPassword)
        );
        assert_eq!(
            logins.authenticate(&field(b"DEMO9"), &field(b"demo1")),
            Err(AuthError::UnknownUser)
        );
        assert_eq!(
            logins.authenticate(&field(b""), &field(b"")),
            Err(AuthError::UnknownUser)
        );
        // A space inside is not trimmed away.
        assert!(logins.authenticate(b"DEM O1", &field(b"demo1")).is_err());
    }

    #[test]
    fn bad_tables_are_refused() {
        let base = logins().logins;
        let with = |change: &dyn Fn(&mut Vec<Login>)| {
            let mut logins = base.clone();
            change(&mut logins);
            Logins::new(logins).unwrap_err()
        };
        assert!(matches!(
            with(&|l| l[1].name = "demo1".into()),
            AuthError::DuplicateName { .. }
        ));
        for name in ["", "TOOLONG", "DE MO", "DÉMO"] {
            assert!(
                matches!(
                    with(&|l| l[0].name = name.into()),
                    AuthError::InvalidName { .. }
                ),
                "{name:?}"
            );
        }
        assert!(matches!(
            with(&|l| l[0].account = None),
            AuthError::MissingAccount { .. }
        ));
        assert!(matches!(
            with(&|l| l[0].entitlements.clear()),
            AuthError::NoEntitlements { .. }
        ));
        for hash in [
            "demo1",
            "$argon2id$v=19$m=4096,t=3,p=1",
            "$bcrypt$v=19$m=4096,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=1,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(
                matches!(
                    with(&|l| l[0].password_hash = hash.into()),
                    AuthError::InvalidHash { .. }
                ),
                "{hash}"
            );
        }
    }

    #[test]
    fn passwords_must_fit_the_login_request() {
        assert!(check_password("demo1").is_ok());
        assert!(check_password("0123456789").is_ok());
        for bad in ["", "01234567890", "de mo", "démo"] {
            assert_eq!(
                check_password(bad),
                Err(AuthError::InvalidPassword),
                "{bad:?}"
            );
        }
    }
}
