//! A strict reader of Prometheus' text exposition format (version 0.0.4), for checking what
//! the tools serve at `/metrics`.
//!
//! Strict where a scraper could be misled: every sample belongs to a family declared by
//! `# TYPE` before it, names and label names are valid, label values are quoted and escaped,
//! no series appears twice, and a histogram's buckets grow with `le` and end in a `+Inf`
//! bucket equal to its `_count`. Anything else is an error naming the line.

use std::collections::{BTreeMap, BTreeSet};

/// One sample line: a series and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A family: its `# TYPE` and `# HELP` and the samples that belong to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub kind: String,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

/// A whole exposition, by family name.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub families: BTreeMap<String, Family>,
}

impl Exposition {
    /// Every sample named `name` whose labels include all of `labels`.
    pub fn samples<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.families
            .values()
            .flat_map(|family| family.samples.iter())
            .filter(move |sample| sample.name == name)
            .filter(move |sample| {
                labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
            })
    }

    /// The sum of the samples [`Exposition::samples`] selects (0 when there are none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name, labels).map(|sample| sample.value).sum()
    }

    /// The value of the one sample with exactly these labels, if it exists.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        self.samples(name, &[])
            .find(|sample| sample.labels == wanted)
            .map(|sample| sample.value)
    }
}

/// Reads an exposition, or says which line breaks the format and how.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut exposition = Exposition::default();
    let mut seen = BTreeSet::new();

    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let fail = |message: String| format!("line {number}: {message}: {line:?}");
        if line.trim().is_empty() {
            continue;
        }

        if let Some(rest) = line.strip_prefix("# ") {
            let mut words = rest.splitn(3, ' ');
            let keyword = words.next().unwrap_or_default();
            let name = words.next().unwrap_or_default();
            let tail = words.next();
            match keyword {
                "TYPE" => {
                    check_name(name).map_err(fail)?;
                    let kind = tail.ok_or_else(|| fail("a TYPE without a type".into()))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(fail(format!("unknown type {kind}")));
                    }
                    let family = exposition
                        .families
                        .entry(name.to_owned())
                        .or_insert(Family {
                            kind: String::new(),
                            help: None,
                            samples: Vec::new(),
                        });
                    if !family.kind.is_empty() || !family.samples.is_empty() {
                        return Err(fail("a second TYPE, or a TYPE after samples".into()));
                    }
                    family.kind = kind.to_owned();
                }
                "HELP" => {
                    check_name(name).map_err(fail)?;
                    let family = exposition
                        .families
                        .entry(name.to_owned())
                        .or_insert(Family {
                            kind: String::new(),
                            help: None,
                            samples: Vec::new(),
                        });
                    if family.help.is_some() {
                        return Err(fail("a second HELP".into()));
                    }
                    family.help = Some(tail.unwrap_or_default().to_owned());
                }
                _ => {}
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }

        let sample = parse_sample(line).map_err(fail)?;
        let family_name = family_of(&exposition, &sample.name)
            .ok_or_else(|| fail("a sample of no declared family".into()))?;
        let series = (sample.name.clone(), sample.labels.clone());
        if !seen.insert(series) {
            return Err(fail("a series given twice".into()));
        }
        let family = exposition
            .families
            .get_mut(&family_name)
            .expect("found just above");
        family.samples.push(sample);
    }

    for (name, family) in &exposition.families {
        if family.kind.is_empty() {
            return Err(format!("family {name} has HELP but no TYPE"));
        }
        if family.kind == "histogram" {
            check_histogram(name, family)?;
        }
    }
    Ok(exposition)
}

fn check_name(name: &str) -> Result<(), String> {
    let mut characters = name.chars();
    let valid = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && characters.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if valid {
        Ok(())
    } else {
        Err(format!("invalid metric name {name:?}"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut characters = name.chars();
    let valid = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!("invalid label name {name:?}"))
    }
}

/// The declared family a sample name belongs to: itself, or for histograms and summaries
/// the name without `_bucket`, `_sum` or `_count`.
fn family_of(exposition: &Exposition, sample: &str) -> Option<String> {
    if let Some(family) = exposition.families.get(sample)
        && !family.kind.is_empty()
        && family.kind != "histogram"
    {
        return Some(sample.to_owned());
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = sample.strip_suffix(suffix)?;
        let family = exposition.families.get(base)?;
        let fits = match *suffix {
            "_bucket" => family.kind == "histogram",
            _ => family.kind == "histogram" || family.kind == "summary",
        };
        fits.then(|| base.to_owned())
    })
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "a sample without a value".to_owned())?;
    let name = &line[..name_end];
    check_name(name)?;

    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inside) = rest.strip_prefix('{') {
        let mut characters = inside.char_indices().peekable();
        loop {
            // A label name, `=`, a quoted value, then `,` or `}`.
            let start = match characters.peek() {
                Some((_, '}')) => {
                    let (position, _) = characters.next().expect("peeked");
                    rest = &inside[position + 1..];
                    break;
                }
                Some((position, _)) => *position,
                None => return Err("labels not closed".to_owned()),
            };
            let equals = inside[start..]
                .find('=')
                .ok_or_else(|| "a label without `=`".to_owned())?
                + start;
            let label = &inside[start..equals];
            check_label_name(label)?;
            while characters
                .peek()
                .is_some_and(|(position, _)| *position <= equals)
            {
                characters.next();
            }
            if characters.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("the value of {label} is not quoted"));
            }
            let mut value = String::new();
            loop {
                match characters.next() {
                    Some((_, '\\')) => match characters.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err(format!("a bad escape in the value of {label}")),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("the value of {label} is not closed")),
                }
            }
            if labels.insert(label.to_owned(), value).is_some() {
                return Err(format!("label {label} given twice"));
            }
            match characters.peek() {
                Some((_, ',')) => {
                    characters.next();
                }
                Some((_, '}')) => {}
                _ => return Err("labels not separated by `,`".to_owned()),
            }
        }
    }

    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| "a sample without a value".to_owned())?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number
            .parse::<f64>()
            .map_err(|_| format!("the value {number:?} is not a number"))?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("the timestamp {timestamp:?} is not an integer"))?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp".to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Buckets cumulative in `le`, a `+Inf` bucket equal to `_count`, and a `_sum`, per series.
fn check_histogram(name: &str, family: &Family) -> Result<(), String> {
    type Series = BTreeMap<String, String>;
    let mut buckets: BTreeMap<Series, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<Series, f64> = BTreeMap::new();
    let mut sums: BTreeSet<Series> = BTreeSet::new();
    for sample in &family.samples {
        let mut series = sample.labels.clone();
        if sample.name.ends_with("_bucket") {
            let bound = series
                .remove("le")
                .ok_or_else(|| format!("{name}: a bucket without `le`"))?;
            let bound = match bound.as_str() {
                "+Inf" => f64::INFINITY,
                number => number
                    .parse::<f64>()
                    .map_err(|_| format!("{name}: `le` {number:?} is not a number"))?,
            };
            buckets
                .entry(series)
                .or_default()
                .push((bound, sample.value));
        } else if sample.name.ends_with("_count") {
            counts.insert(series, sample.value);
        } else {
            sums.insert(series);
        }
    }
    for (series, mut bounds) in buckets {
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        if bounds.windows(2).any(|pair| pair[1].1 < pair[0].1) {
            return Err(format!("{name}{series:?}: buckets are not cumulative"));
        }
        let last = bounds.last().expect("at least one bucket");
        if last.0 != f64::INFINITY {
            return Err(format!("{name}{series:?}: no +Inf bucket"));
        }
        if counts.get(&series) != Some(&last.1) {
            return Err(format!(
                "{name}{series:?}: the +Inf bucket is not the count"
            ));
        }
        if !sums.contains(&series) {
            return Err(format!("{name}{series:?}: no _sum"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_exposition_is_read_with_its_labels() {
        let text = "# HELP a_total Things.\n# TYPE a_total counter\n\
                    a_total{x=\"1\",y=\"q\\\"uote\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
                    h_sum 1.5\nh_count 2\n";
        let exposition = parse(text).unwrap();
        assert_eq!(
            exposition.value("a_total", &[("x", "1"), ("y", "q\"uote")]),
            Some(3.0)
        );
        assert_eq!(exposition.sum("h_count", &[]), 2.0);
    }

    #[test]
    fn samples_without_a_family_duplicates_and_broken_histograms_are_refused() {
        assert!(parse("a 1\n").is_err());
        assert!(parse("# TYPE a gauge\na 1\na 2\n").is_err());
        assert!(parse("# TYPE a gauge\na{x=1} 1\n").is_err());
        let shrinking = "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n\
                         h_sum 1\nh_count 1\n";
        assert!(parse(shrinking).is_err());
        let miscounted = "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n";
        assert!(parse(miscounted).is_err());
    }
}
