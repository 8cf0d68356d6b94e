//! Subcommands that several binaries share: `enqueue` and `status`.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use netwar_core::pipeline::{AccountLines, AccountRef, enqueue_accounts, read_account_lines};

use crate::status::StatusReport;
use crate::{CommonArgs, Session, UsageError, exit};

/// Parses a date given on the command line: `YYYY-MM-DD` (midnight UTC) or RFC 3339.
pub fn parse_date(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| format!("`{text}` is not a date (YYYY-MM-DD or RFC 3339)"))
}

/// Reads accounts from a file, or standard input for `-` or no file, warning about each
/// rejected line with its number unless quiet.
pub fn read_accounts(common: &CommonArgs, file: Option<&Path>) -> anyhow::Result<AccountLines> {
    let reader: Box<dyn BufRead> = match file {
        None => Box::new(std::io::stdin().lock()),
        Some(path) if path.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(path) => Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(
            |error| UsageError(format!("cannot read {}: {error}", path.display())),
        )?)),
    };
    let lines = read_account_lines(reader).context("reading the accounts")?;
    if !common.quiet {
        for rejected in &lines.rejected {
            eprintln!("warning: line {}: {}", rejected.line, rejected.reason);
        }
    }
    Ok(lines)
}

/// `enqueue [FILE|-]`: queues accounts, resolving handles to ids unless told not to.
pub async fn enqueue(
    common: &CommonArgs,
    session: &Session,
    file: Option<&Path>,
    no_resolve: bool,
    queue: &str,
) -> anyhow::Result<u8> {
    let lines = read_accounts(common, file)?;
    let accounts: Vec<AccountRef> = lines
        .accounts
        .iter()
        .map(|(_, account)| account.clone())
        .collect();

    let client = if no_resolve {
        None
    } else {
        Some(session.client(common)?)
    };
    let sink = client.as_ref().map(|client| session.sink(client));
    let resolver = client.as_ref().zip(sink.as_ref());
    let queue_store = session.stores.queue.as_ref();
    let report = enqueue_accounts(queue_store, queue, &accounts, resolver).await?;

    let resolved = if no_resolve {
        String::new()
    } else {
        format!(", {} handles resolved to ids", report.resolved)
    };
    println!(
        "queued {}, already queued {}, rejected {} ({} lines read{resolved})",
        report.summary.queued,
        report.summary.already_queued,
        lines.rejected.len(),
        lines.accounts.len() + lines.rejected.len(),
    );
    Ok(if lines.rejected.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

/// `status`: the queue and the outcomes recorded in a capture-state scope.
pub async fn status(session: &Session, queue: &str, scope: &str, json: bool) -> anyhow::Result<u8> {
    let stats = session.stores.queue.stats(queue).await?;
    let states = session.stores.queue.states(scope).await?;
    let report = StatusReport::new(queue, stats, states);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(exit::OK)
}
