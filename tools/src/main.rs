//! `exchange`: the production binary of the exchange core — serve, client,
//! journal, md and config. The benchmarks are a separate binary,
//! `exchange-bench` (bench/src/bin/exchange-bench.rs), so that this one links
//! no peer order book and no plotting library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tools::config::Config;

mod md_cmd;

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
    /// Run the exchange: start from its journal under the configuration's
    /// data_dir (recovery, or genesis for an empty journal), then serve
    /// OUCH 5.0 order entry and the funding messages over SoupBinTCP 4.0
    /// (127.0.0.1:9001 and :9002 by default) and publish ITCH 5.0 market
    /// data over MoldUDP64 multicast (239.255.42.1:26400, re-requests on
    /// 127.0.0.1:9003, snapshots on :9004) until SIGINT or SIGTERM, which
    /// stop it cleanly (journal flushed and closed, End of Session sent).
    /// Uses the embedded default configuration or --config FILE.
    Serve {
        /// A configuration file to use instead of the embedded default.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The operator's journal tools: info, dump, verify, replay, snapshot,
    /// truncate.
    #[command(subcommand)]
    Journal(tools::journal_tool::JournalCommand),
    /// A trading and funding client for a running exchange: enter, replace
    /// and cancel orders, query, listen to a session, fund accounts, or an
    /// interactive shell.
    Client(tools::client_cmd::ClientArgs),
    /// Market-data tools: listen to the ITCH feed, draw a book's depth
    /// ladder, or print feed statistics (`md listen|book|stats`).
    Md(md_cmd::MdArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the configuration in effect as TOML.
    Show {
        /// A configuration file to use instead of the embedded default.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Read a password from standard input (one line) and print its
    /// Argon2id PHC string, for a login's `password_hash`.
    HashPassword,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(config.as_deref())?;
            tools::serve::serve(&config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Show { config }) => {
            print!("{}", Config::load(config.as_deref())?.to_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::HashPassword) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            gateway::auth::check_password(password)?;
            println!("{}", gateway::auth::hash_password(password));
            Ok(ExitCode::SUCCESS)
        }
        Command::Journal(command) => tools::journal_tool::run(command),
        Command::Client(args) => tools::client_cmd::run(args),
        Command::Md(args) => md_cmd::run(args),
    }
}
