//! `exchange`: the one binary of the exchange core.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tools::config::Config;

/// A low-latency in-memory matching and settlement core.
#[derive(Debug, Parser)]
#[command(
    name = "exchange",
    version,
    about = "A low-latency in-memory matching and settlement core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot the exchange from its configuration (the embedded default, or
    /// --config FILE) and report its state. Network listeners and the
    /// journal are not built yet: it exits after booting.
    Serve {
        /// A configuration file to use instead of the embedded default.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Benchmarks: the state machine alone (`bench engine`).
    #[command(subcommand)]
    Bench(bench::cli::BenchCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the configuration in effect as TOML.
    Show {
        /// A configuration file to use instead of the embedded default.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(config.as_deref())?;
            let engine = tools::serve::boot(&config)?;
            print!("{}", tools::serve::describe(&config, &engine));
            eprintln!(
                "exchange: booted; the journal and the network listeners are not built yet, \
                 so serve stops here"
            );
            Ok(())
        }
        Command::Config(ConfigCommand::Show { config }) => {
            print!("{}", Config::load(config.as_deref())?.to_toml());
            Ok(())
        }
        Command::Bench(command) => bench::cli::run(command),
    }
}
