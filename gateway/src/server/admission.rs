//! Who gets in: the two listeners (accepting up to `sessions_max`
//! sessions), the authenticator thread that checks passwords, and the
//! rules a checked login must still pass — the port's entitlement, the
//! trading day's session name, one session per login and port — before it
//! is told where its stream resumes.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread;
use std::time::Instant;

use engine::AccountId;
use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use wire::soupbin::{self, RejectReason, ServerPacket};
use wire::trading_day::session_name;

use super::origin::{Channel, login_field};
use super::session::{LoggedIn, LoginPacket, Session, Sessions, State};
use super::streams::SessionStreams;
use crate::auth::{Entitlement, Logins};

/// Login Requests waiting for the authenticator; past it a login is
/// rejected at once (a flood of logins cannot queue without bound).
pub(super) const AUTH_QUEUE_MAX: usize = 256;
/// The first session's mio token (0 and 1 are the listeners).
pub(super) const FIRST_SESSION: usize = 2;

/// A Login Request for the authenticator.
#[derive(Debug)]
struct AuthRequest {
    session_id: u64,
    slot: usize,
    username: [u8; soupbin::USERNAME_BYTES],
    password: [u8; soupbin::PASSWORD_BYTES],
}

/// Its answer: the login's index in the table, or why not.
#[derive(Debug)]
pub(super) struct AuthResult {
    pub(super) session_id: u64,
    pub(super) slot: usize,
    pub(super) outcome: Result<usize, String>,
}

/// Checks passwords on a thread of its own: an Argon2id check takes
/// milliseconds, which the event loop must not spend while sessions trade.
/// It wakes the loop through a mio waker when an answer is ready.
#[derive(Debug)]
pub(super) struct Authenticator {
    requests: SyncSender<AuthRequest>,
    results: Receiver<AuthResult>,
}

impl Authenticator {
    pub(super) fn spawn(logins: Logins, waker: Arc<mio::Waker>) -> io::Result<Authenticator> {
        let (requests, requests_in) = std::sync::mpsc::sync_channel::<AuthRequest>(AUTH_QUEUE_MAX);
        let (results_out, results) = std::sync::mpsc::channel();
        thread::Builder::new()
            .name("authenticator".to_owned())
            .spawn(move || {
                // Ends when the loop drops its sender.
                while let Ok(request) = requests_in.recv() {
                    let result = AuthResult {
                        session_id: request.session_id,
                        slot: request.slot,
                        outcome: check(&logins, &request),
                    };
                    if results_out.send(result).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            })?;
        Ok(Authenticator { requests, results })
    }

    /// Hands a session's Login Request to the thread; `false` when its
    /// queue is full.
    pub(super) fn submit(&self, session: &Session, slot: usize, login: &LoginPacket) -> bool {
        let request = AuthRequest {
            session_id: session.id,
            slot,
            username: login.username,
            password: login.password,
        };
        self.requests.try_send(request).is_ok()
    }

    /// An answer, if one is ready.
    pub(super) fn result(&self) -> Option<AuthResult> {
        self.results.try_recv().ok()
    }
}

fn check(logins: &Logins, request: &AuthRequest) -> Result<usize, String> {
    let login = logins
        .authenticate(&request.username, &request.password)
        .map_err(|error| error.to_string())?;
    logins
        .iter()
        .position(|candidate| std::ptr::eq(candidate, login))
        .ok_or_else(|| "not in the login table".to_owned())
}

/// The listeners and the rules of admission.
#[derive(Debug)]
pub(super) struct Admission {
    pub(super) order_entry: TcpListener,
    pub(super) funding: TcpListener,
    pub(super) authenticator: Authenticator,
    logins: Logins,
    session_prefix: String,
}

/// What [`Admission::accept_one`] did.
#[derive(Debug)]
pub(super) enum Accepted {
    Opened,
    /// Over `sessions_max` (or stopping): the connection was closed.
    Refused,
    /// The socket could not be registered (logged).
    Failed,
    /// Nothing more to accept for now.
    Done,
}

impl Admission {
    pub(super) fn new(
        order_entry: TcpListener,
        funding: TcpListener,
        authenticator: Authenticator,
        logins: Logins,
        session_prefix: String,
    ) -> Admission {
        Admission {
            order_entry,
            funding,
            authenticator,
            logins,
            session_prefix,
        }
    }

    /// Accepts one connection on `channel`'s port into `sessions` (when
    /// `open` allows one more).
    pub(super) fn accept_one(
        &self,
        channel: Channel,
        sessions: &mut Sessions,
        registry: &Registry,
        open: bool,
        burst: u32,
    ) -> Accepted {
        let listener = match channel {
            Channel::OrderEntry => &self.order_entry,
            Channel::Funding => &self.funding,
        };
        let (mut socket, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Accepted::Done,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                return Accepted::Done;
            }
        };
        if !open {
            tracing::warn!(%peer, open = sessions.open_count(), "session refused: sessions_max reached");
            return Accepted::Refused;
        }
        let _ = socket.set_nodelay(true);
        let (slot, id) = sessions.vacancy();
        let token = Token(slot + FIRST_SESSION);
        if let Err(error) =
            registry.register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
        {
            tracing::warn!(%peer, %error, "cannot register a session");
            return Accepted::Failed;
        }
        tracing::info!(%peer, ?channel, "connected");
        sessions.put(
            slot,
            Session::new(id, socket, channel, peer, burst, Instant::now()),
        );
        Accepted::Opened
    }

    /// Finishes a login whose password checked out (`index` in the login
    /// table): its rights on this port, the session name, one session per
    /// login and port, and where its stream resumes. `Err` is the reason
    /// to reject it with.
    pub(super) fn admit(
        &self,
        sessions: &Sessions,
        streams: &SessionStreams,
        slot: usize,
        request: &LoginPacket,
        index: usize,
        day: u64,
    ) -> Result<(LoggedIn, ServerPacket<'static>), RejectReason> {
        let session = sessions.get(slot).expect("open session");
        let channel = session.channel;
        let entitlement = match channel {
            Channel::OrderEntry => Entitlement::Trade,
            Channel::Funding => Entitlement::Fund,
        };
        let login = self
            .logins
            .iter()
            .nth(index)
            .ok_or(RejectReason::NotAuthorized)?;
        if !login.may(entitlement) {
            tracing::warn!(peer = ?session.peer, login = %login.name, ?channel,
                "login rejected: no {} entitlement", entitlement.name());
            return Err(RejectReason::NotAuthorized);
        }
        let name = &login.name;
        let session_name = session_name(&self.session_prefix, day);
        let requested = request.session;
        let key = (channel, index);
        if requested != [b' '; soupbin::SESSION_BYTES] && requested != session_name {
            tracing::warn!(login = %name, requested = %String::from_utf8_lossy(&requested),
                "login rejected: no such session");
            return Err(RejectReason::SessionNotAvailable);
        }
        if sessions.logged_in_elsewhere(slot, key) {
            tracing::warn!(login = %name, ?channel, "login rejected: already logged in");
            return Err(RejectReason::SessionNotAvailable);
        }
        let stream_len = streams.len(key);
        let next = match request.sequence {
            0 => stream_len + 1,
            n => n.min(stream_len + 1),
        };
        tracing::info!(peer = ?session.peer, login = %name, ?channel, next, "logged in");
        let logged_in = LoggedIn {
            login: index,
            login_name: login_field(name),
            account: login.account.map(AccountId),
            key,
            day,
            next,
        };
        let accepted = ServerPacket::LoginAccepted {
            session: session_name,
            sequence: next,
        };
        Ok((logged_in, accepted))
    }
}

/// Takes a session out of `Authenticating` for its authenticator answer;
/// `None` when the answer is stale (the connection closed meanwhile).
pub(super) fn awaiting_answer(session: &mut Session, session_id: u64) -> Option<LoginPacket> {
    if session.id != session_id {
        return None;
    }
    let state = std::mem::replace(&mut session.state, State::AwaitingLogin);
    match state {
        State::Authenticating(request) => {
            // Packets sent after the Login Request wait in its buffer.
            session.readable = true;
            Some(request)
        }
        other => {
            session.state = other;
            None
        }
    }
}
