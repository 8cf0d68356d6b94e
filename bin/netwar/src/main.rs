//! `netwar`: the administration tool beside the capture workers.
//!
//! It does what an operator needs from a shell or a script around the workers: authorise an
//! account through X's PIN flow (`auth`) and check which account each credential acts as
//! (`whoami`), see how much API budget is left (`rates`), check the whole installation
//! (`doctor`), search the archive (`search`), bring twarc2 collections in (`import`), take
//! tweets, users and the interaction graph out for other tools (`export`), and read how the
//! workers' runs went (`jobs`).

mod admin;
mod archive;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use netwar_cli::{CommonArgs, EXIT_CODES_HELP, commands};

#[derive(Debug, Parser)]
#[command(name = "netwar", version, about, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Authorise an X account through the PIN flow and store its access token in the
    /// credentials file (under --credential, default: api.credential).
    Auth,

    /// Show which account each credential set acts as (or only --credential).
    Whoami,

    /// Show each credential's rate budgets by endpoint, as the workers last saw them.
    Rates {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Check the configuration, the credentials file and every configured store.
    Doctor,

    /// Search archived tweets: every word of QUERY must appear (empty for all).
    Search(SearchArgs),

    /// Import twarc2 collections (response pages or flattened lines, optionally gzip) and
    /// netwar exports into the archive and the graph.
    Import {
        /// The files to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,

        /// A name added to the provenance of everything imported.
        #[arg(long, value_name = "NAME")]
        tag: Option<String>,
    },

    /// Export tweets or users (JSON lines or CSV) or the interaction graph (GEXF or
    /// GraphML) to standard output or --output.
    Export(ExportArgs),

    /// Show the records of recent worker runs, newest first.
    Jobs {
        /// How many records.
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: usize,

        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KindArg {
    Original,
    Retweet,
    Quote,
    Reply,
}

/// The tweet filters `search` and `export` share.
#[derive(Debug, clap::Args)]
struct TweetFilters {
    /// Only tweets from this date (YYYY-MM-DD or RFC 3339, UTC).
    #[arg(long, value_name = "DATE", value_parser = commands::parse_date)]
    since: Option<DateTime<Utc>>,

    /// Only tweets before this date (YYYY-MM-DD or RFC 3339, UTC).
    #[arg(long, value_name = "DATE", value_parser = commands::parse_date)]
    until: Option<DateTime<Utc>>,

    /// Only tweets captured under this tag (capture name, job, List id or stream rule tag).
    #[arg(long, value_name = "NAME")]
    tag: Option<String>,
}

#[derive(Debug, clap::Args)]
struct SearchArgs {
    /// Words that must all appear in the text (quoted or not); none for every tweet.
    query: Vec<String>,

    /// Only tweets by this account: a handle (with or without @) or a numeric id.
    #[arg(long, value_name = "ACCOUNT")]
    author: Option<String>,

    #[command(flatten)]
    filters: TweetFilters,

    /// Only tweets in this language (X's code: en, fr, und, …).
    #[arg(long, value_name = "CODE")]
    lang: Option<String>,

    /// Only tweets with links.
    #[arg(long)]
    has_links: bool,

    /// Only tweets with media.
    #[arg(long)]
    has_media: bool,

    /// Only tweets of this kind.
    #[arg(long, value_enum)]
    kind: Option<KindArg>,

    /// At most this many tweets, newest first.
    #[arg(long, default_value_t = 20, value_name = "N")]
    limit: usize,

    /// Print each tweet document as a JSON line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportWhat {
    Tweets,
    Users,
    Graph,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
    Gexf,
    Graphml,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// What to export.
    #[arg(value_enum)]
    what: ExportWhat,

    /// jsonl or csv for tweets and users (default jsonl); gexf or graphml for the graph
    /// (default gexf).
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,

    #[command(flatten)]
    filters: TweetFilters,

    /// Graph only: leave out user pairs with fewer interactions than this.
    #[arg(long, default_value_t = 1, value_name = "N")]
    min_weight: u64,

    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = netwar_cli::parse();
    cli.common.init_logging();
    netwar_cli::install_crypto_provider();
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(error) if archive::is_broken_pipe(&error) => {
            // `netwar export … | head` is a normal way to look at an export.
            ExitCode::SUCCESS
        }
        Err(error) => netwar_cli::report(&error),
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let common = &cli.common;
    match cli.command {
        Command::Auth => admin::auth(common).await,
        Command::Whoami => admin::whoami(common).await,
        Command::Rates { json } => admin::rates(common, json).await,
        Command::Doctor => admin::doctor(common).await,
        Command::Search(args) => archive::search(common, &args).await,
        Command::Import { files, tag } => archive::import(common, &files, tag.as_deref()).await,
        Command::Export(args) => archive::export(common, &args).await,
        Command::Jobs { limit, json } => admin::jobs(common, limit, json).await,
    }
}
