//! The market-data feed against the engine: every seeded command stream of
//! the engine-versus-reference test is applied to an engine, its events
//! become ITCH 5.0 messages (`marketdata::feed`), each message goes through
//! the codec's bytes, and a subscriber's books (`marketdata::book`) built
//! from them must equal the engine's books — order by order, in time
//! priority, on every instrument — at several points of the stream. A late
//! joiner that starts from the feed's snapshot midway and applies the rest
//! of the stream must end with the same books.
//!
//! LONG MODE: `FEED_SIM_CASES=20000 FEED_SIM_SEED=random cargo test -p tests
//! --test feed_vs_engine -- --nocapture`; a failure prints the line that
//! reproduces it.

use engine::{CommandHeader, Engine};
use marketdata::book::Books;
use marketdata::feed::Feed;
use marketdata::itch::{Message, Timestamp};
use tests::{
    CommandGenerator, ReferenceModel, environment_number, environment_seed, run_seeds,
    stream_length,
};

/// Every book of the engine equals the subscriber's (see
/// `tests::compare_books`); counts the orders compared.
fn compare(engine: &Engine, books: &Books, when: &str) -> Result<usize, String> {
    let (instruments, orders) = tests::compare_books(engine, books, when)?;
    ORDERS_COMPARED.fetch_add(orders, std::sync::atomic::Ordering::Relaxed);
    Ok(instruments)
}

const CASES_DEFAULT: u64 = 500;

/// Resting orders found equal, over every comparison (to print).
static ORDERS_COMPARED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
const COMMANDS_DEFAULT: u64 = 400;

/// Encodes and decodes a message (the subscriber sees bytes) and applies it.
fn deliver(books: &mut Books, message: &Message, bytes: &mut Vec<u8>) -> Result<(), String> {
    bytes.clear();
    message.encode(bytes);
    let decoded =
        Message::decode(bytes).map_err(|error| format!("{message:?} does not decode: {error}"))?;
    if decoded != *message {
        return Err(format!("{message:?} decodes as {decoded:?}"));
    }
    books
        .apply(&decoded)
        .map_err(|error| format!("{message:?} does not apply: {error}"))
}

/// Instruments compared at the end (streams whose instruments all fall
/// outside ITCH's price range compare none).
fn run_case(seed: u64, commands_setting: u64) -> Result<usize, String> {
    let mut generator = CommandGenerator::new(seed);
    let config = generator.config();
    let mut model = ReferenceModel::new(&config);
    let mut engine = Engine::new(config).expect("valid configuration");
    let mut feed = Feed::new();
    let mut books = Books::new();
    let mut late: Option<Books> = None;
    let length = stream_length(seed, commands_setting);
    let join_at = length / 2;
    let (mut events, mut messages, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for applied in 0..length {
        if applied == join_at {
            // A late joiner: the snapshot, then the live stream from here.
            let mut snapshot = Vec::new();
            feed.snapshot(Timestamp::ZERO, &mut snapshot);
            let mut joiner = Books::new();
            for message in &snapshot {
                deliver(&mut joiner, message, &mut bytes)?;
            }
            compare(
                &engine,
                &joiner,
                &format!("snapshot after {applied} commands"),
            )?;
            late = Some(joiner);
        }
        let command = generator.next_command(&model);
        let header = CommandHeader {
            sequence: applied + 1,
            timestamp_ns: 1_700_000_000_000_000_000 + applied * 1_000,
        };
        model.apply(header, &command);
        events.clear();
        engine.apply(header, &command, &mut events);
        messages.clear();
        feed.applied(header, &events, &mut messages);
        for message in &messages {
            deliver(&mut books, message, &mut bytes)
                .map_err(|error| format!("command {} ({command}): {error}", applied + 1))?;
            if let Some(joiner) = late.as_mut() {
                deliver(joiner, message, &mut bytes).map_err(|error| {
                    format!("late joiner, command {} ({command}): {error}", applied + 1)
                })?;
            }
        }
        if applied % 50 == 49 {
            compare(&engine, &books, &format!("after {} commands", applied + 1))?;
        }
    }
    let compared = compare(&engine, &books, "at the end")?;
    if let Some(joiner) = &late {
        compare(&engine, joiner, "late joiner at the end")?;
    }
    Ok(compared)
}

#[test]
fn subscriber_books_equal_the_engine() {
    let cases = environment_number("FEED_SIM_CASES").unwrap_or(CASES_DEFAULT);
    let commands = environment_number("FEED_SIM_COMMANDS").unwrap_or(COMMANDS_DEFAULT);
    let first = environment_seed("FEED_SIM_SEED", 0);
    let (compared, failures): (Vec<usize>, _) =
        run_seeds(cases, first, |seed, compared: &mut usize| {
            *compared += run_case(seed, commands)?;
            Ok::<(), String>(())
        });
    if let Some((seed, error)) = failures.first() {
        panic!(
            "{} of {cases} streams failed; first, seed {seed}: {error}\nreproduce: \
             FEED_SIM_SEED={seed} FEED_SIM_CASES=1 FEED_SIM_COMMANDS={commands} cargo test -p \
             tests --test feed_vs_engine",
            failures.len()
        );
    }
    let instruments: usize = compared.iter().sum();
    println!(
        "{cases} streams, {instruments} instrument books compared at the end, {} resting orders \
         found equal over all comparisons",
        ORDERS_COMPARED.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(
        instruments >= cases as usize / 2,
        "too few instruments within ITCH's price range to mean anything: {instruments}"
    );
}
