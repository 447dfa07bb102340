//! `exchange-bench`: the benchmarks of the exchange core, a binary of their
//! own so that the production binary, `exchange`, links none of what only
//! the benchmarks need (the peer order books, the plotting library).
//!
//! The subcommands are those of [`bench::cli::BenchCommand`]: `engine`,
//! `latency`, `journal`, `ring`, `e2e`, `day`, `md` and `report`. Three
//! more are hidden and are not benchmarks: `serve`, `config show` and
//! `journal-tool` run the very code of `exchange serve`, `exchange config
//! show` and `exchange journal` (from the `tools` library). `e2e` and `day`
//! (and `report`, which runs them) start the server they measure as
//! `exchange-bench serve`, from this executable: the server measured is
//! built from the same sources as the bench, with no second binary to
//! build or find (`day --server-binary` can start another build's).

use bench::cli::BenchCommand;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tools::config::Config;

/// The benchmarks of the exchange core.
#[derive(Debug, Parser)]
#[command(
    name = "exchange-bench",
    version,
    about = "The benchmarks of the exchange core: engine, latency, journal, ring, e2e, day, md, report"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Bench(BenchCommand),
    /// `exchange serve`, for the server that `e2e` and `day` start.
    #[command(hide = true)]
    Serve {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// `exchange config`, for the configuration that `e2e` patches.
    #[command(hide = true, subcommand)]
    Config(ConfigCommand),
    /// `exchange journal`, to read back a journal written by
    /// `engine --journal` without a second binary.
    #[command(hide = true, subcommand)]
    JournalTool(tools::journal_tool::JournalCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the configuration in effect as TOML.
    Show {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Bench(command) => bench::cli::run(command).map(|()| ExitCode::SUCCESS),
        Command::Serve { config } => {
            tools::serve::serve(&Config::load(config.as_deref())?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Show { config }) => {
            print!("{}", Config::load(config.as_deref())?.to_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::JournalTool(command) => tools::journal_tool::run(command),
    }
}
