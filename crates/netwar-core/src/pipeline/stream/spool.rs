//! The on-disk spool between the stream and the stores.
//!
//! X disconnects a client that reads too slowly, and a store can be slow or down for minutes.
//! So the stream reader never waits for a store: every tweet line is appended, as it arrived,
//! to a segment file in the spool directory, and the writer drains the segments in order,
//! recording how far it got (the cursor) only after the stores confirmed. A process killed at
//! any moment finds on restart what it had received and not yet stored, and stores it again
//! from the cursor on; storing is idempotent, so a line stored twice changes nothing.
//!
//! Memory stays bounded whatever the backlog: the writer reads a bounded batch at a time.
//! Disk is bounded too: when the spool holds `max_bytes`, the reader stops reading (the
//! connection is closed and the time it is closed becomes a gap to fill), rather than drop
//! what it received.
//!
//! Files: `<seq>.jsonl` segments of lines `{"r":<received ms>,"t":<the tweet line>}`, and
//! `cursor` (`<seq> <byte offset>`), replaced atomically.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::xapi::StreamedTweet;

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// The most bytes the writer reads at once.
const READ_BYTES: usize = 4 * 1024 * 1024;

/// One spooled tweet.
#[derive(Debug, Deserialize)]
pub struct SpoolEntry {
    /// When it arrived, milliseconds since the Unix epoch.
    #[serde(rename = "r")]
    pub received_ms: i64,
    #[serde(rename = "t")]
    pub tweet: StreamedTweet,
}

/// A position in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpoolPosition {
    pub segment: u64,
    pub offset: u64,
}

/// What reader and writer share: the backlog's size.
#[derive(Debug, Default)]
pub struct SpoolGauge {
    bytes: AtomicU64,
    lines: AtomicU64,
    pub notify: tokio::sync::Notify,
}

impl SpoolGauge {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Tweets waiting to be stored.
    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }
}

/// Opens the spool in `dir`: the appending half for the stream reader and the draining half
/// for the writer, sharing a gauge.
pub fn open(dir: &Path) -> Result<(SpoolAppender, SpoolDrain, Arc<SpoolGauge>)> {
    std::fs::create_dir_all(dir).map_err(|error| Error::io("cannot create", dir, error))?;
    let segments = segments(dir)?;
    let cursor = read_cursor(dir)?.unwrap_or(SpoolPosition {
        segment: segments.first().copied().unwrap_or(1),
        offset: 0,
    });

    // What a previous run left unstored is the backlog we start with.
    let gauge = Arc::new(SpoolGauge::default());
    for &segment in segments
        .iter()
        .filter(|segment| **segment >= cursor.segment)
    {
        let path = segment_path(dir, segment);
        let mut text = Vec::new();
        std::fs::File::open(&path)
            .and_then(|mut file| file.read_to_end(&mut text))
            .map_err(|error| Error::io("cannot read", &path, error))?;
        let start = if segment == cursor.segment {
            (cursor.offset as usize).min(text.len())
        } else {
            0
        };
        let rest = &text[start..];
        gauge.bytes.fetch_add(rest.len() as u64, Ordering::Relaxed);
        let lines = rest.iter().filter(|byte| **byte == b'\n').count() as u64;
        gauge.lines.fetch_add(lines, Ordering::Relaxed);
    }

    // Appends always go to a new segment: the last one may end in a line cut by a crash.
    let next = segments
        .last()
        .map_or(cursor.segment, |last| last + 1)
        .max(cursor.segment);
    let appender = SpoolAppender::new(dir, next, Arc::clone(&gauge))?;
    let drain = SpoolDrain {
        dir: dir.to_path_buf(),
        position: cursor,
        gauge: Arc::clone(&gauge),
    };
    Ok((appender, drain, gauge))
}

/// The appending half.
#[derive(Debug)]
pub struct SpoolAppender {
    dir: PathBuf,
    segment: u64,
    file: std::fs::File,
    written: u64,
    gauge: Arc<SpoolGauge>,
}

impl SpoolAppender {
    fn new(dir: &Path, segment: u64, gauge: Arc<SpoolGauge>) -> Result<SpoolAppender> {
        let path = segment_path(dir, segment);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| Error::io("cannot open", &path, error))?;
        let written = file.metadata().map(|meta| meta.len()).unwrap_or(0);
        Ok(SpoolAppender {
            dir: dir.to_path_buf(),
            segment,
            file,
            written,
            gauge,
        })
    }

    /// Appends one tweet line as received at `received_ms`. One write per line, so a process
    /// killed between lines leaves whole lines behind.
    pub fn append(&mut self, received_ms: i64, line: &[u8]) -> Result<()> {
        if self.written >= SEGMENT_BYTES {
            *self = SpoolAppender::new(&self.dir, self.segment + 1, Arc::clone(&self.gauge))?;
        }
        let mut record = Vec::with_capacity(line.len() + 32);
        record.extend_from_slice(format!("{{\"r\":{received_ms},\"t\":").as_bytes());
        record.extend_from_slice(line);
        record.extend_from_slice(b"}\n");
        self.file.write_all(&record).map_err(|error| {
            Error::io(
                "cannot append to",
                segment_path(&self.dir, self.segment),
                error,
            )
        })?;

        self.written += record.len() as u64;
        self.gauge
            .bytes
            .fetch_add(record.len() as u64, Ordering::Relaxed);
        self.gauge.lines.fetch_add(1, Ordering::Relaxed);
        self.gauge.notify.notify_one();
        Ok(())
    }
}

/// The draining half.
#[derive(Debug)]
pub struct SpoolDrain {
    dir: PathBuf,
    position: SpoolPosition,
    gauge: Arc<SpoolGauge>,
}

/// A batch read from the spool, to [`SpoolDrain::commit`] once stored.
#[derive(Debug)]
pub struct SpoolBatch {
    pub entries: Vec<SpoolEntry>,
    /// Lines that could not be read (cut by a crash, or corrupt); they are skipped.
    pub unreadable: u64,
    end: SpoolPosition,
    lines: u64,
    bytes: u64,
}

impl SpoolDrain {
    /// Up to `max` tweets from the cursor on (fewer, or none, when fewer are waiting).
    pub fn read(&mut self, max: usize) -> Result<SpoolBatch> {
        let mut batch = SpoolBatch {
            entries: Vec::new(),
            unreadable: 0,
            end: self.position,
            lines: 0,
            bytes: 0,
        };
        loop {
            let path = segment_path(&self.dir, batch.end.segment);
            let buffer = match read_from(&path, batch.end.offset) {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(error) => return Err(Error::io("cannot read", &path, error)),
            };

            let mut consumed = 0;
            for line in buffer.split_inclusive(|byte| *byte == b'\n') {
                if batch.entries.len() >= max || !line.ends_with(b"\n") {
                    break;
                }
                consumed += line.len();
                batch.lines += 1;
                match serde_json::from_slice::<SpoolEntry>(line) {
                    Ok(entry) => batch.entries.push(entry),
                    Err(error) => {
                        batch.unreadable += 1;
                        tracing::warn!(spool = %path.display(), %error,
                            "Skipping an unreadable spool line.");
                    }
                }
            }
            batch.end.offset += consumed as u64;
            batch.bytes += consumed as u64;

            // A segment is finished once a newer one exists and nothing whole is left in it.
            let rest = &buffer[consumed..];
            let newer = segment_path(&self.dir, batch.end.segment + 1).exists();
            if batch.entries.len() >= max || !newer || rest.contains(&b'\n') {
                break;
            }
            if !rest.is_empty() {
                // A line cut short by a crash; the segment will never grow again.
                batch.unreadable += 1;
                batch.bytes += rest.len() as u64;
            }
            batch.end = SpoolPosition {
                segment: batch.end.segment + 1,
                offset: 0,
            };
        }
        Ok(batch)
    }

    /// Records that a batch is stored: the cursor moves past it and finished segments go.
    pub fn commit(&mut self, batch: &SpoolBatch) -> Result<()> {
        if batch.end == self.position {
            return Ok(());
        }
        let cursor = self.dir.join("cursor");
        let temporary = self.dir.join("cursor.tmp");
        let text = format!("{} {}\n", batch.end.segment, batch.end.offset);
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, &cursor))
            .map_err(|error| Error::io("cannot write", &cursor, error))?;

        for segment in self.position.segment..batch.end.segment {
            let path = segment_path(&self.dir, segment);
            if let Err(error) = std::fs::remove_file(&path)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(spool = %path.display(), %error, "Cannot remove a segment.");
            }
        }
        self.position = batch.end;
        let bytes = batch.bytes.min(self.gauge.bytes());
        self.gauge.bytes.fetch_sub(bytes, Ordering::Relaxed);
        let lines = batch.lines.min(self.gauge.lines());
        self.gauge.lines.fetch_sub(lines, Ordering::Relaxed);
        Ok(())
    }
}

fn read_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut buffer = Vec::new();
    file.take(READ_BYTES as u64).read_to_end(&mut buffer)?;
    Ok(buffer)
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:012}.jsonl"))
}

fn segments(dir: &Path) -> Result<Vec<u64>> {
    let entries = std::fs::read_dir(dir).map_err(|error| Error::io("cannot list", dir, error))?;
    let mut segments: Vec<u64> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_suffix(".jsonl")?.parse().ok()
        })
        .collect();
    segments.sort_unstable();
    Ok(segments)
}

fn read_cursor(dir: &Path) -> Result<Option<SpoolPosition>> {
    let path = dir.join("cursor");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Error::io("cannot read", &path, error)),
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(segment)), Some(Ok(offset))) => Ok(Some(SpoolPosition { segment, offset })),
        _ => Err(Error::Config {
            path,
            message: "not a spool cursor (`<segment> <offset>`)".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u64) -> Vec<u8> {
        format!("{{\"data\":{{\"id\":\"{id}\",\"text\":\"t\"}}}}").into_bytes()
    }

    fn ids(batch: &SpoolBatch) -> Vec<String> {
        batch
            .entries
            .iter()
            .map(|entry| entry.tweet.data["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn lines_come_back_in_order_and_only_once_committed_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut appender, mut drain, gauge) = open(dir.path()).unwrap();
        for id in 1..=5 {
            appender.append(id as i64, &line(id)).unwrap();
        }
        assert_eq!(gauge.lines(), 5);

        let batch = drain.read(3).unwrap();
        assert_eq!(ids(&batch), vec!["1", "2", "3"]);
        assert_eq!(batch.entries[0].received_ms, 1);
        // Not committed: a restart sees the same lines again.
        drop((appender, drain));
        let (_appender, mut drain, gauge) = open(dir.path()).unwrap();
        assert_eq!(gauge.lines(), 5);
        let batch = drain.read(3).unwrap();
        assert_eq!(ids(&batch), vec!["1", "2", "3"]);
        drain.commit(&batch).unwrap();
        assert_eq!(gauge.lines(), 2);

        drop(drain);
        let (_appender, mut drain, gauge) = open(dir.path()).unwrap();
        assert_eq!(gauge.lines(), 2);
        let batch = drain.read(10).unwrap();
        assert_eq!(ids(&batch), vec!["4", "5"]);
        drain.commit(&batch).unwrap();
        assert_eq!(gauge.lines(), 0);
        assert!(drain.read(10).unwrap().entries.is_empty());
    }

    #[test]
    fn a_line_cut_by_a_crash_is_skipped_and_later_segments_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let (mut appender, _drain, _gauge) = open(dir.path()).unwrap();
        appender.append(1, &line(1)).unwrap();
        drop(appender);
        let first = segment_path(dir.path(), 1);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(first)
            .unwrap();
        file.write_all(b"{\"r\":2,\"t\":{\"da").unwrap();

        let (mut appender, mut drain, _gauge) = open(dir.path()).unwrap();
        appender.append(3, &line(3)).unwrap();
        let batch = drain.read(10).unwrap();
        assert_eq!(ids(&batch), vec!["1", "3"]);
        assert_eq!(batch.unreadable, 1);
        drain.commit(&batch).unwrap();
        assert!(!segment_path(dir.path(), 1).exists());
    }
}
