//! Text with entities: building post, bio and note text while recording entity offsets.
//!
//! X reports entity positions as start (inclusive) and end (exclusive) offsets in Unicode code
//! points of the text, so the builder counts characters, not bytes, as it appends. Entities are
//! recorded at the moment their text is written, which keeps offsets exact for any language.

use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Entities {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<MentionEntity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hashtags: Vec<TagEntity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cashtags: Vec<TagEntity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<UrlEntity>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MentionEntity {
    pub start: usize,
    pub end: usize,
    pub username: String,
    /// The mentioned account's id; X omits it in bios.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip)]
    pub user: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TagEntity {
    pub start: usize,
    pub end: usize,
    pub tag: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct UrlEntity {
    pub start: usize,
    pub end: usize,
    pub url: String,
    pub expanded_url: String,
    pub display_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_key: Option<String>,
}

impl Entities {
    pub fn is_empty(&self) -> bool {
        self.mentions.is_empty()
            && self.hashtags.is_empty()
            && self.cashtags.is_empty()
            && self.urls.is_empty()
    }

    /// Entities shifted by `by` characters, keeping only those ending at or before `limit`.
    pub fn shifted(&self, by: usize, limit: usize) -> Entities {
        Entities {
            mentions: self
                .mentions
                .iter()
                .filter(|e| e.end + by <= limit)
                .map(|e| MentionEntity {
                    start: e.start + by,
                    end: e.end + by,
                    ..e.clone()
                })
                .collect(),
            hashtags: shift_tags(&self.hashtags, by, limit),
            cashtags: shift_tags(&self.cashtags, by, limit),
            urls: self
                .urls
                .iter()
                .filter(|e| e.end + by <= limit)
                .map(|e| UrlEntity {
                    start: e.start + by,
                    end: e.end + by,
                    ..e.clone()
                })
                .collect(),
        }
    }
}

fn shift_tags(tags: &[TagEntity], by: usize, limit: usize) -> Vec<TagEntity> {
    tags.iter()
        .filter(|e| e.end + by <= limit)
        .map(|e| TagEntity {
            start: e.start + by,
            end: e.end + by,
            tag: e.tag.clone(),
        })
        .collect()
}

/// Appends text and entities, tracking the length in code points.
#[derive(Default)]
pub struct TextBuilder {
    pub text: String,
    pub chars: usize,
    pub entities: Entities,
}

impl TextBuilder {
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        // Most words are ASCII, where bytes and code points agree.
        self.chars += if s.is_ascii() { s.len() } else { s.chars().count() };
    }

    /// A space unless at the start or after a space.
    pub fn space(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with(' ') && !self.text.ends_with('\n') {
            self.push(" ");
        }
    }

    pub fn mention(&mut self, username: &str, user: Option<(u32, u64)>) {
        let start = self.chars;
        self.push("@");
        self.push(username);
        self.entities.mentions.push(MentionEntity {
            start,
            end: self.chars,
            username: username.to_string(),
            id: user.map(|(_, id)| id.to_string()),
            user: user.map(|(idx, _)| idx),
        });
    }

    pub fn hashtag(&mut self, tag: &str) {
        let start = self.chars;
        self.push("#");
        self.push(tag);
        let tag = tag.to_string();
        self.entities.hashtags.push(TagEntity {
            start,
            end: self.chars,
            tag,
        });
    }

    pub fn cashtag(&mut self, tag: &str) {
        let start = self.chars;
        self.push("$");
        self.push(tag);
        let tag = tag.to_string();
        self.entities.cashtags.push(TagEntity {
            start,
            end: self.chars,
            tag,
        });
    }

    pub fn url(&mut self, tco: &str, expanded: &str, media_keys: &[String]) {
        let start = self.chars;
        self.push(tco);
        let display = display_url(expanded);
        if media_keys.is_empty() {
            self.entities.urls.push(UrlEntity {
                start,
                end: self.chars,
                url: tco.to_string(),
                expanded_url: expanded.to_string(),
                display_url: display,
                media_key: None,
            });
            return;
        }

        // One entry per attached media item over the same link, as X reports them.
        for (i, key) in media_keys.iter().enumerate() {
            let kind = if key.starts_with("3_") {
                "photo"
            } else {
                "video"
            };
            let expanded = format!("{expanded}/{kind}/{}", i + 1);
            self.entities.urls.push(UrlEntity {
                start,
                end: self.chars,
                url: tco.to_string(),
                display_url: display_url(&expanded),
                expanded_url: expanded,
                media_key: Some(key.clone()),
            });
        }
    }
}

/// X's display form of a link: no scheme, no `www.`, long paths cut with an ellipsis.
pub fn display_url(expanded: &str) -> String {
    let s = expanded
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let s = s.trim_start_matches("www.");
    if s.chars().count() > 26 {
        format!("{}…", s.chars().take(25).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The first `n` characters of `s`.
pub fn take_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_code_points() {
        let mut b = TextBuilder::default();
        b.push("café 🔥");
        b.space();
        b.hashtag("Élection");
        let h = &b.entities.hashtags[0];
        assert_eq!((h.start, h.end), (7, 16));
        let chars: Vec<char> = b.text.chars().collect();
        assert_eq!(chars[h.start], '#');
        assert_eq!(h.end, chars.len());
    }

    #[test]
    fn display_urls_are_shortened() {
        assert_eq!(display_url("https://www.bbc.co.uk/news"), "bbc.co.uk/news");
        assert_eq!(
            display_url("https://www.reuters.com/world/europe/a-very-long-slug-123"),
            "reuters.com/world/europe/…"
        );
    }
}
