//! The archive commands: `search`, `import` and `export`.

use std::io::Write;
use std::path::PathBuf;

use netwar_cli::{CommonArgs, Session, UsageError, exit};
use netwar_core::model::{TweetDoc, TweetKind};
use netwar_core::pipeline::Sink;
use netwar_core::pipeline::export::{self, GraphFilter, GraphFormat, TableFormat};
use netwar_core::pipeline::import;
use netwar_core::store::TweetQuery;

use crate::{ExportArgs, ExportFormat, ExportWhat, KindArg, SearchArgs, TweetFilters};

/// True when the error is a write to a closed pipe (`netwar export … | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

impl TweetFilters {
    fn query(&self) -> TweetQuery {
        TweetQuery {
            since: self.since,
            until: self.until,
            tag: self.tag.clone(),
            ..TweetQuery::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.since.is_none() && self.until.is_none() && self.tag.is_none()
    }
}

/// `search`: newest first, as text for a person or JSON lines for a script.
pub async fn search(common: &CommonArgs, args: &SearchArgs) -> anyhow::Result<u8> {
    let session = Session::open(common).await?;
    let mut query = TweetQuery {
        text: args.query.join(" "),
        lang: args.lang.clone(),
        has_links: args.has_links.then_some(true),
        has_media: args.has_media.then_some(true),
        kind: args.kind.map(|kind| match kind {
            KindArg::Original => TweetKind::Original,
            KindArg::Retweet => TweetKind::Retweet,
            KindArg::Quote => TweetKind::Quote,
            KindArg::Reply => TweetKind::Reply,
        }),
        limit: args.limit,
        ..args.filters.query()
    };
    if let Some(author) = &args.author {
        let author = author.trim().trim_start_matches('@');
        if author.is_empty() {
            return Err(UsageError("--author needs a handle or an id".to_owned()).into());
        }
        if author.bytes().all(|byte| byte.is_ascii_digit()) {
            query.author_id = Some(author.to_owned());
        } else {
            query.author_username = Some(author.to_owned());
        }
    }

    let tweets = session.stores.archive.search_tweets(&query).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    for tweet in &tweets {
        if args.json {
            serde_json::to_writer(&mut out, tweet)?;
            writeln!(out)?;
        } else {
            write!(out, "{}", render(tweet))?;
        }
    }
    if !args.json {
        writeln!(
            out,
            "{} tweet{}{}",
            tweets.len(),
            if tweets.len() == 1 { "" } else { "s" },
            if args.limit > 0 && tweets.len() == args.limit {
                " (the limit; --limit N for more)"
            } else {
                ""
            }
        )?;
    }
    out.flush()?;
    Ok(exit::OK)
}

/// A tweet for a person: when, who, what kind, where to see it, and the text on one line.
fn render(tweet: &TweetDoc) -> String {
    let when = tweet
        .created_at
        .map(|time| time.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "????-??-?? ??:??".to_owned());
    let author = tweet
        .author_username
        .as_deref()
        .map(|name| format!("@{name}"))
        .or_else(|| tweet.author_id.as_deref().map(|id| format!("id {id}")))
        .unwrap_or_else(|| "?".to_owned());
    let link = format!(
        "https://x.com/{}/status/{}",
        tweet.author_username.as_deref().unwrap_or("i"),
        tweet.id
    );
    let text: String = tweet.text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = if text.chars().count() > 200 {
        format!("{}…", text.chars().take(199).collect::<String>())
    } else {
        text
    };
    format!(
        "{when}  {author:<18} {:<8} {link}\n    {text}\n",
        tweet.kind.as_str()
    )
}

/// `import`: every file in turn; unreadable lines are reported as `FILE:LINE: reason` and
/// the import goes on. Exit 1 when any line or file could not be imported.
pub async fn import(
    common: &CommonArgs,
    files: &[PathBuf],
    tag: Option<&str>,
) -> anyhow::Result<u8> {
    let session = Session::open(common).await?;
    // Imported data was captured by someone else's credentials: none is recorded.
    let sink = Sink::new(session.stores.clone(), "");
    let mut failed = false;

    for path in files {
        let name = path.display();
        let reader = match import::open_collection(path) {
            Ok(reader) => reader,
            Err(error) => {
                eprintln!("{name}: {error}");
                failed = true;
                continue;
            }
        };
        let file_time = import::file_time(path)?;
        let report = import::import_collection(&sink, reader, file_time, tag).await?;
        for bad in &report.bad {
            eprintln!("{name}:{}: {}", bad.line, bad.reason);
        }
        failed |= !report.bad.is_empty();
        println!(
            "{name}: {} lines, {} tweets ({} new), {} user profiles, {} unreadable lines",
            report.lines,
            report.tweets,
            report.new_tweets,
            report.users,
            report.bad.len()
        );
    }
    session.stores.archive.flush().await?;
    Ok(if failed { exit::PARTIAL } else { exit::OK })
}

/// `export`: streams to standard output or a file; the count goes to stderr so that the
/// output stays clean.
pub async fn export(common: &CommonArgs, args: &ExportArgs) -> anyhow::Result<u8> {
    let session = Session::open(common).await?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|error| UsageError(format!("cannot write {}: {error}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let archive = session.stores.archive.as_ref();
    // Exports page through searches, which on a search cluster see only what a refresh made
    // visible: an export holds every write made before it started.
    archive.flush().await?;

    let summary = match args.what {
        ExportWhat::Tweets | ExportWhat::Users => {
            let format = match args.format {
                None | Some(ExportFormat::Jsonl) => TableFormat::Jsonl,
                Some(ExportFormat::Csv) => TableFormat::Csv,
                Some(other) => {
                    return Err(UsageError(format!(
                        "{other:?} is a graph format: use --format jsonl or csv"
                    ))
                    .into());
                }
            };
            if args.what == ExportWhat::Tweets {
                let count =
                    export::export_tweets(archive, &args.filters.query(), format, &mut out).await?;
                format!("{count} tweets")
            } else {
                if !args.filters.is_empty() {
                    return Err(UsageError(
                        "--since, --until and --tag filter tweets and the graph, not users"
                            .to_owned(),
                    )
                    .into());
                }
                let count = export::export_users(archive, format, &mut out).await?;
                format!("{count} users")
            }
        }
        ExportWhat::Graph => {
            let format = match args.format {
                None | Some(ExportFormat::Gexf) => GraphFormat::Gexf,
                Some(ExportFormat::Graphml) => GraphFormat::Graphml,
                Some(other) => {
                    return Err(UsageError(format!(
                        "{other:?} is a table format: use --format gexf or graphml"
                    ))
                    .into());
                }
            };
            let filter = GraphFilter {
                tweets: (!args.filters.is_empty()).then(|| args.filters.query()),
                min_weight: args.min_weight,
            };
            let graph = session.stores.graph.as_ref();
            let (nodes, edges) =
                export::export_graph(archive, graph, &filter, format, &mut out).await?;
            format!("{nodes} users, {edges} interaction edges")
        }
    };
    out.flush()?;
    if !common.quiet {
        eprintln!("exported {summary}");
    }
    Ok(exit::OK)
}
