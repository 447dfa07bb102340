//! The knobs of the seeded tests: numbers from environment variables, and
//! seeds that may be `random` (drawn from the clock and printed, so a
//! failure can always be reproduced).

/// The streams of every `LONG_STREAM_EVERY`th seed are `LONG_STREAM_FACTOR`
/// times longer, to reach deep state (many order ids, evicted transfer
/// records, drifted bands) in the default runs too.
const LONG_STREAM_EVERY: u64 = 20;
const LONG_STREAM_FACTOR: u64 = 10;

/// The length of `seed`'s stream when streams are `commands` long: a
/// function of the seed, so that a seed alone reproduces its stream.
pub fn stream_length(seed: u64, commands: u64) -> u64 {
    if seed % LONG_STREAM_EVERY == LONG_STREAM_EVERY - 1 {
        commands * LONG_STREAM_FACTOR
    } else {
        commands
    }
}

/// The number in environment variable `name`, if it is set; a value that
/// is not a number stops the test with a message naming the variable.
pub fn environment_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {text:?}")),
    )
}

/// The seed in environment variable `name`: a number, `random` (from the
/// clock; printed), or `default` when unset.
pub fn environment_seed(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) if text.trim() == "random" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("the clock is after 1970");
            let seed = now.as_nanos() as u64;
            eprintln!("{name}=random: first seed {seed}");
            seed
        }
        Ok(_) => environment_number(name).expect("set"),
        Err(_) => default,
    }
}

/// Runs `case(seed, state)` for the seeds `first..first + cases` on up to 8
/// threads, each with a `state` of its own, and stops every thread at the
/// first failure. Returns the threads' states and the failures, lowest
/// seed first (a later seed may also fail before the stop is seen).
pub fn run_seeds<S, E, F>(cases: u64, first: u64, case: F) -> (Vec<S>, Vec<(u64, E)>)
where
    S: Default + Send,
    E: Send,
    F: Fn(u64, &mut S) -> Result<(), E> + Sync,
{
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    let workers = std::thread::available_parallelism()
        .map_or(1, |count| count.get())
        .min(8) as u64;
    let stop = AtomicBool::new(false);
    let failures: Mutex<Vec<(u64, E)>> = Mutex::new(Vec::new());
    let states: Mutex<Vec<S>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let (stop, failures, states, case) = (&stop, &failures, &states, &case);
            scope.spawn(move || {
                let mut state = S::default();
                let mut index = worker;
                while index < cases && !stop.load(Ordering::Relaxed) {
                    let seed = first.wrapping_add(index);
                    if let Err(failure) = case(seed, &mut state) {
                        stop.store(true, Ordering::Relaxed);
                        failures
                            .lock()
                            .expect("no worker panics holding it")
                            .push((seed, failure));
                    }
                    index += workers;
                }
                states
                    .lock()
                    .expect("no worker panics holding it")
                    .push(state);
            });
        }
    });
    let mut failures = failures.into_inner().expect("no worker panicked");
    failures.sort_by_key(|(seed, _)| *seed);
    (states.into_inner().expect("no worker panicked"), failures)
}

/// A fresh, empty directory for a test's files: `<temp>/<prefix>-<name>-<pid>`.
pub fn scratch_dir(prefix: &str, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Journal options for tests: small segments (16 KiB), so that a few
/// hundred commands cross several of them, and no prefaulting.
pub fn small_journal_options(durability: journal::Durability) -> journal::JournalOptions {
    journal::JournalOptions {
        segment_bytes: 16 << 10,
        record_bytes_max: 1 << 10,
        durability,
        prefault: false,
        ..journal::JournalOptions::default()
    }
}
