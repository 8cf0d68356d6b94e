//! Accounts as people write them: handles, `@handles`, numeric ids and profile URLs, one per
//! line in the files operators keep.
//!
//! Reading such a file never stops at a bad line: each one is reported with its line number
//! and the rest are read. A byte-order mark, Windows line ends, blank lines, `#` comments and
//! surrounding spaces are all accepted, because those files come from spreadsheets, editors
//! and other people's tools.

use std::io::BufRead;

use serde::{Deserialize, Serialize};

/// An account, by numeric id or by username (without `@`, as written).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRef {
    Id(String),
    Username(String),
}

impl AccountRef {
    /// Parses one account: `12345`, `jack`, `@jack`, or `https://x.com/jack`.
    pub fn parse(text: &str) -> Result<AccountRef, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty".to_owned());
        }
        let text = strip_profile_url(text).unwrap_or(text);

        if text.bytes().all(|byte| byte.is_ascii_digit()) {
            let id = text.trim_start_matches('0');
            if id.is_empty() {
                return Err("0 is not an account id".to_owned());
            }
            if id.len() > 19 {
                return Err(format!("`{text}` is too long for a numeric id"));
            }
            return Ok(AccountRef::Id(id.to_owned()));
        }

        let name = text.strip_prefix('@').unwrap_or(text);
        let valid = (1..=15).contains(&name.len())
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if valid {
            Ok(AccountRef::Username(name.to_owned()))
        } else {
            Err(format!(
                "`{text}` is neither a numeric id nor a username (1 to 15 letters, digits or _)"
            ))
        }
    }

    /// The queue key: one job per account however it was written (`@Jack` and `jack` are one).
    pub fn key(&self) -> String {
        match self {
            AccountRef::Id(id) => format!("id:{id}"),
            AccountRef::Username(name) => format!("username:{}", name.to_ascii_lowercase()),
        }
    }

    /// Parses a queue key back.
    pub fn from_key(key: &str) -> Option<AccountRef> {
        if let Some(id) = key.strip_prefix("id:") {
            return Some(AccountRef::Id(id.to_owned()));
        }
        key.strip_prefix("username:")
            .map(|name| AccountRef::Username(name.to_owned()))
    }
}

impl std::fmt::Display for AccountRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountRef::Id(id) => f.write_str(id),
            AccountRef::Username(name) => write!(f, "@{name}"),
        }
    }
}

fn strip_profile_url(text: &str) -> Option<&str> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let rest = rest
        .strip_prefix("x.com/")
        .or_else(|| rest.strip_prefix("twitter.com/"))
        .or_else(|| rest.strip_prefix("mobile.twitter.com/"))?;
    let name = rest.split(['/', '?', '#']).next()?;
    (!name.is_empty()).then_some(name)
}

/// A line that could not be read as an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedLine {
    pub line: usize,
    pub text: String,
    pub reason: String,
}

/// The accounts of a file, in order, with the lines that were rejected.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccountLines {
    /// Line number (from 1) and account.
    pub accounts: Vec<(usize, AccountRef)>,
    pub rejected: Vec<RejectedLine>,
}

/// Reads accounts one per line. Invalid UTF-8 or an unreadable stream is reported as a
/// rejected line where possible, so one bad byte does not lose a 100,000-line file.
pub fn read_account_lines(reader: impl BufRead) -> std::io::Result<AccountLines> {
    let mut lines = AccountLines::default();
    for (index, line) in reader.split(b'\n').enumerate() {
        let number = index + 1;
        let bytes = line?;
        let Ok(text) = String::from_utf8(bytes) else {
            lines.rejected.push(RejectedLine {
                line: number,
                text: String::new(),
                reason: "not valid UTF-8".to_owned(),
            });
            continue;
        };
        let text = if number == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            &text
        };
        let content = text.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        match AccountRef::parse(content) {
            Ok(account) => lines.accounts.push((number, account)),
            Err(reason) => lines.rejected.push(RejectedLine {
                line: number,
                text: content.to_owned(),
                reason,
            }),
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_spelling_parses() {
        assert_eq!(
            AccountRef::parse(" @Jack ").unwrap(),
            AccountRef::Username("Jack".into())
        );
        assert_eq!(
            AccountRef::parse("12").unwrap(),
            AccountRef::Id("12".into())
        );
        assert_eq!(
            AccountRef::parse("https://x.com/some_one/status/1").unwrap(),
            AccountRef::Username("some_one".into())
        );
        assert_eq!(
            AccountRef::parse("https://twitter.com/jack?lang=en").unwrap(),
            AccountRef::Username("jack".into())
        );
        assert!(AccountRef::parse("bad-name").is_err());
        assert!(AccountRef::parse("far_too_long_a_name").is_err());
        assert!(AccountRef::parse("0").is_err());
    }

    #[test]
    fn keys_do_not_depend_on_case_or_the_at_sign() {
        let a = AccountRef::parse("@Jack").unwrap();
        let b = AccountRef::parse("jack").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(
            AccountRef::from_key(&a.key()),
            Some(AccountRef::Username("jack".into()))
        );
    }

    #[test]
    fn a_file_with_bom_crlf_comments_and_bad_lines_is_read_whole() {
        let text = "\u{feff}@alice\r\n\r\n# a comment\r\nbob # trailing\r\nnot valid!\r\n42\r\n";
        let lines = read_account_lines(text.as_bytes()).unwrap();
        assert_eq!(
            lines.accounts,
            vec![
                (1, AccountRef::Username("alice".into())),
                (4, AccountRef::Username("bob".into())),
                (6, AccountRef::Id("42".into())),
            ]
        );
        assert_eq!(lines.rejected.len(), 1);
        assert_eq!(lines.rejected[0].line, 5);
        assert!(lines.rejected[0].reason.contains("neither"));
    }

    #[test]
    fn invalid_utf8_rejects_one_line_only() {
        let mut bytes = b"alice\n".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        bytes.extend_from_slice(b"bob\n");
        let lines = read_account_lines(&bytes[..]).unwrap();
        assert_eq!(lines.accounts.len(), 2);
        assert_eq!(lines.rejected[0].line, 2);
    }
}
