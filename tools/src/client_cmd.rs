//! `exchange client …`: a command-line trading and funding client built on
//! `gateway::client`. One-shot commands (`enter`, `replace`, `cancel`,
//! `query`, `fund …`) log in, send one request, print every message the
//! server sends until the reply to that request has arrived and for
//! `--wait` milliseconds more, and log out. `listen` streams the session's
//! sequenced messages; `shell` reads commands from standard input while
//! printing what arrives.
//!
//! Output is one line per server message, on standard output:
//! `seq=3 OrderAccepted urn=1 buy 10 ACME @100.0000 ref=17 state=live tif=day`,
//! or with `--json` one JSON object per line (prices as exact decimal
//! strings). Progress notes (login, what was sent) go to standard error.
//!
//! Prices are parsed from decimal text into OUCH's 4 implied decimals
//! exactly, without floating point.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use gateway::client::{ClientError, FundingClient, LoginParams, OuchClient};
use gateway::funding;
use gateway::ouch::{self, Outbound, Price};
use serde_json::{Value, json};

/// The order-entry port of the default configuration.
pub const ORDER_ENTRY_ADDR_DEFAULT: &str = "127.0.0.1:9001";
/// The funding port of the default configuration.
pub const FUNDING_ADDR_DEFAULT: &str = "127.0.0.1:9002";
/// How long a one-shot command waits for the reply to its request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `shell` blocks on the socket before looking at standard input.
const SHELL_POLL: Duration = Duration::from_millis(20);

/// `exchange client`: connection options and the command to run.
#[derive(Debug, Args)]
#[command(after_help = "\
Exit status of the one-shot commands: 0 when the reply arrived and was not a \
rejection; 2 when it was a rejection (Order Rejected, Cancel Reject, Funding \
Rejected); 1 on any error, including no reply within 5 s. `listen` and `shell` \
exit 0 when they end normally and 1 on an error.

Examples:
  exchange client enter --side buy --qty 10 --symbol ACME --price 100.0000
  exchange client --login DEMO2 cancel --urn 3
  exchange client listen --sequence 1 --count 20 --json
  exchange client fund deposit --account 1 --asset 1 --amount 10000 --transfer-id 7
  exchange client shell")]
pub struct ClientArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// Options shared by every client command (accepted before or after the
/// command's name).
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection and output options")]
pub struct ConnectionArgs {
    /// Server address [default: 127.0.0.1:9001, or 127.0.0.1:9002 for `fund`].
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Login name, up to 6 characters [default: DEMO1, or OPER1 for `fund`].
    #[arg(long, global = true, value_name = "NAME")]
    pub login: Option<String>,
    /// Password, up to 10 characters [default: the login name in lower case,
    /// which is the password of the demo logins].
    #[arg(long, global = true, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// SoupBinTCP session to join; empty for the current session.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = "",
        hide_default_value = true
    )]
    pub session: String,
    /// Sequence number of the first sequenced message wanted: 0 for new
    /// messages only, 1 to replay the session from its start.
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    pub sequence: u64,
    /// Print one JSON object per message instead of a line of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// After the reply, keep printing further messages (e.g. executions)
    /// for this many milliseconds; in `shell`, how long `quit` waits.
    #[arg(long, global = true, value_name = "MS", default_value_t = 500)]
    pub wait: u64,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Enter a limit order and print Order Accepted (or Rejected) and any
    /// immediate executions.
    Enter(EnterArgs),
    /// Replace an open order with a new UserRefNum, quantity and price.
    Replace(ReplaceArgs),
    /// Cancel an open order, or reduce it to --qty.
    Cancel(CancelArgs),
    /// Account Query: print the next UserRefNum the server expects.
    Query,
    /// Print every sequenced message of the session, one per line, until
    /// Ctrl-C, --count messages or --for seconds.
    Listen(ListenArgs),
    /// Funding requests on the funding port (amounts in the asset's minor
    /// units, e.g. 1 = 0.0001 USD).
    #[command(subcommand)]
    Fund(FundCommand),
    /// Interactive order entry: read commands from standard input, one per
    /// line, and print every message as it arrives. Type `help` for the
    /// commands.
    Shell,
}

/// A side of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SideArg {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl SideArg {
    fn ouch(self) -> ouch::Side {
        match self {
            SideArg::Buy => ouch::Side::Buy,
            SideArg::Sell => ouch::Side::Sell,
        }
    }
}

/// Time in force, as the server maps it from OUCH (docs/protocol.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TifArg {
    /// Day (OUCH '0').
    Day,
    /// Immediate or cancel (OUCH '3').
    Ioc,
    /// Good till canceled (OUCH '5', good till extended hours).
    Gtc,
    /// Fill or kill (OUCH '3' with Min Qty equal to the quantity).
    Fok,
}

impl TifArg {
    fn ouch(self) -> ouch::TimeInForce {
        match self {
            TifArg::Day => ouch::TimeInForce::Day,
            TifArg::Ioc | TifArg::Fok => ouch::TimeInForce::ImmediateOrCancel,
            TifArg::Gtc => ouch::TimeInForce::GoodTillExtendedHours,
        }
    }

    fn options(self, quantity: u32, post_only: bool) -> ouch::Options {
        ouch::Options {
            min_quantity: (self == TifArg::Fok).then_some(quantity),
            post_only: post_only.then_some(ouch::PostOnly::PostOnly),
            ..ouch::Options::NONE
        }
    }
}

/// `enter`.
#[derive(Debug, Args)]
pub struct EnterArgs {
    /// Buy or sell.
    #[arg(long, value_enum)]
    pub side: SideArg,
    /// Quantity in the instrument's units (shares; EUR for EURUSD).
    #[arg(long, value_name = "N")]
    pub qty: u32,
    /// Instrument symbol, up to 8 characters (ACME, GLOBEX, EURUSD).
    #[arg(long, value_name = "SYMBOL")]
    pub symbol: String,
    /// Limit price as a decimal, at most 4 decimal places (100, 100.25,
    /// 1.1000).
    #[arg(long, value_name = "PRICE", value_parser = parse_price)]
    pub price: Price,
    /// Time in force.
    #[arg(long, value_enum, default_value_t = TifArg::Day)]
    pub tif: TifArg,
    /// Only add liquidity: never trade on entry.
    #[arg(long)]
    pub post_only: bool,
    /// UserRefNum of the new order [default: the next one the server
    /// expects, asked with an Account Query].
    #[arg(long, value_name = "N")]
    pub urn: Option<u32>,
}

/// `replace`.
#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// UserRefNum of the order to replace.
    #[arg(long, value_name = "N")]
    pub urn: u32,
    /// UserRefNum of the replacement [default: the next one the server
    /// expects, asked with an Account Query].
    #[arg(long, value_name = "N")]
    pub new_urn: Option<u32>,
    /// New quantity.
    #[arg(long, value_name = "N")]
    pub qty: u32,
    /// New limit price, at most 4 decimal places.
    #[arg(long, value_name = "PRICE", value_parser = parse_price)]
    pub price: Price,
    /// Time in force of the replacement.
    #[arg(long, value_enum, default_value_t = TifArg::Day)]
    pub tif: TifArg,
    /// The replacement only adds liquidity.
    #[arg(long)]
    pub post_only: bool,
}

/// `cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// UserRefNum of the order.
    #[arg(long, value_name = "N")]
    pub urn: u32,
    /// Quantity to leave open; 0 cancels the whole order.
    #[arg(long, value_name = "LEFT", default_value_t = 0)]
    pub qty: u32,
}

/// `listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Stop after this many sequenced messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long = "for", value_name = "SECS")]
    pub for_secs: Option<u64>,
}

/// `fund …`.
#[derive(Debug, Subcommand)]
pub enum FundCommand {
    /// Credit an account.
    Deposit(FundingArgs),
    /// Debit an account.
    Withdraw(FundingArgs),
    /// Move an amount from one account to another.
    Transfer(TransferArgs),
    /// Print an account's balances (available and held, per asset).
    Balance {
        /// Account number.
        #[arg(long, value_name = "N")]
        account: u32,
    },
}

/// `fund deposit` and `fund withdraw`.
#[derive(Debug, Args)]
pub struct FundingArgs {
    /// Account number.
    #[arg(long, value_name = "N")]
    pub account: u32,
    /// Asset number.
    #[arg(long, value_name = "N")]
    pub asset: u16,
    /// Amount in the asset's minor units (> 0).
    #[arg(long, value_name = "N")]
    pub amount: u64,
    /// Client transfer id, strictly increasing per account; repeating one
    /// returns the first result.
    #[arg(long, value_name = "N")]
    pub transfer_id: u64,
}

/// `fund transfer`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Account to debit.
    #[arg(long, value_name = "N")]
    pub from: u32,
    /// Account to credit.
    #[arg(long, value_name = "N")]
    pub to: u32,
    /// Asset number.
    #[arg(long, value_name = "N")]
    pub asset: u16,
    /// Amount in the asset's minor units (> 0).
    #[arg(long, value_name = "N")]
    pub amount: u64,
    /// Client transfer id, strictly increasing per `from` account.
    #[arg(long, value_name = "N")]
    pub transfer_id: u64,
}

/// Runs `exchange client …`.
pub fn run(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let ClientArgs {
        connection,
        command,
    } = args;
    match command {
        ClientCommand::Fund(command) => run_fund(&connection, command),
        ClientCommand::Listen(listen_args) => listen(&connection, &listen_args),
        ClientCommand::Shell => shell(&connection),
        command => run_order_entry(&connection, command),
    }
}

// ---------------------------------------------------------------------------
// Prices
// ---------------------------------------------------------------------------

/// Parses a decimal price (`100`, `100.5`, `100.0000`) into OUCH's 4
/// implied decimals exactly; more than 4 decimal places, a sign, an exponent
/// or anything but digits and one point is an error.
pub fn parse_price(text: &str) -> Result<Price, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(format!(
            "`{text}` is not a price: digits with an optional decimal point, e.g. 100.25"
        ));
    }
    if fraction.len() > 4 {
        return Err(format!(
            "`{text}` has more than 4 decimal places (OUCH prices have 4)"
        ));
    }
    let too_large = || format!("`{text}` is too large for a price");
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let mut fraction_units: i64 = 0;
    for (index, byte) in fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(4)
        .enumerate()
    {
        debug_assert!(index < 4);
        fraction_units = fraction_units * 10 + i64::from(byte - b'0');
    }
    whole
        .checked_mul(ouch::PRICE_SCALE)
        .and_then(|units| units.checked_add(fraction_units))
        .map(Price)
        .ok_or_else(too_large)
}

/// Formats a price with its 4 decimals (`Price(1_000_000)` is `100.0000`).
pub fn format_price(price: Price) -> String {
    let sign = if price.0 < 0 { "-" } else { "" };
    let units = price.0.unsigned_abs();
    let scale = ouch::PRICE_SCALE.unsigned_abs();
    format!("{sign}{}.{:04}", units / scale, units % scale)
}

// ---------------------------------------------------------------------------
// Connecting and printing
// ---------------------------------------------------------------------------

fn login_params(connection: &ConnectionArgs, login_default: &str) -> LoginParams {
    let username = connection
        .login
        .clone()
        .unwrap_or_else(|| login_default.to_owned());
    let password = connection
        .password
        .clone()
        .unwrap_or_else(|| username.to_lowercase());
    LoginParams {
        username,
        password,
        session: connection.session.clone(),
        sequence: connection.sequence,
    }
}

fn connect_ouch(connection: &ConnectionArgs) -> anyhow::Result<OuchClient> {
    let addr = connection
        .addr
        .as_deref()
        .unwrap_or(ORDER_ENTRY_ADDR_DEFAULT);
    let login = login_params(connection, "DEMO1");
    let (client, accepted) = OuchClient::connect(addr, &login)
        .with_context(|| format!("logging in to {addr} as {}", login.username))?;
    eprintln!(
        "logged in to {addr} as {}: session {:?}, next sequence {}",
        login.username, accepted.session, accepted.sequence
    );
    Ok(client)
}

fn connect_funding(connection: &ConnectionArgs) -> anyhow::Result<FundingClient> {
    let addr = connection.addr.as_deref().unwrap_or(FUNDING_ADDR_DEFAULT);
    let login = login_params(connection, "OPER1");
    let (client, accepted) = FundingClient::connect(addr, &login)
        .with_context(|| format!("logging in to {addr} as {}", login.username))?;
    eprintln!(
        "logged in to {addr} as {}: session {:?}, next sequence {}",
        login.username, accepted.session, accepted.sequence
    );
    Ok(client)
}

/// Writes one line per message to standard output.
#[derive(Debug, Clone, Copy)]
struct Printer {
    json: bool,
}

impl Printer {
    fn ouch(self, sequence: u64, message: &Outbound) -> io::Result<()> {
        let line = if self.json {
            with_sequence(sequence, outbound_json(message)).to_string()
        } else {
            format!("seq={sequence} {}", describe_outbound(message))
        };
        writeln!(io::stdout().lock(), "{line}")
    }

    fn funding(self, sequence: u64, reply: &funding::Reply) -> io::Result<()> {
        let line = if self.json {
            with_sequence(sequence, reply_json(reply)).to_string()
        } else {
            format!("seq={sequence} {}", describe_reply(reply))
        };
        writeln!(io::stdout().lock(), "{line}")
    }

    fn end_of_session(self) -> io::Result<()> {
        let line = if self.json {
            json!({"type": "EndOfSession"}).to_string()
        } else {
            "EndOfSession".to_owned()
        };
        writeln!(io::stdout().lock(), "{line}")
    }
}

fn with_sequence(sequence: u64, mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.insert("seq".to_owned(), json!(sequence));
    }
    value
}

/// `SellShortExempt` → `sell-short-exempt`: the text form of a code enum.
fn kebab(debug: impl std::fmt::Debug) -> String {
    let name = format!("{debug:?}");
    let mut out = String::with_capacity(name.len() + 4);
    for (index, character) in name.chars().enumerate() {
        if character.is_ascii_uppercase() {
            if index > 0 {
                out.push('-');
            }
            out.push(character.to_ascii_lowercase());
        } else {
            out.push(character);
        }
    }
    out
}

fn side_text(side: ouch::Side) -> String {
    kebab(side)
}

/// The time in force as `--tif` names it (fok is IOC with Min Qty = qty).
fn tif_text(tif: ouch::TimeInForce, quantity: u32, options: &ouch::Options) -> String {
    match tif {
        ouch::TimeInForce::Day => "day".to_owned(),
        ouch::TimeInForce::ImmediateOrCancel if options.min_quantity == Some(quantity) => {
            "fok".to_owned()
        }
        ouch::TimeInForce::ImmediateOrCancel => "ioc".to_owned(),
        ouch::TimeInForce::GoodTillExtendedHours => "gtc".to_owned(),
        ouch::TimeInForce::GoodTillTime => "gtt".to_owned(),
        ouch::TimeInForce::AfterHours => "after-hours".to_owned(),
    }
}

fn reject_reason_text(reason: ouch::RejectReason) -> String {
    use ouch::RejectReason as R;
    let known = [
        (R::TEST, "test mode"),
        (R::LATE_LOC_TOO_AGGRESSIVE, "late LOC too aggressive"),
        (R::RETAIL_NOT_ALLOWED, "retail not allowed"),
        (
            R::INVALID_MIDPOINT_POST_ONLY_PRICE,
            "invalid midpoint post-only price",
        ),
        (R::INVALID_DESTINATION, "invalid destination"),
        (R::INVALID_PRICE, "invalid price"),
        (R::SHARES_EXCEED_THRESHOLD, "shares exceed threshold"),
        (
            R::EXCEEDS_MAXIMUM_NOTIONAL_VALUE,
            "exceeds maximum notional value",
        ),
        (
            R::RISK_AGGREGATE_EXPOSURE_EXCEEDED,
            "risk: aggregate exposure exceeded",
        ),
        (R::RISK_RESTRICTED_STOCK, "risk: restricted stock"),
        (R::RISK_FAT_FINGER, "risk: fat finger"),
        (R::RISK_PORT_MESSAGE_RATE, "risk: port message rate"),
        (
            R::RISK_SHORT_SELL_NOT_ALLOWED,
            "risk: short sell not allowed",
        ),
        (
            R::RISK_MARKET_ORDER_NOT_ALLOWED,
            "risk: market order not allowed",
        ),
        (
            R::RISK_SINGLE_ORDER_NOTIONAL_EXCEEDED,
            "risk: single order notional exceeded",
        ),
        (R::RISK_MAX_QUANTITY_EXCEEDED, "risk: max quantity exceeded"),
    ];
    let code = format!("0x{:04x}", reason.code());
    match known.iter().find(|(known, _)| *known == reason) {
        Some((_, name)) => format!("{code} ({name})"),
        None => code,
    }
}

/// One line of text for a message, without its sequence number.
fn describe_outbound(message: &Outbound) -> String {
    match message {
        Outbound::SystemEvent(m) => format!("SystemEvent event={}", kebab(m.event_code)),
        Outbound::OrderAccepted(m) => format!(
            "OrderAccepted urn={} {} {} {} @{} ref={} state={} tif={}{}",
            m.user_ref_num,
            side_text(m.side),
            m.quantity,
            m.symbol.trimmed(),
            format_price(m.price),
            m.order_reference_number,
            kebab(m.order_state),
            tif_text(m.time_in_force, m.quantity, &m.options),
            post_only_text(&m.options),
        ),
        Outbound::OrderReplaced(m) => format!(
            "OrderReplaced urn={} orig={} {} {} {} @{} ref={} state={} tif={}{}",
            m.user_ref_num,
            m.original_user_ref_num,
            side_text(m.side),
            m.quantity,
            m.symbol.trimmed(),
            format_price(m.price),
            m.order_reference_number,
            kebab(m.order_state),
            tif_text(m.time_in_force, m.quantity, &m.options),
            post_only_text(&m.options),
        ),
        Outbound::OrderCanceled(m) => format!(
            "OrderCanceled urn={} qty={} reason={}",
            m.user_ref_num,
            m.quantity,
            kebab(m.reason)
        ),
        Outbound::AiqCanceled(m) => format!(
            "AiqCanceled urn={} qty={} reason={} prevented={} @{} liquidity={}",
            m.user_ref_num,
            m.decrement_shares,
            kebab(m.reason),
            m.quantity_prevented_from_trading,
            format_price(m.execution_price),
            char::from(m.liquidity_flag.byte()),
        ),
        Outbound::OrderExecuted(m) => format!(
            "OrderExecuted urn={} qty={} @{} match={} liquidity={}",
            m.user_ref_num,
            m.quantity,
            format_price(m.price),
            m.match_number,
            char::from(m.liquidity_flag.byte()),
        ),
        Outbound::BrokenTrade(m) => format!(
            "BrokenTrade urn={} match={} reason={}",
            m.user_ref_num,
            m.match_number,
            kebab(m.reason)
        ),
        Outbound::OrderRejected(m) => format!(
            "OrderRejected urn={} reason={}",
            m.user_ref_num,
            reject_reason_text(m.reason)
        ),
        Outbound::CancelPending(m) => format!("CancelPending urn={}", m.user_ref_num),
        Outbound::CancelReject(m) => format!("CancelReject urn={}", m.user_ref_num),
        Outbound::OrderPriorityUpdate(m) => format!(
            "OrderPriorityUpdate urn={} @{} ref={}",
            m.user_ref_num,
            format_price(m.price),
            m.order_reference_number
        ),
        Outbound::OrderModified(m) => format!(
            "OrderModified urn={} {} {}",
            m.user_ref_num,
            side_text(m.side),
            m.quantity
        ),
        Outbound::OrderRestated(m) => format!(
            "OrderRestated urn={} reason={}",
            m.user_ref_num,
            kebab(m.reason)
        ),
        Outbound::MassCancelResponse(m) => format!(
            "MassCancelResponse urn={} firm={:?} symbol={:?}",
            m.user_ref_num,
            m.firm.trimmed(),
            m.symbol.trimmed()
        ),
        Outbound::AccountQueryResponse(m) => {
            format!("AccountQueryResponse next_urn={}", m.next_user_ref_num)
        }
    }
}

fn post_only_text(options: &ouch::Options) -> &'static str {
    match options.post_only {
        Some(ouch::PostOnly::PostOnly) => " post-only",
        _ => "",
    }
}

/// One JSON object for a message (without `seq`).
fn outbound_json(message: &Outbound) -> Value {
    match message {
        Outbound::SystemEvent(m) => json!({
            "type": "SystemEvent", "timestamp_ns": m.timestamp_ns,
            "event": kebab(m.event_code),
        }),
        Outbound::OrderAccepted(m) => json!({
            "type": "OrderAccepted", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "side": side_text(m.side), "qty": m.quantity,
            "symbol": m.symbol.trimmed(), "price": format_price(m.price),
            "tif": tif_text(m.time_in_force, m.quantity, &m.options),
            "post_only": m.options.post_only == Some(ouch::PostOnly::PostOnly),
            "ref": m.order_reference_number, "state": kebab(m.order_state),
            "clordid": m.client_order_id.trimmed(),
        }),
        Outbound::OrderReplaced(m) => json!({
            "type": "OrderReplaced", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "orig_urn": m.original_user_ref_num,
            "side": side_text(m.side), "qty": m.quantity,
            "symbol": m.symbol.trimmed(), "price": format_price(m.price),
            "tif": tif_text(m.time_in_force, m.quantity, &m.options),
            "post_only": m.options.post_only == Some(ouch::PostOnly::PostOnly),
            "ref": m.order_reference_number, "state": kebab(m.order_state),
            "clordid": m.client_order_id.trimmed(),
        }),
        Outbound::OrderCanceled(m) => json!({
            "type": "OrderCanceled", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "qty": m.quantity, "reason": kebab(m.reason),
        }),
        Outbound::AiqCanceled(m) => json!({
            "type": "AiqCanceled", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "qty": m.decrement_shares, "reason": kebab(m.reason),
            "prevented": m.quantity_prevented_from_trading,
            "price": format_price(m.execution_price),
            "liquidity": char::from(m.liquidity_flag.byte()).to_string(),
        }),
        Outbound::OrderExecuted(m) => json!({
            "type": "OrderExecuted", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "qty": m.quantity, "price": format_price(m.price),
            "match": m.match_number,
            "liquidity": char::from(m.liquidity_flag.byte()).to_string(),
        }),
        Outbound::BrokenTrade(m) => json!({
            "type": "BrokenTrade", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "match": m.match_number, "reason": kebab(m.reason),
        }),
        Outbound::OrderRejected(m) => json!({
            "type": "OrderRejected", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "reason": m.reason.code(),
            "reason_text": reject_reason_text(m.reason),
        }),
        Outbound::CancelPending(m) => json!({
            "type": "CancelPending", "timestamp_ns": m.timestamp_ns, "urn": m.user_ref_num,
        }),
        Outbound::CancelReject(m) => json!({
            "type": "CancelReject", "timestamp_ns": m.timestamp_ns, "urn": m.user_ref_num,
        }),
        Outbound::OrderPriorityUpdate(m) => json!({
            "type": "OrderPriorityUpdate", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "price": format_price(m.price),
            "ref": m.order_reference_number,
        }),
        Outbound::OrderModified(m) => json!({
            "type": "OrderModified", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "side": side_text(m.side), "qty": m.quantity,
        }),
        Outbound::OrderRestated(m) => json!({
            "type": "OrderRestated", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "reason": kebab(m.reason),
        }),
        Outbound::MassCancelResponse(m) => json!({
            "type": "MassCancelResponse", "timestamp_ns": m.timestamp_ns,
            "urn": m.user_ref_num, "firm": m.firm.trimmed(), "symbol": m.symbol.trimmed(),
        }),
        Outbound::AccountQueryResponse(m) => json!({
            "type": "AccountQueryResponse", "timestamp_ns": m.timestamp_ns,
            "next_urn": m.next_user_ref_num,
        }),
    }
}

fn describe_reply(reply: &funding::Reply) -> String {
    let repeat = |repeat: bool| if repeat { " repeat" } else { "" };
    match reply {
        funding::Reply::Applied(m) => {
            let to = if m.kind == funding::FundingKind::Transfer {
                format!(" to={}", m.to)
            } else {
                String::new()
            };
            format!(
                "FundingApplied {} id={} account={}{to} asset={} amount={}{}",
                kebab(m.kind),
                m.transfer_id,
                m.account,
                m.asset,
                m.amount,
                repeat(m.repeat)
            )
        }
        funding::Reply::Rejected(m) => format!(
            "FundingRejected {} id={} account={} reason={}{}",
            kebab(m.kind),
            m.transfer_id,
            m.account,
            m.reason,
            repeat(m.repeat)
        ),
        funding::Reply::BalanceReport(m) => {
            let mut line = format!(
                "BalanceReport account={} status={}",
                m.account,
                if m.suspended { "suspended" } else { "active" }
            );
            for balance in &m.balances {
                line.push_str(&format!(
                    " [asset={} available={} held={}]",
                    balance.asset, balance.available, balance.held
                ));
            }
            line
        }
    }
}

fn reply_json(reply: &funding::Reply) -> Value {
    match reply {
        funding::Reply::Applied(m) => json!({
            "type": "FundingApplied", "timestamp_ns": m.timestamp_ns,
            "kind": kebab(m.kind), "transfer_id": m.transfer_id, "repeat": m.repeat,
            "account": m.account, "to": m.to, "asset": m.asset, "amount": m.amount,
        }),
        funding::Reply::Rejected(m) => json!({
            "type": "FundingRejected", "timestamp_ns": m.timestamp_ns,
            "kind": kebab(m.kind), "transfer_id": m.transfer_id, "repeat": m.repeat,
            "account": m.account, "reason": m.reason,
        }),
        funding::Reply::BalanceReport(m) => json!({
            "type": "BalanceReport", "timestamp_ns": m.timestamp_ns,
            "account": m.account,
            "status": if m.suspended { "suspended" } else { "active" },
            "balances": m.balances.iter().map(|balance| json!({
                "asset": balance.asset, "available": balance.available, "held": balance.held,
            })).collect::<Vec<_>>(),
        }),
    }
}

// ---------------------------------------------------------------------------
// Order entry
// ---------------------------------------------------------------------------

/// Whether a message is the reply to the request sent, and if so whether
/// it is a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Rejected,
}

impl Verdict {
    fn exit_code(self) -> ExitCode {
        match self {
            Verdict::Accepted => ExitCode::SUCCESS,
            Verdict::Rejected => ExitCode::from(2),
        }
    }
}

fn enter_order(args: &EnterArgs, user_ref_num: u32) -> anyhow::Result<ouch::EnterOrder> {
    let symbol = ouch::Symbol::new(&args.symbol)
        .filter(|symbol| !symbol.trimmed().is_empty())
        .with_context(|| {
            format!(
                "`{}` is not a symbol: 1 to 8 printable ASCII characters",
                args.symbol
            )
        })?;
    Ok(ouch::EnterOrder {
        user_ref_num,
        side: args.side.ouch(),
        quantity: args.qty,
        symbol,
        price: args.price,
        time_in_force: args.tif.ouch(),
        display: ouch::Display::Visible,
        capacity: ouch::Capacity::Agency,
        intermarket_sweep: ouch::IntermarketSweep::NotEligible,
        cross_type: ouch::CrossType::ContinuousMarket,
        client_order_id: ouch::ClOrdId::BLANK,
        options: args.tif.options(args.qty, args.post_only),
    })
}

fn replace_order(
    original_user_ref_num: u32,
    user_ref_num: u32,
    quantity: u32,
    price: Price,
    tif: TifArg,
    post_only: bool,
) -> ouch::ReplaceOrder {
    ouch::ReplaceOrder {
        original_user_ref_num,
        user_ref_num,
        quantity,
        price,
        time_in_force: tif.ouch(),
        display: ouch::Display::Visible,
        intermarket_sweep: ouch::IntermarketSweep::NotEligible,
        client_order_id: ouch::ClOrdId::BLANK,
        options: tif.options(quantity, post_only),
    }
}

/// The reply that settles an Enter Order for `urn`.
fn enter_verdict(urn: u32) -> impl Fn(&Outbound) -> Option<Verdict> {
    move |message| match message {
        Outbound::OrderAccepted(m) if m.user_ref_num == urn => Some(Verdict::Accepted),
        Outbound::OrderRejected(m) if m.user_ref_num == urn => Some(Verdict::Rejected),
        _ => None,
    }
}

/// The reply that settles a Replace Order of `original` by `urn`.
fn replace_verdict(original: u32, urn: u32) -> impl Fn(&Outbound) -> Option<Verdict> {
    move |message| match message {
        Outbound::OrderReplaced(m) if m.user_ref_num == urn => Some(Verdict::Accepted),
        Outbound::OrderRejected(m) if m.user_ref_num == urn || m.user_ref_num == original => {
            Some(Verdict::Rejected)
        }
        Outbound::CancelReject(m) if m.user_ref_num == original => Some(Verdict::Rejected),
        _ => None,
    }
}

/// The reply that settles a Cancel Order of `urn`.
fn cancel_verdict(urn: u32) -> impl Fn(&Outbound) -> Option<Verdict> {
    move |message| match message {
        Outbound::OrderCanceled(m) if m.user_ref_num == urn => Some(Verdict::Accepted),
        Outbound::CancelPending(m) if m.user_ref_num == urn => Some(Verdict::Accepted),
        Outbound::CancelReject(m) if m.user_ref_num == urn => Some(Verdict::Rejected),
        Outbound::OrderRejected(m) if m.user_ref_num == urn => Some(Verdict::Rejected),
        _ => None,
    }
}

fn query_verdict(message: &Outbound) -> Option<Verdict> {
    matches!(message, Outbound::AccountQueryResponse(_)).then_some(Verdict::Accepted)
}

fn run_order_entry(
    connection: &ConnectionArgs,
    command: ClientCommand,
) -> anyhow::Result<ExitCode> {
    let printer = Printer {
        json: connection.json,
    };
    let linger = Duration::from_millis(connection.wait);
    let mut client = connect_ouch(connection)?;
    let verdict = match command {
        ClientCommand::Enter(args) => {
            let urn = match args.urn {
                Some(urn) => urn,
                None => next_urn(&mut client)?,
            };
            let order = enter_order(&args, urn)?;
            client.enter_order(&order)?;
            eprintln!("sent EnterOrder urn={urn}");
            await_reply(&mut client, printer, linger, enter_verdict(urn))?
        }
        ClientCommand::Replace(args) => {
            let urn = match args.new_urn {
                Some(urn) => urn,
                None => next_urn(&mut client)?,
            };
            let replace = replace_order(
                args.urn,
                urn,
                args.qty,
                args.price,
                args.tif,
                args.post_only,
            );
            client.replace_order(&replace)?;
            eprintln!("sent ReplaceOrder urn={} new_urn={urn}", args.urn);
            await_reply(&mut client, printer, linger, replace_verdict(args.urn, urn))?
        }
        ClientCommand::Cancel(args) => {
            client.cancel_order(&ouch::CancelOrder {
                user_ref_num: args.urn,
                quantity: args.qty,
                options: ouch::Options::NONE,
            })?;
            eprintln!("sent CancelOrder urn={} qty={}", args.urn, args.qty);
            await_reply(&mut client, printer, linger, cancel_verdict(args.urn))?
        }
        ClientCommand::Query => {
            client.account_query()?;
            await_reply(&mut client, printer, linger, query_verdict)?
        }
        ClientCommand::Listen(_) | ClientCommand::Fund(_) | ClientCommand::Shell => {
            unreachable!("dispatched in run")
        }
    };
    client.logout()?;
    Ok(verdict.exit_code())
}

fn next_urn(client: &mut OuchClient) -> anyhow::Result<u32> {
    client
        .next_user_ref_num(REPLY_TIMEOUT)
        .context("asking the server for the next UserRefNum (or pass --urn/--new-urn)")
}

/// Prints every message until `verdict` recognises the reply (within
/// [`REPLY_TIMEOUT`]) and for `linger` after it.
fn await_reply(
    client: &mut OuchClient,
    printer: Printer,
    linger: Duration,
    verdict: impl Fn(&Outbound) -> Option<Verdict>,
) -> anyhow::Result<Verdict> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let result = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Some((sequence, message)) = client.next_message(remaining)? else {
            bail!("no reply within {} s", REPLY_TIMEOUT.as_secs());
        };
        printer.ouch(sequence, &message)?;
        if let Some(result) = verdict(&message) {
            break result;
        }
    };
    let linger_end = Instant::now() + linger;
    loop {
        let remaining = linger_end.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        match client.next_message(remaining) {
            Ok(Some((sequence, message))) => printer.ouch(sequence, &message)?,
            Ok(None) => break,
            Err(ClientError::EndOfSession) => {
                printer.end_of_session()?;
                break;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(result)
}

fn listen(connection: &ConnectionArgs, args: &ListenArgs) -> anyhow::Result<ExitCode> {
    let printer = Printer {
        json: connection.json,
    };
    let mut client = connect_ouch(connection)?;
    let end = args
        .for_secs
        .map(|secs| Instant::now() + Duration::from_secs(secs));
    let mut printed: u64 = 0;
    loop {
        if args.count.is_some_and(|count| printed >= count) {
            break;
        }
        let wait = match end {
            Some(end) => {
                let remaining = end.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    break;
                }
                remaining.min(Duration::from_secs(1))
            }
            None => Duration::from_secs(1),
        };
        match client.next_message(wait) {
            Ok(Some((sequence, message))) => {
                printer.ouch(sequence, &message)?;
                printed += 1;
            }
            Ok(None) => {}
            Err(ClientError::EndOfSession) => {
                printer.end_of_session()?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(error) => return Err(error.into()),
        }
    }
    client.logout()?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// Shell
// ---------------------------------------------------------------------------

const SHELL_HELP: &str = "\
commands (one per line):
  buy QTY SYMBOL PRICE [day|ioc|gtc|fok] [post-only]   enter a buy order
  sell QTY SYMBOL PRICE [day|ioc|gtc|fok] [post-only]  enter a sell order
  cancel URN [QTY]                  cancel an order (or leave QTY open)
  replace URN NEWURN QTY PRICE      replace an order (day)
  query                             account query (next UserRefNum)
  help                              this text
  quit                              wait --wait ms for replies, log out";

/// One parsed shell line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ShellLine {
    Enter {
        side: SideArg,
        qty: u32,
        symbol: String,
        price: Price,
        tif: TifArg,
        post_only: bool,
    },
    Cancel {
        urn: u32,
        qty: u32,
    },
    Replace {
        urn: u32,
        new_urn: u32,
        qty: u32,
        price: Price,
    },
    Query,
    Help,
    Quit,
    Empty,
}

fn parse_number<T: std::str::FromStr>(word: Option<&str>, what: &str) -> Result<T, String> {
    let word = word.ok_or_else(|| format!("missing {what}"))?;
    word.parse()
        .map_err(|_| format!("`{word}` is not a valid {what}"))
}

fn parse_shell_line(line: &str) -> Result<ShellLine, String> {
    let mut words = line.split_whitespace();
    let Some(command) = words.next() else {
        return Ok(ShellLine::Empty);
    };
    let parsed = match command.to_ascii_lowercase().as_str() {
        side @ ("buy" | "sell") => {
            let side = if side == "buy" {
                SideArg::Buy
            } else {
                SideArg::Sell
            };
            let qty = parse_number(words.next(), "quantity")?;
            let symbol = words.next().ok_or("missing symbol")?.to_owned();
            let price = parse_price(words.next().ok_or("missing price")?)?;
            let mut tif = TifArg::Day;
            let mut post_only = false;
            for word in words.by_ref() {
                match word.to_ascii_lowercase().as_str() {
                    "post-only" | "postonly" | "post" => post_only = true,
                    other => {
                        tif = TifArg::from_str(other, true).map_err(|_| {
                            format!("`{word}` is neither a time in force nor post-only")
                        })?
                    }
                }
            }
            ShellLine::Enter {
                side,
                qty,
                symbol,
                price,
                tif,
                post_only,
            }
        }
        "cancel" => {
            let urn = parse_number(words.next(), "UserRefNum")?;
            let qty = match words.next() {
                Some(word) => parse_number(Some(word), "quantity")?,
                None => 0,
            };
            ShellLine::Cancel { urn, qty }
        }
        "replace" => ShellLine::Replace {
            urn: parse_number(words.next(), "UserRefNum")?,
            new_urn: parse_number(words.next(), "new UserRefNum")?,
            qty: parse_number(words.next(), "quantity")?,
            price: parse_price(words.next().ok_or("missing price")?)?,
        },
        "query" => ShellLine::Query,
        "help" | "?" => ShellLine::Help,
        "quit" | "exit" => ShellLine::Quit,
        other => return Err(format!("unknown command `{other}` (try `help`)")),
    };
    match words.next() {
        Some(extra) => Err(format!("unexpected `{extra}` at the end of the line")),
        None => Ok(parsed),
    }
}

fn shell(connection: &ConnectionArgs) -> anyhow::Result<ExitCode> {
    let printer = Printer {
        json: connection.json,
    };
    let mut client = connect_ouch(connection)?;
    let mut next_urn = next_urn(&mut client)?;
    eprintln!("next UserRefNum {next_urn}; type `help` for the commands");
    // Standard input is read on its own thread so that messages are printed
    // as they arrive, not only between lines; this thread owns the client.
    let (lines_tx, lines_rx) = mpsc::channel::<io::Result<String>>();
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        match client.next_message(SHELL_POLL) {
            Ok(Some((sequence, message))) => printer.ouch(sequence, &message)?,
            Ok(None) => {}
            Err(ClientError::EndOfSession) => {
                printer.end_of_session()?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(error) => return Err(error.into()),
        }
        let line = match lines_rx.try_recv() {
            Ok(line) => line?,
            Err(mpsc::TryRecvError::Empty) => continue,
            Err(mpsc::TryRecvError::Disconnected) => break,
        };
        match parse_shell_line(&line) {
            Ok(ShellLine::Quit) => break,
            Ok(ShellLine::Empty) => {}
            Ok(ShellLine::Help) => eprintln!("{SHELL_HELP}"),
            Ok(parsed) => shell_send(&mut client, parsed, &mut next_urn)?,
            Err(error) => eprintln!("error: {error}"),
        }
    }
    let linger_end = Instant::now() + Duration::from_millis(connection.wait);
    while let Some(remaining) = Some(linger_end.saturating_duration_since(Instant::now()))
        .filter(|remaining| !remaining.is_zero())
    {
        match client.next_message(remaining)? {
            Some((sequence, message)) => printer.ouch(sequence, &message)?,
            None => break,
        }
    }
    client.logout()?;
    Ok(ExitCode::SUCCESS)
}

fn shell_send(client: &mut OuchClient, line: ShellLine, next_urn: &mut u32) -> anyhow::Result<()> {
    match line {
        ShellLine::Enter {
            side,
            qty,
            symbol,
            price,
            tif,
            post_only,
        } => {
            let args = EnterArgs {
                side,
                qty,
                symbol,
                price,
                tif,
                post_only,
                urn: Some(*next_urn),
            };
            let order = match enter_order(&args, *next_urn) {
                Ok(order) => order,
                Err(error) => {
                    eprintln!("error: {error}");
                    return Ok(());
                }
            };
            client.enter_order(&order)?;
            eprintln!("sent EnterOrder urn={}", *next_urn);
            *next_urn = next_urn.saturating_add(1);
        }
        ShellLine::Cancel { urn, qty } => {
            client.cancel_order(&ouch::CancelOrder {
                user_ref_num: urn,
                quantity: qty,
                options: ouch::Options::NONE,
            })?;
            eprintln!("sent CancelOrder urn={urn} qty={qty}");
        }
        ShellLine::Replace {
            urn,
            new_urn,
            qty,
            price,
        } => {
            client.replace_order(&replace_order(urn, new_urn, qty, price, TifArg::Day, false))?;
            eprintln!("sent ReplaceOrder urn={urn} new_urn={new_urn}");
            *next_urn = (*next_urn).max(new_urn.saturating_add(1));
        }
        ShellLine::Query => {
            client.account_query()?;
            eprintln!("sent AccountQuery");
        }
        ShellLine::Help | ShellLine::Quit | ShellLine::Empty => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Funding
// ---------------------------------------------------------------------------

fn run_fund(connection: &ConnectionArgs, command: FundCommand) -> anyhow::Result<ExitCode> {
    let printer = Printer {
        json: connection.json,
    };
    let mut client = connect_funding(connection)?;
    let (transfer_id, account) = match command {
        FundCommand::Deposit(args) => {
            client.deposit(funding(&args))?;
            (Some(args.transfer_id), args.account)
        }
        FundCommand::Withdraw(args) => {
            client.withdraw(funding(&args))?;
            (Some(args.transfer_id), args.account)
        }
        FundCommand::Transfer(args) => {
            client.transfer(funding::TransferRequest {
                transfer_id: args.transfer_id,
                from: args.from,
                to: args.to,
                asset: args.asset,
                amount: args.amount,
            })?;
            (Some(args.transfer_id), args.from)
        }
        FundCommand::Balance { account } => {
            client.balance_query(account)?;
            (None, account)
        }
    };
    let verdict = move |reply: &funding::Reply| match (reply, transfer_id) {
        (funding::Reply::Applied(m), Some(id)) if m.transfer_id == id && m.account == account => {
            Some(Verdict::Accepted)
        }
        (funding::Reply::Rejected(m), Some(id)) if m.transfer_id == id && m.account == account => {
            Some(Verdict::Rejected)
        }
        (funding::Reply::BalanceReport(m), None) if m.account == account => Some(Verdict::Accepted),
        _ => None,
    };
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let result = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Some((sequence, reply)) = client.next_reply(remaining)? else {
            bail!("no reply within {} s", REPLY_TIMEOUT.as_secs());
        };
        printer.funding(sequence, &reply)?;
        if let Some(result) = verdict(&reply) {
            break result;
        }
    };
    let linger_end = Instant::now() + Duration::from_millis(connection.wait);
    loop {
        let remaining = linger_end.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        match client.next_reply(remaining) {
            Ok(Some((sequence, reply))) => printer.funding(sequence, &reply)?,
            Ok(None) => break,
            Err(ClientError::EndOfSession) => {
                printer.end_of_session()?;
                return Ok(result.exit_code());
            }
            Err(error) => return Err(error.into()),
        }
    }
    client.logout()?;
    Ok(result.exit_code())
}

fn funding(args: &FundingArgs) -> funding::Funding {
    funding::Funding {
        transfer_id: args.transfer_id,
        account: args.account,
        asset: args.asset,
        amount: args.amount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn prices_parse_exactly_with_at_most_four_decimals() {
        let cases = [
            ("100", 1_000_000),
            ("100.0000", 1_000_000),
            ("100.5", 1_005_000),
            ("100.25", 1_002_500),
            ("1.1000", 11_000),
            ("0.0001", 1),
            (".5", 5_000),
            ("7.", 70_000),
            ("0", 0),
            ("922337203685477.5807", i64::MAX),
        ];
        for (text, units) in cases {
            assert_eq!(parse_price(text), Ok(Price(units)), "{text}");
        }
        for text in [
            "",
            ".",
            "100.00001",
            "-1",
            "+1",
            "1e2",
            "1.2.3",
            " 1",
            "1,5",
            "922337203685477.5808",
            "99999999999999999999",
        ] {
            assert!(parse_price(text).is_err(), "{text}");
        }
        assert!(parse_price("1.23456").unwrap_err().contains("4 decimal"));
    }

    #[test]
    fn prices_format_with_four_decimals_and_round_trip() {
        assert_eq!(format_price(Price(1_000_000)), "100.0000");
        assert_eq!(format_price(Price(11_000)), "1.1000");
        assert_eq!(format_price(Price(1)), "0.0001");
        assert_eq!(format_price(Price(-15_000)), "-1.5000");
        assert_eq!(format_price(Price(i64::MIN)), "-922337203685477.5808");
        for units in [0, 1, 99, 10_000, 1_234_567, i64::MAX] {
            assert_eq!(parse_price(&format_price(Price(units))), Ok(Price(units)));
        }
    }

    #[test]
    fn the_human_line_has_the_documented_shape() {
        let accepted = Outbound::OrderAccepted(ouch::OrderAccepted {
            timestamp_ns: 1,
            user_ref_num: 1,
            side: ouch::Side::Buy,
            quantity: 10,
            symbol: ouch::Symbol::new("ACME").unwrap(),
            price: Price(1_000_000),
            time_in_force: ouch::TimeInForce::Day,
            display: ouch::Display::Visible,
            order_reference_number: 17,
            capacity: ouch::Capacity::Agency,
            intermarket_sweep: ouch::IntermarketSweep::NotEligible,
            cross_type: ouch::CrossType::ContinuousMarket,
            order_state: ouch::OrderState::Live,
            client_order_id: ouch::ClOrdId::BLANK,
            options: ouch::Options::NONE,
        });
        assert_eq!(
            describe_outbound(&accepted),
            "OrderAccepted urn=1 buy 10 ACME @100.0000 ref=17 state=live tif=day"
        );
        let value = with_sequence(3, outbound_json(&accepted));
        assert_eq!(value["seq"], 3);
        assert_eq!(value["price"], "100.0000");
        assert_eq!(value["side"], "buy");
        assert_eq!(kebab(ouch::Side::SellShortExempt), "sell-short-exempt");
        let rejected = Outbound::OrderRejected(ouch::OrderRejected {
            timestamp_ns: 1,
            user_ref_num: 2,
            reason: ouch::RejectReason::INVALID_PRICE,
            client_order_id: ouch::ClOrdId::BLANK,
            options: ouch::Options::NONE,
        });
        assert_eq!(
            describe_outbound(&rejected),
            "OrderRejected urn=2 reason=0x001d (invalid price)"
        );
    }

    #[test]
    fn tif_maps_to_ouch_as_documented() {
        assert_eq!(TifArg::Gtc.ouch(), ouch::TimeInForce::GoodTillExtendedHours);
        assert_eq!(TifArg::Fok.ouch(), ouch::TimeInForce::ImmediateOrCancel);
        assert_eq!(TifArg::Fok.options(7, false).min_quantity, Some(7));
        assert_eq!(TifArg::Ioc.options(7, true).min_quantity, None);
        let options = TifArg::Fok.options(7, false);
        assert_eq!(
            tif_text(ouch::TimeInForce::ImmediateOrCancel, 7, &options),
            "fok"
        );
    }

    #[test]
    fn shell_lines_parse() {
        assert_eq!(
            parse_shell_line("buy 10 ACME 100.0000 day"),
            Ok(ShellLine::Enter {
                side: SideArg::Buy,
                qty: 10,
                symbol: "ACME".to_owned(),
                price: Price(1_000_000),
                tif: TifArg::Day,
                post_only: false,
            })
        );
        assert_eq!(
            parse_shell_line("  SELL 5 GLOBEX 50.01 gtc post-only "),
            Ok(ShellLine::Enter {
                side: SideArg::Sell,
                qty: 5,
                symbol: "GLOBEX".to_owned(),
                price: Price(500_100),
                tif: TifArg::Gtc,
                post_only: true,
            })
        );
        assert_eq!(
            parse_shell_line("cancel 3"),
            Ok(ShellLine::Cancel { urn: 3, qty: 0 })
        );
        assert_eq!(
            parse_shell_line("cancel 3 4"),
            Ok(ShellLine::Cancel { urn: 3, qty: 4 })
        );
        assert_eq!(
            parse_shell_line("replace 3 4 20 99.5"),
            Ok(ShellLine::Replace {
                urn: 3,
                new_urn: 4,
                qty: 20,
                price: Price(995_000),
            })
        );
        assert_eq!(parse_shell_line("query"), Ok(ShellLine::Query));
        assert_eq!(parse_shell_line("quit"), Ok(ShellLine::Quit));
        assert_eq!(parse_shell_line(""), Ok(ShellLine::Empty));
        for bad in [
            "buy",
            "buy ten ACME 1",
            "buy 1 ACME 1.00001",
            "buy 1 ACME 1 forever",
            "cancel",
            "cancel 1 2 3",
            "replace 1 2 3",
            "frobnicate",
        ] {
            assert!(parse_shell_line(bad).is_err(), "{bad}");
        }
    }

    /// The subcommand as `exchange client` parses it.
    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        client: ClientArgs,
    }

    #[test]
    fn the_command_line_parses_and_checks_prices() {
        let harness = Harness::try_parse_from([
            "client", "enter", "--side", "sell", "--qty", "3", "--symbol", "ACME", "--price",
            "101.5", "--tif", "fok", "--login", "DEMO2", "--json",
        ])
        .unwrap();
        assert_eq!(harness.client.connection.login.as_deref(), Some("DEMO2"));
        assert!(harness.client.connection.json);
        assert_eq!(harness.client.connection.wait, 500);
        let ClientCommand::Enter(enter) = harness.client.command else {
            panic!("expected enter");
        };
        assert_eq!(enter.price, Price(1_015_000));
        assert_eq!(enter.tif, TifArg::Fok);
        assert_eq!(enter.urn, None);
        assert!(
            Harness::try_parse_from([
                "client", "enter", "--side", "buy", "--qty", "1", "--symbol", "ACME", "--price",
                "1.00001",
            ])
            .is_err()
        );
        let harness = Harness::try_parse_from([
            "client",
            "fund",
            "transfer",
            "--from",
            "1",
            "--to",
            "2",
            "--asset",
            "3",
            "--amount",
            "4",
            "--transfer-id",
            "5",
        ])
        .unwrap();
        assert!(matches!(
            harness.client.command,
            ClientCommand::Fund(FundCommand::Transfer(_))
        ));
        let harness =
            Harness::try_parse_from(["client", "listen", "--for", "3", "--count", "2"]).unwrap();
        let ClientCommand::Listen(listen) = harness.client.command else {
            panic!("expected listen");
        };
        assert_eq!((listen.count, listen.for_secs), (Some(2), Some(3)));
    }

    #[test]
    fn default_password_is_the_lower_case_login() {
        let harness = Harness::try_parse_from(["client", "--login", "DEMO3", "query"]).unwrap();
        let login = login_params(&harness.client.connection, "DEMO1");
        assert_eq!(login.username, "DEMO3");
        assert_eq!(login.password, "demo3");
        let harness =
            Harness::try_parse_from(["client", "fund", "balance", "--account", "1"]).unwrap();
        let login = login_params(&harness.client.connection, "OPER1");
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("OPER1", "oper1")
        );
    }

    /// A one-connection fake order-entry server: answers the Account Query
    /// with UserRefNum 5, accepts the order and fills it, then expects a
    /// Logout Request. Returns the order it received.
    fn fake_order_entry_server() -> (String, thread::JoinHandle<ouch::EnterOrder>) {
        use std::io::Read;
        use std::net::TcpListener;
        use wire::soupbin::{ClientPacket, FrameDecoder, ServerPacket, alpha_right_justified};

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut decoder = FrameDecoder::new(1024);
            let mut next_payload = |stream: &mut std::net::TcpStream| -> Option<Vec<u8>> {
                loop {
                    match decoder.next_client_packet().unwrap() {
                        Some(ClientPacket::UnsequencedData(payload)) => {
                            return Some(payload.to_vec());
                        }
                        Some(ClientPacket::LogoutRequest) => return None,
                        Some(_) => continue,
                        None => {}
                    }
                    let mut chunk = [0u8; 1024];
                    let read = stream.read(&mut chunk).unwrap();
                    assert!(read > 0, "the client closed before logging out");
                    decoder.feed(&chunk[..read]);
                }
            };
            let send = |stream: &mut std::net::TcpStream, packet: ServerPacket<'_>| {
                let mut bytes = Vec::new();
                packet.encode(&mut bytes).unwrap();
                stream.write_all(&bytes).unwrap();
            };
            // Accept any login; next_payload skips the Login Request.
            send(
                &mut stream,
                ServerPacket::LoginAccepted {
                    session: alpha_right_justified("1").unwrap(),
                    sequence: 1,
                },
            );
            let query = next_payload(&mut stream).expect("an Account Query");
            assert!(matches!(
                ouch::Inbound::decode(&query),
                Ok(ouch::Inbound::AccountQueryRequest(_))
            ));
            let mut bytes = Vec::new();
            Outbound::AccountQueryResponse(ouch::AccountQueryResponse {
                timestamp_ns: 1,
                next_user_ref_num: 5,
                options: ouch::Options::NONE,
            })
            .encode(&mut bytes);
            send(&mut stream, ServerPacket::SequencedData(&bytes));
            let order = next_payload(&mut stream).expect("an Enter Order");
            let Ok(ouch::Inbound::EnterOrder(order)) = ouch::Inbound::decode(&order) else {
                panic!("expected an Enter Order");
            };
            for reply in [
                Outbound::OrderAccepted(ouch::OrderAccepted {
                    timestamp_ns: 2,
                    user_ref_num: order.user_ref_num,
                    side: order.side,
                    quantity: order.quantity,
                    symbol: order.symbol,
                    price: order.price,
                    time_in_force: order.time_in_force,
                    display: order.display,
                    order_reference_number: 17,
                    capacity: order.capacity,
                    intermarket_sweep: order.intermarket_sweep,
                    cross_type: order.cross_type,
                    order_state: ouch::OrderState::Dead,
                    client_order_id: order.client_order_id,
                    options: order.options,
                }),
                Outbound::OrderExecuted(ouch::OrderExecuted {
                    timestamp_ns: 3,
                    user_ref_num: order.user_ref_num,
                    quantity: order.quantity,
                    price: order.price,
                    liquidity_flag: ouch::Code::new(b'R').unwrap(),
                    match_number: 9,
                    options: ouch::Options::NONE,
                }),
            ] {
                bytes.clear();
                reply.encode(&mut bytes);
                send(&mut stream, ServerPacket::SequencedData(&bytes));
            }
            assert_eq!(next_payload(&mut stream), None, "expected a Logout Request");
            order
        });
        (addr, handle)
    }

    #[test]
    fn enter_asks_for_the_user_ref_num_sends_the_order_and_waits_for_the_reply() {
        let (addr, server) = fake_order_entry_server();
        let harness = Harness::try_parse_from([
            "client",
            "--addr",
            &addr,
            "--wait",
            "100",
            "enter",
            "--side",
            "buy",
            "--qty",
            "10",
            "--symbol",
            "ACME",
            "--price",
            "100.25",
            "--tif",
            "fok",
            "--post-only",
        ])
        .unwrap();
        let exit_code = run(harness.client).unwrap();
        assert_eq!(exit_code, ExitCode::SUCCESS);
        let order = server.join().unwrap();
        assert_eq!(order.user_ref_num, 5);
        assert_eq!(order.side, ouch::Side::Buy);
        assert_eq!(order.quantity, 10);
        assert_eq!(order.symbol.trimmed(), "ACME");
        assert_eq!(order.price, Price(1_002_500));
        assert_eq!(order.time_in_force, ouch::TimeInForce::ImmediateOrCancel);
        assert_eq!(order.options.min_quantity, Some(10));
        assert_eq!(order.options.post_only, Some(ouch::PostOnly::PostOnly));
    }
}
