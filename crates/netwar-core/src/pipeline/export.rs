//! Exporting the archive and the interaction graph for other tools.
//!
//! Tweets and users leave as JSON lines (the whole document, raw payload and provenance
//! included, which `netwar import` reads back into the same archive) or as CSV with the
//! columns listed in [`TWEET_COLUMNS`] and [`USER_COLUMNS`], for spreadsheets and R or pandas.
//! The interaction graph leaves as GEXF or GraphML, the formats Gephi opens.
//!
//! Tweets and users are read in keyset pages ([`Archive::scan_tweets`], [`Archive::scan_users`])
//! and written as they come, so an export of ten million tweets holds one page in memory at a
//! time. The graph is the exception: its edges are gathered before the first is written,
//! because both formats list every node before the first edge; memory grows with the number
//! of user pairs, not with the number of tweets.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{InteractionKind, ProfileChange, TweetDoc, WeightedEdge};
use crate::store::{Archive, Graph, StoredUser, TweetQuery};

/// Tweets or users read per page.
pub const PAGE: usize = 1_000;

/// The columns of the tweet CSV, in order. Lists (hashtags, mentions, urls, references) are
/// joined with spaces; times are RFC 3339 UTC; an empty cell is an absent value.
pub const TWEET_COLUMNS: &[&str] = &[
    "id",
    "created_at",
    "author_id",
    "author_username",
    "author_name",
    "kind",
    "lang",
    "text",
    "conversation_id",
    "in_reply_to_user_id",
    "retweeted_id",
    "quoted_id",
    "replied_to_id",
    "mentions",
    "hashtags",
    "urls",
    "media_count",
    "retweet_count",
    "reply_count",
    "like_count",
    "quote_count",
    "source",
    "first_captured_at",
    "last_captured_at",
    "via",
    "tags",
];

/// The columns of the user CSV, in order.
pub const USER_COLUMNS: &[&str] = &[
    "id",
    "username",
    "name",
    "status",
    "created_at",
    "description",
    "location",
    "url",
    "protected",
    "verified_type",
    "followers_count",
    "following_count",
    "tweet_count",
    "listed_count",
    "last_observed_at",
];

/// How tweets and users are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Jsonl,
    Csv,
}

/// How the graph is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Gexf,
    Graphml,
}

fn write_error(error: std::io::Error) -> Error {
    Error::io("cannot write", "the output", error)
}

/// Writes every tweet matching `filter` (text, author, time range, tag, … — not its limit),
/// oldest id first; returns how many.
pub async fn export_tweets(
    archive: &dyn Archive,
    filter: &TweetQuery,
    format: TableFormat,
    out: &mut dyn Write,
) -> Result<u64> {
    if format == TableFormat::Csv {
        writeln!(out, "{}", csv_line(TWEET_COLUMNS.iter().copied())).map_err(write_error)?;
    }
    let mut after: Option<String> = None;
    let mut count = 0;
    loop {
        let page = archive.scan_tweets(filter, after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.id.clone());
        for tweet in &page {
            match format {
                TableFormat::Jsonl => {
                    write_json_line(out, tweet)?;
                }
                TableFormat::Csv => {
                    write_csv_row(out, &tweet_row(tweet))?;
                }
            }
        }
        count += page.len() as u64;
    }
    out.flush().map_err(write_error)?;
    Ok(count)
}

/// One record as a line of JSON.
fn write_json_line(out: &mut dyn Write, record: &impl Serialize) -> Result<()> {
    serde_json::to_writer(&mut *out, record).map_err(|error| write_error(error.into()))?;
    out.write_all(b"\n").map_err(write_error)
}

/// One record as a line of CSV.
fn write_csv_row(out: &mut dyn Write, row: &[String]) -> Result<()> {
    writeln!(out, "{}", csv_line(row.iter().map(String::as_str))).map_err(write_error)
}

/// A user as exported in JSON lines: the stored user and its profile history.
#[derive(Debug, Serialize)]
struct UserLine<'a> {
    #[serde(flatten)]
    user: &'a StoredUser,
    history: Vec<ProfileChange>,
}

/// Writes every archived user, by id; returns how many.
pub async fn export_users(
    archive: &dyn Archive,
    format: TableFormat,
    out: &mut dyn Write,
) -> Result<u64> {
    if format == TableFormat::Csv {
        writeln!(out, "{}", csv_line(USER_COLUMNS.iter().copied())).map_err(write_error)?;
    }
    let mut after: Option<String> = None;
    let mut count = 0;
    loop {
        let page = archive.scan_users(after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.id.clone());
        for user in &page {
            match format {
                TableFormat::Jsonl => {
                    let line = UserLine {
                        user,
                        history: archive.user_history(&user.id).await?,
                    };
                    write_json_line(out, &line)?;
                }
                TableFormat::Csv => {
                    write_csv_row(out, &user_row(user))?;
                }
            }
        }
        count += page.len() as u64;
    }
    out.flush().map_err(write_error)?;
    Ok(count)
}

/// Which interaction edges the graph export holds.
#[derive(Debug, Clone, Default)]
pub struct GraphFilter {
    /// Only interactions by tweets matching this (time range, tag, …); `None` for the whole
    /// graph as the graph store holds it.
    pub tweets: Option<TweetQuery>,
    pub min_weight: u64,
}

/// The edges an export holds. Without a tweet filter they are the graph store's own; with one
/// they are recounted from the archived tweets that match, by the same rule the graph stores
/// use (distinct tweets per kind).
pub async fn interaction_edges(
    archive: &dyn Archive,
    graph: &dyn Graph,
    filter: &GraphFilter,
) -> Result<Vec<WeightedEdge>> {
    let Some(tweets) = &filter.tweets else {
        return graph.interaction_edges(filter.min_weight.max(1)).await;
    };

    let mut edges: BTreeMap<(String, String), WeightedEdge> = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = archive.scan_tweets(tweets, after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.id.clone());
        for interaction in page.iter().flat_map(TweetDoc::interactions) {
            let key = (
                interaction.source_user_id.clone(),
                interaction.target_user_id.clone(),
            );
            let edge = edges.entry(key).or_insert_with(|| WeightedEdge {
                source_user_id: interaction.source_user_id.clone(),
                target_user_id: interaction.target_user_id.clone(),
                retweets: 0,
                quotes: 0,
                replies: 0,
                mentions: 0,
                first_at: None,
                last_at: None,
            });
            match interaction.kind {
                InteractionKind::Retweet => edge.retweets += 1,
                InteractionKind::Quote => edge.quotes += 1,
                InteractionKind::Reply => edge.replies += 1,
                InteractionKind::Mention => edge.mentions += 1,
            }
            if let Some(at) = interaction.at {
                edge.first_at = Some(edge.first_at.map_or(at, |first| first.min(at)));
                edge.last_at = Some(edge.last_at.map_or(at, |last| last.max(at)));
            }
        }
    }
    Ok(edges
        .into_values()
        .filter(|edge| edge.weight() >= filter.min_weight.max(1))
        .collect())
}

/// Writes the interaction graph; returns the numbers of nodes and edges written. Node labels
/// are the handles the archive knows, the id otherwise.
pub async fn export_graph(
    archive: &dyn Archive,
    graph: &dyn Graph,
    filter: &GraphFilter,
    format: GraphFormat,
    out: &mut dyn Write,
) -> Result<(u64, u64)> {
    let edges = interaction_edges(archive, graph, filter).await?;
    let ids: BTreeSet<&str> = edges
        .iter()
        .flat_map(|edge| [edge.source_user_id.as_str(), edge.target_user_id.as_str()])
        .collect();
    let mut nodes = Vec::with_capacity(ids.len());
    for id in ids {
        let label = archive
            .user(id)
            .await?
            .and_then(|user| user.username)
            .unwrap_or_else(|| id.to_owned());
        nodes.push((id.to_owned(), label));
    }

    match format {
        GraphFormat::Gexf => write_gexf(out, &nodes, &edges),
        GraphFormat::Graphml => write_graphml(out, &nodes, &edges),
    }
    .map_err(write_error)?;
    Ok((nodes.len() as u64, edges.len() as u64))
}

/// What the exported graph shows, written into the GEXF file's metadata.
const GRAPH_DESCRIPTION: &str =
    "user interactions: edge weight = distinct tweets that retweet, quote, reply to or mention";

/// The per-kind counts every edge carries beside its weight.
const EDGE_COUNTS: [&str; 4] = ["retweets", "quotes", "replies", "mentions"];

fn counts(edge: &WeightedEdge) -> [u64; 4] {
    [edge.retweets, edge.quotes, edge.replies, edge.mentions]
}

fn write_gexf(
    out: &mut dyn Write,
    nodes: &[(String, String)],
    edges: &[WeightedEdge],
) -> std::io::Result<()> {
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(out, r#"<gexf xmlns="http://gexf.net/1.3" version="1.3">"#)?;
    writeln!(
        out,
        "  <meta><creator>netwar</creator><description>{GRAPH_DESCRIPTION}</description></meta>"
    )?;
    writeln!(out, r#"  <graph mode="static" defaultedgetype="directed">"#)?;
    writeln!(out, r#"    <attributes class="edge">"#)?;
    for (index, name) in EDGE_COUNTS.iter().enumerate() {
        writeln!(
            out,
            r#"      <attribute id="{index}" title="{name}" type="integer"/>"#
        )?;
    }
    writeln!(
        out,
        r#"      <attribute id="4" title="first_at" type="string"/>"#
    )?;
    writeln!(
        out,
        r#"      <attribute id="5" title="last_at" type="string"/>"#
    )?;
    writeln!(out, r#"    </attributes>"#)?;
    writeln!(out, r#"    <nodes>"#)?;
    for (id, label) in nodes {
        writeln!(
            out,
            r#"      <node id="{}" label="{}"/>"#,
            xml_escape(id),
            xml_escape(label)
        )?;
    }
    writeln!(out, r#"    </nodes>"#)?;
    writeln!(out, r#"    <edges>"#)?;
    for (index, edge) in edges.iter().enumerate() {
        writeln!(
            out,
            r#"      <edge id="{index}" source="{}" target="{}" weight="{}">"#,
            xml_escape(&edge.source_user_id),
            xml_escape(&edge.target_user_id),
            edge.weight()
        )?;
        write!(out, "        <attvalues>")?;
        for (attribute, count) in counts(edge).iter().enumerate() {
            write!(out, r#"<attvalue for="{attribute}" value="{count}"/>"#)?;
        }
        for (attribute, time) in [(4, edge.first_at), (5, edge.last_at)] {
            if let Some(time) = time {
                write!(
                    out,
                    r#"<attvalue for="{attribute}" value="{}"/>"#,
                    rfc3339(time)
                )?;
            }
        }
        writeln!(out, "</attvalues>")?;
        writeln!(out, r#"      </edge>"#)?;
    }
    writeln!(out, r#"    </edges>"#)?;
    writeln!(out, r#"  </graph>"#)?;
    writeln!(out, r#"</gexf>"#)?;
    out.flush()
}

fn write_graphml(
    out: &mut dyn Write,
    nodes: &[(String, String)],
    edges: &[WeightedEdge],
) -> std::io::Result<()> {
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<graphml xmlns="http://graphml.graphdrawing.org/xmlns">"#
    )?;
    writeln!(
        out,
        r#"  <key id="label" for="node" attr.name="label" attr.type="string"/>"#
    )?;
    writeln!(
        out,
        r#"  <key id="weight" for="edge" attr.name="weight" attr.type="long"/>"#
    )?;
    for name in EDGE_COUNTS {
        writeln!(
            out,
            r#"  <key id="{name}" for="edge" attr.name="{name}" attr.type="long"/>"#
        )?;
    }
    for name in ["first_at", "last_at"] {
        writeln!(
            out,
            r#"  <key id="{name}" for="edge" attr.name="{name}" attr.type="string"/>"#
        )?;
    }
    writeln!(out, r#"  <graph id="interactions" edgedefault="directed">"#)?;
    for (id, label) in nodes {
        writeln!(
            out,
            r#"    <node id="{}"><data key="label">{}</data></node>"#,
            xml_escape(id),
            xml_escape(label)
        )?;
    }
    for edge in edges {
        write!(
            out,
            r#"    <edge source="{}" target="{}"><data key="weight">{}</data>"#,
            xml_escape(&edge.source_user_id),
            xml_escape(&edge.target_user_id),
            edge.weight()
        )?;
        for (name, count) in EDGE_COUNTS.iter().zip(counts(edge)) {
            write!(out, r#"<data key="{name}">{count}</data>"#)?;
        }
        for (name, time) in [("first_at", edge.first_at), ("last_at", edge.last_at)] {
            if let Some(time) = time {
                write!(out, r#"<data key="{name}">{}</data>"#, rfc3339(time))?;
            }
        }
        writeln!(out, "</edge>")?;
    }
    writeln!(out, r#"  </graph>"#)?;
    writeln!(out, r#"</graphml>"#)?;
    out.flush()
}

/// Escapes text for an XML attribute or element, dropping the control characters XML 1.0
/// cannot carry at all (they do occur in profile descriptions).
fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(character),
            control if (control as u32) < 0x20 => {}
            other => escaped.push(other),
        }
    }
    escaped
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One CSV record (RFC 4180): fields with a comma, quote or line break are quoted.
pub fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    fields
        .map(|field| {
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn metric(metrics: Option<&Value>, name: &str) -> String {
    metrics
        .and_then(|metrics| metrics.get(name))
        .and_then(Value::as_u64)
        .map(|count| count.to_string())
        .unwrap_or_default()
}

fn tweet_row(tweet: &TweetDoc) -> Vec<String> {
    let reference = |kind: &str| {
        tweet
            .references
            .iter()
            .filter(|reference| reference.kind == kind)
            .map(|reference| reference.id.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let provenance = &tweet.provenance;
    vec![
        tweet.id.clone(),
        tweet.created_at.map(rfc3339).unwrap_or_default(),
        text(&tweet.author_id),
        text(&tweet.author_username),
        text(&tweet.author_name),
        tweet.kind.as_str().to_owned(),
        text(&tweet.lang),
        tweet.text.clone(),
        text(&tweet.conversation_id),
        text(&tweet.in_reply_to_user_id),
        reference("retweeted"),
        reference("quoted"),
        reference("replied_to"),
        tweet
            .mentions
            .iter()
            .map(|mention| mention.username.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        tweet.hashtags.join(" "),
        tweet.urls.join(" "),
        tweet.media_keys.len().to_string(),
        metric(tweet.metrics.as_ref(), "retweet_count"),
        metric(tweet.metrics.as_ref(), "reply_count"),
        metric(tweet.metrics.as_ref(), "like_count"),
        metric(tweet.metrics.as_ref(), "quote_count"),
        text(&tweet.source),
        provenance
            .first_captured_at
            .map(rfc3339)
            .unwrap_or_default(),
        provenance.last_captured_at.map(rfc3339).unwrap_or_default(),
        provenance
            .via
            .iter()
            .map(|via| via.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        provenance.tags.join(" "),
    ]
}

fn user_row(user: &StoredUser) -> Vec<String> {
    let profile = user.profile.as_ref();
    let text = |field: fn(&crate::model::UserDoc) -> Option<&String>| {
        profile.and_then(field).cloned().unwrap_or_default()
    };
    let metrics = profile.and_then(|profile| profile.metrics.as_ref());
    vec![
        user.id.clone(),
        user.username.clone().unwrap_or_default(),
        text(|profile| profile.name.as_ref()),
        user.status.as_str().to_owned(),
        profile
            .and_then(|profile| profile.created_at)
            .map(rfc3339)
            .unwrap_or_default(),
        text(|profile| profile.description.as_ref()),
        text(|profile| profile.location.as_ref()),
        text(|profile| profile.url.as_ref()),
        profile
            .map(|profile| profile.protected.to_string())
            .unwrap_or_default(),
        text(|profile| profile.verified_type.as_ref()),
        metric(metrics, "followers_count"),
        metric(metrics, "following_count"),
        metric(metrics, "tweet_count"),
        metric(metrics, "listed_count"),
        rfc3339(user.last_observed_at),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_separators_quotes_or_line_breaks_are_quoted() {
        let line = csv_line(["1", "a,b", "say \"hi\"", "two\nlines", ""].into_iter());
        assert_eq!(line, "1,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",");
    }

    #[test]
    fn xml_text_is_escaped_and_stripped_of_forbidden_controls() {
        assert_eq!(xml_escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }

    #[test]
    fn every_row_has_one_field_per_documented_column() {
        let tweet = TweetDoc::from_api(
            &serde_json::json!({"id": "1", "text": "x"}),
            &crate::xapi::Includes::default(),
            crate::model::Provenance::default(),
        )
        .unwrap();
        assert_eq!(tweet_row(&tweet).len(), TWEET_COLUMNS.len());
        let user = StoredUser {
            id: "1".to_owned(),
            username: None,
            status: crate::model::UserStatus::NotFound,
            last_observed_at: Utc::now(),
            profile: None,
        };
        assert_eq!(user_row(&user).len(), USER_COLUMNS.len());
    }
}
