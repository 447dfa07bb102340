//! The knobs of the seeded tests: numbers from environment variables, and
//! seeds that may be `random` (drawn from the clock and printed, so a
//! failure can always be reproduced).

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
