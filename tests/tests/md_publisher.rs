//! The market-data publisher's packets against the engine: seeded command
//! streams (end-of-day commands included) go through `Publisher`; a
//! subscriber that sees only the MoldUDP64 packets (sessions, sequence
//! numbers, End of Session) rebuilds books that must equal the engine's at
//! the end of every trading day and at the end. Re-requests answered from
//! the message log must give back exactly the messages sent, capped; late
//! joiners (a snapshot taken along the way, plus the rest of that
//! session's stream from the snapshot's next sequence, up to the session's
//! end) must rebuild the same books.
//!
//! LONG MODE: `MD_PUBLISHER_CASES=5000 MD_PUBLISHER_SEED=random cargo test
//! -p tests --test md_publisher`.

use engine::{AdminCommand, Command, CommandHeader, Engine};
use marketdata::book::Books;
use marketdata::itch::{Message, Timestamp};
use marketdata::moldudp64::{Packet, Request, Session};
use marketdata::publisher::Publisher;
use tests::{
    CommandGenerator, ReferenceModel, SimulationRng, compare_books, environment_number,
    environment_seed, run_seeds, stream_length,
};

const CASES_DEFAULT: u64 = 150;
const COMMANDS_DEFAULT: u64 = 600;

/// A subscriber that reads packets in order and checks their framing.
struct Reader {
    session: Option<Session>,
    next: u64,
    books: Books,
    ended: bool,
    /// Every message of the current session, by sequence (from 1).
    messages: Vec<Vec<u8>>,
    sessions: u64,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            session: None,
            next: 1,
            books: Books::new(),
            ended: false,
            messages: Vec::new(),
            sessions: 0,
        }
    }

    fn packet(&mut self, bytes: &[u8]) -> Result<(), String> {
        let packet = Packet::parse(bytes).map_err(|error| format!("bad packet: {error}"))?;
        let header = *packet.header();
        if self.session != Some(header.session) {
            if self.session.is_some() && !self.ended {
                return Err(format!(
                    "session {:?} began before {:?} ended",
                    header.session.as_str(),
                    self.session.map(|s| s.as_str().to_owned())
                ));
            }
            self.session = Some(header.session);
            self.next = 1;
            self.books.clear();
            self.messages.clear();
            self.ended = false;
            self.sessions += 1;
        }
        if self.ended {
            return Err("a packet after End of Session".to_owned());
        }
        if header.is_end_of_session() {
            self.ended = true;
            if header.sequence != self.next {
                return Err(format!(
                    "End of Session says next {}, expected {}",
                    header.sequence, self.next
                ));
            }
            return Ok(());
        }
        if header.sequence != self.next {
            return Err(format!(
                "packet starts at {}, expected {}",
                header.sequence, self.next
            ));
        }
        for (_, block) in packet.messages() {
            let message = Message::decode(block)
                .map_err(|error| format!("message {}: {error}", self.next))?;
            if self.next == 1
                && !matches!(&message, Message::SystemEvent(event) if event.event_code.byte() == b'O')
            {
                return Err(format!("the first message of a session is {message:?}"));
            }
            self.books
                .apply(&message)
                .map_err(|error| format!("message {} ({message:?}): {error}", self.next))?;
            self.messages.push(block.to_vec());
            self.next += 1;
        }
        Ok(())
    }
}

/// Messages published and sessions read, over all streams.
#[derive(Default)]
struct Totals {
    messages: u64,
    sessions: u64,
    /// Late joiners that continued to the end of their session.
    joined: u64,
}

fn run_case(seed: u64, commands_setting: u64, totals: &mut Totals) -> Result<(), String> {
    let mut generator = CommandGenerator::new(seed);
    let config = generator.config();
    let mut model = ReferenceModel::new(&config);
    let mut engine = Engine::new(config).expect("valid configuration");
    let mut rng = SimulationRng::new(seed ^ 0x6d64_7075_626c);
    // Small packets now and then, so that messages split across many.
    let payload_max = if rng.chance(30) { 80 } else { 1472 };
    let mut publisher = Publisher::new(payload_max).map_err(|error| error.to_string())?;
    let mut reader = Reader::new();
    let mut events = Vec::new();
    let mut joiner = None;
    let length = stream_length(seed, commands_setting);
    for applied in 0..length {
        let command = generator.next_command(&model);
        let header = CommandHeader {
            sequence: applied + 1,
            timestamp_ns: 1_795_369_545_000_000_000 + applied * 1_000,
        };
        model.apply(header, &command);
        events.clear();
        if matches!(command, Command::Admin(AdminCommand::EndOfDay))
            && let Some(joiner) = joiner.take()
        {
            // The joiner's session is about to end: it must have caught up.
            totals.joined += u64::from(continue_joiner(joiner, &publisher, &engine)?);
        }
        engine.apply(header, &command, &mut events);
        let mut packets: Vec<Vec<u8>> = Vec::new();
        let mut send = |packet: &[u8]| packets.push(packet.to_vec());
        publisher.applied(header, &command, &events, &mut send);
        let end_of_day = matches!(command, Command::Admin(AdminCommand::EndOfDay));
        if end_of_day || rng.chance(40) {
            // After an end of day, the next day's session alone rebuilds
            // the books (its snapshot preamble is in the packet in
            // progress).
            publisher.flush(&mut send);
        }
        for packet in &packets {
            reader
                .packet(packet)
                .map_err(|error| format!("command {} ({command}): {error}", applied + 1))?;
        }
        if end_of_day {
            compare_books(
                &engine,
                &reader.books,
                &format!("after end of day {}", applied + 1),
            )?;
        }
        if applied == length / 2 {
            check_rerequests(&publisher, &mut rng, &mut reader)?;
        }
        if joiner.is_none() && applied % 23 == 11 {
            joiner = Some(check_snapshot(&publisher, &engine)?);
        }
    }
    let mut packets: Vec<Vec<u8>> = Vec::new();
    publisher.flush(&mut |packet| packets.push(packet.to_vec()));
    for packet in &packets {
        reader.packet(packet)?;
    }
    compare_books(&engine, &reader.books, "at the end")?;
    if let Some(joiner) = joiner {
        totals.joined += u64::from(continue_joiner(joiner, &publisher, &engine)?);
    }
    if reader.next != publisher.next_sequence() {
        return Err(format!(
            "the reader is at {}, the publisher at {}",
            reader.next,
            publisher.next_sequence()
        ));
    }
    if reader.sessions != publisher.day() + 1 {
        return Err(format!(
            "{} sessions read, {} days",
            reader.sessions,
            publisher.day() + 1
        ));
    }
    totals.messages += publisher.stats().messages;
    totals.sessions += reader.sessions;
    Ok(())
}

/// Random re-requests: each answer holds exactly the log's messages from
/// the sequence asked, at most the cap, none past the end.
fn check_rerequests(
    publisher: &Publisher,
    rng: &mut SimulationRng,
    reader: &mut Reader,
) -> Result<(), String> {
    // The packet in progress has not reached the reader: the log is ahead.
    let sent = reader.messages.len() as u64;
    for message in 1..=publisher.log().len() {
        let bytes = publisher.log().get(message).ok_or("a hole in the log")?;
        if message <= sent && reader.messages[message as usize - 1] != *bytes {
            return Err(format!("log message {message} differs from the one sent"));
        }
    }
    let last = publisher.log().len();
    for _ in 0..20 {
        let sequence = 1 + rng.below(last + 3);
        let count = 1 + rng.below(300) as u16;
        let cap = 1 + rng.below(200) as u16;
        let request = Request {
            session: publisher.session(),
            sequence,
            count,
        };
        let mut packets = Vec::new();
        let answered = publisher
            .answer(&request, cap, &mut |packet| packets.push(packet.to_vec()))
            .map_err(|error| error.to_string())?;
        let expected_last = (sequence + u64::from(count.min(cap)) - 1).min(last);
        let expected = expected_last.saturating_sub(sequence - 1);
        if answered != expected {
            return Err(format!(
                "re-request {sequence}+{count} (cap {cap}) answered {answered}, expected {expected}"
            ));
        }
        let mut next = sequence;
        for bytes in &packets {
            let packet = Packet::parse(bytes).map_err(|error| error.to_string())?;
            if bytes.len() > publisher.payload_max() {
                return Err("an answer packet over payload_max".to_owned());
            }
            if packet.header().session != publisher.session() {
                return Err("an answer for another session".to_owned());
            }
            if expected == 0 {
                if !(packet.header().message_count() == 0
                    && packet.header().sequence == publisher.next_sequence())
                {
                    return Err(format!("a request past the end got {:?}", packet.header()));
                }
                continue;
            }
            if packet.header().sequence != next {
                return Err("answer packets out of order".to_owned());
            }
            for (_, block) in packet.messages() {
                if publisher.log().get(next).as_deref() != Some(block) {
                    return Err(format!("re-sent message {next} differs from the log"));
                }
                next += 1;
            }
        }
    }
    Ok(())
}

/// A snapshot applied to empty books equals the engine (the log holds
/// every message up to the state, so the snapshot's next sequence is the
/// log's next).
/// A late joiner: the snapshot's books, its session and the sequence
/// number the live stream continues from.
struct Joiner {
    books: Books,
    session: Session,
    next: u64,
}

/// A snapshot applied to empty books equals the engine now.
fn check_snapshot(publisher: &Publisher, engine: &Engine) -> Result<Joiner, String> {
    let mut messages = Vec::new();
    let next = publisher.snapshot(Timestamp::ZERO, &mut messages);
    let mut books = Books::new();
    for message in &messages {
        books
            .apply(message)
            .map_err(|error| format!("snapshot message {message:?}: {error}"))?;
    }
    compare_books(engine, &books, "snapshot")?;
    Ok(Joiner {
        books,
        session: publisher.session(),
        next,
    })
}

/// The joiner continues with the log's messages from its next sequence
/// (when the session has not changed since) and must equal the engine.
fn continue_joiner(
    mut joiner: Joiner,
    publisher: &Publisher,
    engine: &Engine,
) -> Result<bool, String> {
    if joiner.session != publisher.session() {
        return Ok(false);
    }
    for sequence in joiner.next..=publisher.log().len() {
        let bytes = publisher.log().get(sequence).ok_or("a hole in the log")?;
        let message = Message::decode(&bytes).map_err(|error| error.to_string())?;
        joiner
            .books
            .apply(&message)
            .map_err(|error| format!("late joiner, message {sequence}: {error}"))?;
    }
    compare_books(engine, &joiner.books, "late joiner at the end").map(|_| true)
}

#[test]
fn published_packets_rebuild_the_engine_books_across_days() {
    let cases = environment_number("MD_PUBLISHER_CASES").unwrap_or(CASES_DEFAULT);
    let commands = environment_number("MD_PUBLISHER_COMMANDS").unwrap_or(COMMANDS_DEFAULT);
    let first = environment_seed("MD_PUBLISHER_SEED", 1_000);
    let (totals, failures): (Vec<Totals>, _) = run_seeds(cases, first, |seed, totals| {
        run_case(seed, commands, totals)
    });
    if let Some((seed, error)) = failures.first() {
        panic!(
            "{} of {cases} streams failed; first, seed {seed}: {error}\nreproduce: \
             MD_PUBLISHER_SEED={seed} MD_PUBLISHER_CASES=1 MD_PUBLISHER_COMMANDS={commands} \
             cargo test -p tests --test md_publisher",
            failures.len()
        );
    }
    let messages: u64 = totals.iter().map(|t| t.messages).sum();
    let sessions: u64 = totals.iter().map(|t| t.sessions).sum();
    let joined: u64 = totals.iter().map(|t| t.joined).sum();
    println!(
        "{cases} streams: {messages} messages in {sessions} sessions; {joined} late joiners \
         continued to the end"
    );
    assert!(
        joined > cases / 10,
        "only {joined} late joiners were checked"
    );
    // The streams must have exercised the feed and the end of day.
    assert!(messages > cases * 10, "only {messages} messages");
    assert!(
        sessions > cases,
        "no stream ended a day ({sessions} sessions)"
    );
}
