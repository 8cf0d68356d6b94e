//! The rule language of X's filtered stream and search: parsing, validation and matching.
//!
//! The simulator takes filtered-stream rules (`POST /2/tweets/search/stream/rules`) and search
//! queries (`/2/tweets/search/*`, `/2/tweets/counts/*`) and has to treat them as X does: refuse
//! what X refuses, in X's wording, and deliver or return the posts X would. A client that builds
//! rules for X is only checked by the simulator if both read rules the same way, so the language
//! lives here, in one place: [`parse`] turns a rule value into a [`Query`] or a [`RuleError`], and
//! [`Query::matches`] says whether one post matches.
//!
//! The language, as X documents it:
//! - whitespace is AND, the uppercase word `OR` is OR, AND binds tighter than OR, and
//!   parentheses group;
//! - a leading `-` negates one term or operator; it may not negate a parenthesised group nor
//!   `sample:`, and a rule made only of negations is refused;
//! - keywords match the tokens of the text case-insensitively, so `cat` matches "Cat!" but not
//!   "category"; on the stream accents count (`diacrítica` does not match "diacritica"), in search
//!   they do not;
//! - a double-quoted phrase, and any keyword with punctuation inside (`coca-cola`), matches a run
//!   of consecutive tokens; `"a b"~N` (N from 1 to 6) matches both words at most N tokens apart;
//! - operators: `from:`, `to:` and `retweets_of:` with one username or one numeric user id,
//!   `@name`, `#tag`, `$tag`, `url:`, `is:retweet|reply|quote`,
//!   `has:media|links|geo|mentions|hashtags|cashtags`, `lang:` and `sample:`;
//! - `is:`, `has:`, `lang:` and `sample:` are conjunction-required: every alternative of a rule
//!   needs a positive standalone clause beside them, since alone they would match a large share
//!   of all posts;
//! - on the stream a keyword also matches the text of the quoted post; search does not do that.
//!
//! Matching allocates nothing. Words are lowercased once, at parse time, and the post's text is
//! split into tokens lazily while a keyword is looked for, so a post can be checked against a
//! thousand rules without any preparation per post.
//!
//! Error texts quoted from X's real responses are reproduced as X wrote them; the others are
//! modelled on them and marked "unconfirmed" where they are built.

use std::fmt;

/// The largest distance X accepts in a proximity phrase `"a b"~N`.
const MAX_PROXIMITY: usize = 6;

/// `sample:` takes a percentage of the matching posts.
const MAX_SAMPLE_PERCENT: u32 = 100;

/// One post, as a rule sees it: its text and the entities already extracted from it.
///
/// Every field borrows, so the caller builds one per post at no cost; `Default` gives an empty
/// post, useful when only a few fields matter.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatchInput<'a> {
    /// The full text (the `note_tweet` text where there is one).
    pub text: &'a str,
    pub author_id: u64,
    pub author_username: &'a str,
    pub in_reply_to_user_id: Option<u64>,
    pub in_reply_to_username: Option<&'a str>,
    pub retweet_of_user_id: Option<u64>,
    pub retweet_of_username: Option<&'a str>,
    /// The quoted post's text; keywords match it on the stream and not in search.
    pub quoted_text: Option<&'a str>,
    /// Mentioned users as (user id, username).
    pub mentions: &'a [(u64, &'a str)],
    /// Hashtags without the leading `#`.
    pub hashtags: &'a [&'a str],
    /// Cashtags without the leading `$`.
    pub cashtags: &'a [&'a str],
    /// Expanded URLs.
    pub urls: &'a [&'a str],
    pub lang: &'a str,
    pub is_retweet: bool,
    pub is_reply: bool,
    pub is_quote: bool,
    pub has_media: bool,
    pub has_links: bool,
    pub has_geo: bool,
}

/// Where a rule is evaluated; the filtered stream and search read keywords differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Filtered stream: keywords also match the quoted post's text, and accents count.
    Stream,
    /// Search and counts: keywords match the post's own text only, and accents are ignored.
    Search,
}

/// A valid rule, ready to match. Parse it once with [`parse`] and keep it with the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    root: Node,
}

/// Why a rule value was refused, so the caller can choose the response X gives for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleErrorKind {
    /// The value is empty or only whitespace.
    Empty,
    /// The value has more characters than the caller's limit.
    TooLong,
    /// The value cannot be read: unbalanced parentheses or quotes, a missing operand.
    Syntax,
    /// The value reads but X refuses it: only negations, only conjunction-required operators,
    /// an unknown operator, an operator value that is not allowed.
    Invalid,
}

/// A refused rule value, described the way X describes it.
///
/// A rules response carries [`details`](Self::details) as `errors[].details`; search answers with
/// "There were errors processing your request: " followed by the details joined with ", ", which
/// is what `Display` gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub kind: RuleErrorKind,
    /// The first problem, e.g. "Rules must contain a non-negation term (at position 1)".
    pub detail: String,
    /// Every problem found, in the order X lists them; the first is `detail`.
    pub details: Vec<String>,
}

impl RuleError {
    fn new(kind: RuleErrorKind, details: Vec<String>) -> Self {
        let detail = details.first().cloned().unwrap_or_default();
        RuleError {
            kind,
            detail,
            details,
        }
    }

    fn syntax(src: &str, byte: usize, what: &str) -> Self {
        let position = position(src, byte);
        RuleError::new(
            RuleErrorKind::Syntax,
            vec![format!("{what} (at position {position})")],
        )
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.details.join(", "))
    }
}

impl std::error::Error for RuleError {}

/// Parses and validates one rule value of at most `max_len` characters.
///
/// `max_len` is the caller's limit for the access level and endpoint (512 or 1,024 for search,
/// 1,024 or 2,048 for stream rules). Every problem X would report is collected, except that the
/// first syntax error ends the reading.
///
/// # Errors
///
/// A [`RuleError`] holding every problem X would report, for any value X would refuse.
pub fn parse(value: &str, max_len: usize) -> Result<Query, RuleError> {
    if value.trim().is_empty() {
        // Unconfirmed text: X's rule endpoint refuses an empty value before reading it, in words
        // not seen; search says "Invalid 'query':''. 'query' must be a non-empty string".
        return Err(RuleError::new(
            RuleErrorKind::Empty,
            vec!["Rule value must be a non-empty string".to_owned()],
        ));
    }
    // Counted in characters rather than bytes, as X counts post text.
    if value.chars().count() > max_len {
        // Unconfirmed text: X's exact wording for an over-long rule or query was not found.
        return Err(RuleError::new(
            RuleErrorKind::TooLong,
            vec![format!(
                "Rule length exceeds the maximum allowed ({max_len} characters)"
            )],
        ));
    }
    let tokens = lex(value)?;
    let mut parser = Parser {
        src: value,
        tokens,
        next: 0,
        depth: 0,
        problems: Vec::new(),
    };
    let root = parser.parse_rule()?;
    let details = validate(&root, parser.problems);
    if details.is_empty() {
        Ok(Query { root })
    } else {
        Err(RuleError::new(RuleErrorKind::Invalid, details))
    }
}

impl Query {
    /// Whether `tweet` matches this rule when evaluated in `context`.
    #[must_use]
    pub fn matches(&self, tweet: &MatchInput<'_>, context: Context) -> bool {
        self.root.eval(tweet, context)
    }
}

// ---------------------------------------------------------------------------------------------
// The parsed form.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// One term or operator; `pos` is the 1-based character position of its first character
    /// (the `-` when negated), which is where X points its messages.
    Leaf {
        term: Term,
        negated: bool,
        pos: usize,
    },
    And(Vec<Node>),
    Or(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    /// One lowercased token.
    Keyword(String),
    /// Lowercased tokens that must follow each other.
    Phrase(Vec<String>),
    /// Lowercased tokens, each within `distance` tokens of the first.
    Near {
        words: Vec<String>,
        distance: usize,
    },
    Hashtag(String),
    Cashtag(String),
    Mention(String),
    From(UserRef),
    To(UserRef),
    RetweetsOf(UserRef),
    /// Lowercased part of an expanded URL.
    Url(String),
    Flag(Flag),
    Lang(String),
    Sample(u32),
    /// Stands where a refused clause was, so that reading can go on and report every problem
    /// at once; a rule holding one is never returned. `conjunction` keeps whether the clause
    /// looked conjunction-required (`has:polls`), as X still counts it as such.
    Invalid {
        conjunction: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum UserRef {
    Id(u64),
    /// Lowercased username.
    Name(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Retweet,
    Reply,
    Quote,
    Media,
    Links,
    Geo,
    Mentions,
    Hashtags,
    Cashtags,
}

impl Term {
    /// Whether the clause may carry a rule by itself.
    fn is_standalone(&self) -> bool {
        match self {
            Term::Flag(_) | Term::Lang(_) | Term::Sample(_) => false,
            Term::Invalid { conjunction } => !conjunction,
            _ => true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading: characters to lexemes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lexeme<'s> {
    Open,
    Close,
    Or,
    And,
    /// A `-` glued to what follows it.
    Minus,
    /// A run of characters up to whitespace, a parenthesis or a double quote.
    Word(&'s str),
    /// `"body"`, with the digits of a `~N` suffix when there is one (possibly none after `~`).
    Quoted {
        body: &'s str,
        proximity: Option<&'s str>,
    },
    /// `name:"body"`, an operator with a quoted value such as `url:"https://x.com/a b"`.
    OpQuoted {
        name: &'s str,
        body: &'s str,
    },
}

#[derive(Debug, Clone, Copy)]
struct Token<'s> {
    lexeme: Lexeme<'s>,
    /// Byte offset in the rule value.
    at: usize,
}

fn lex(src: &str) -> Result<Vec<Token<'_>>, RuleError> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while let Some(c) = src[at..].chars().next() {
        let after = at + c.len_utf8();
        let (lexeme, end) = match c {
            c if c.is_whitespace() => {
                at = after;
                continue;
            }
            '(' => (Lexeme::Open, after),
            ')' => (Lexeme::Close, after),
            // A `-` followed by a space is an ordinary word, refused later as one without text.
            '-' if src[after..]
                .chars()
                .next()
                .is_some_and(|n| !n.is_whitespace()) =>
            {
                (Lexeme::Minus, after)
            }
            '"' => {
                let (body, end) = quoted(src, at)?;
                let (proximity, end) = proximity_suffix(src, end);
                (Lexeme::Quoted { body, proximity }, end)
            }
            // X's reader has no single-quoted strings and stops on the quote itself.
            '\'' => {
                return Err(RuleError::syntax(
                    src,
                    at,
                    "no viable alternative at character '''",
                ));
            }
            _ => {
                let end = word_end(src, at);
                let word = &src[at..end];
                let operator = word
                    .strip_suffix(':')
                    .filter(|name| is_operator_name(name) && src[end..].starts_with('"'));
                match (word, operator) {
                    (_, Some(name)) => {
                        let (body, end) = quoted(src, end)?;
                        (Lexeme::OpQuoted { name, body }, end)
                    }
                    ("OR", None) => (Lexeme::Or, end),
                    ("AND", None) => (Lexeme::And, end),
                    _ => (Lexeme::Word(word), end),
                }
            }
        };
        tokens.push(Token { lexeme, at });
        at = end;
    }
    Ok(tokens)
}

/// The body of the double-quoted string opening at byte `open`, and the byte after it.
fn quoted(src: &str, open: usize) -> Result<(&str, usize), RuleError> {
    let start = open + 1;
    match src[start..].find('"') {
        Some(len) => Ok((&src[start..start + len], start + len + 1)),
        // Modelled on the message X gives for a single quote.
        None => Err(RuleError::syntax(
            src,
            open,
            "no viable alternative at character '\"'",
        )),
    }
}

/// The digits of a `~N` right after a closing quote, and the byte after them.
fn proximity_suffix(src: &str, at: usize) -> (Option<&str>, usize) {
    if !src[at..].starts_with('~') {
        return (None, at);
    }
    let start = at + 1;
    let len = src[start..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(src.len() - start);
    (Some(&src[start..start + len]), start + len)
}

fn word_end(src: &str, start: usize) -> usize {
    src[start..]
        .find(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '"'))
        .map_or(src.len(), |len| start + len)
}

/// Whether `name` in `name:value` is read as an operator. Only letters and underscores are, so
/// `12:30` stays a keyword while `http://…` is refused as an unknown operator, as on X.
fn is_operator_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
}

/// The 1-based character position X reports for byte offset `byte`.
fn position(src: &str, byte: usize) -> usize {
    src[..byte].chars().count() + 1
}

// ---------------------------------------------------------------------------------------------
// Reading: lexemes to the tree.

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token<'s>>,
    next: usize,
    /// How many parentheses are open, to tell a stray `)` from an empty group.
    depth: usize,
    /// Refusals that do not stop the reading, in the order met.
    problems: Vec<String>,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Option<Lexeme<'s>> {
        self.tokens.get(self.next).map(|t| t.lexeme)
    }

    /// Byte offset of the next lexeme, or the end of the value.
    fn at(&self) -> usize {
        self.tokens.get(self.next).map_or(self.src.len(), |t| t.at)
    }

    fn position(&self, byte: usize) -> usize {
        position(self.src, byte)
    }

    fn parse_rule(&mut self) -> Result<Node, RuleError> {
        let root = self.parse_or()?;
        match self.peek() {
            None => Ok(root),
            // parse_or stops only at the end or at a `)`, so this is a `)` with no `(`.
            Some(_) => Err(RuleError::syntax(self.src, self.at(), "missing EOF at ')'")),
        }
    }

    fn parse_or(&mut self) -> Result<Node, RuleError> {
        let mut arms = Vec::new();
        let mut last_or = None;
        loop {
            match self.parse_and()? {
                Some(arm) => arms.push(arm),
                None => return Err(self.missing_operand(last_or)),
            }
            if self.peek() != Some(Lexeme::Or) {
                return Ok(collapse(arms, Node::Or));
            }
            last_or = Some(self.at());
            self.next += 1;
        }
    }

    /// The error for an empty side of `OR`, an empty group or an empty rule.
    fn missing_operand(&self, last_or: Option<usize>) -> RuleError {
        // Modelled on X's "no viable alternative at input '[' (at position 1)".
        if let Some(or_at) = last_or {
            return RuleError::syntax(self.src, or_at, "no viable alternative at input 'OR'");
        }
        let what = match self.peek() {
            Some(Lexeme::Or) => "no viable alternative at input 'OR'",
            Some(Lexeme::Close) if self.depth == 0 => "missing EOF at ')'",
            Some(Lexeme::Close) => "no viable alternative at input ')'",
            _ => "no viable alternative at input '<EOF>'",
        };
        RuleError::syntax(self.src, self.at(), what)
    }

    fn parse_and(&mut self) -> Result<Option<Node>, RuleError> {
        let mut items = Vec::new();
        while let Some(lexeme) = self.peek() {
            match lexeme {
                Lexeme::Or | Lexeme::Close => break,
                Lexeme::And => {
                    // X's own words; it refuses the rule rather than guess what was meant.
                    let pos = self.position(self.at());
                    self.problems.push(format!(
                        "Ambiguous use of and as a keyword. Use a space to logically join two \
                         clauses, or \"and\" to find occurrences of and in text (at position \
                         {pos})"
                    ));
                    self.next += 1;
                }
                _ => items.push(self.parse_unary()?),
            }
        }
        Ok((!items.is_empty()).then(|| collapse(items, Node::And)))
    }

    fn parse_unary(&mut self) -> Result<Node, RuleError> {
        let start = self.at();
        let pos = self.position(start);
        // `--b` reads as one negation: X answers it like `-b`, with the messages for a rule
        // without a positive term.
        let mut negated = false;
        while self.peek() == Some(Lexeme::Minus) {
            negated = true;
            self.next += 1;
        }
        let term_at = self.at();
        let term = match self.peek() {
            Some(Lexeme::Open) => {
                let group = self.parse_group()?;
                if !negated {
                    return Ok(group);
                }
                // X's documentation forbids negating a group; its message for it was not found.
                self.problems.push(format!(
                    "Negation of a grouped clause is not supported; negate each clause \
                     instead (at position {pos})"
                ));
                Term::Invalid { conjunction: false }
            }
            Some(Lexeme::Word(word)) => {
                self.next += 1;
                self.word_term(word, term_at)
            }
            Some(Lexeme::Quoted { body, proximity }) => {
                self.next += 1;
                self.quoted_term(body, proximity, term_at)
            }
            Some(Lexeme::OpQuoted { name, body }) => {
                self.next += 1;
                self.operator_term(name, body, term_at)
            }
            // Only reachable after a `-`: parse_and hands over no other lexeme.
            _ => {
                return Err(RuleError::syntax(
                    self.src,
                    start,
                    "no viable alternative at input '-'",
                ));
            }
        };
        if negated && matches!(term, Term::Sample(_)) {
            // Unconfirmed text; the restriction itself is documented.
            self.problems.push(format!(
                "The sample operator cannot be negated (at position {pos})"
            ));
        }
        Ok(Node::Leaf { term, negated, pos })
    }

    fn parse_group(&mut self) -> Result<Node, RuleError> {
        self.next += 1;
        self.depth += 1;
        let inner = self.parse_or()?;
        self.depth -= 1;
        if self.peek() == Some(Lexeme::Close) {
            self.next += 1;
            Ok(inner)
        } else {
            // Modelled on the parser messages X shows ("missing EOF at ')'").
            Err(RuleError::syntax(
                self.src,
                self.src.len(),
                "missing ')' at '<EOF>'",
            ))
        }
    }

    fn word_term(&mut self, word: &str, at: usize) -> Term {
        let pos = self.position(at);
        if let Some(tag) = word.strip_prefix('#') {
            return self.entity_term(word, tag, pos, Term::Hashtag);
        }
        if let Some(tag) = word.strip_prefix('$') {
            return self.entity_term(word, tag, pos, Term::Cashtag);
        }
        if let Some(name) = word.strip_prefix('@') {
            if is_username(name) {
                return Term::Mention(name.to_ascii_lowercase());
            }
            return self.invalid_value("@", name, pos, false);
        }
        if let Some((name, value)) = word.split_once(':').filter(|(n, _)| is_operator_name(n)) {
            return self.operator_term(name, value, at);
        }
        self.keyword_term(word, pos)
    }

    /// `#tag` and `$tag`: exact entity matches, not tokenised.
    fn entity_term(&mut self, word: &str, tag: &str, pos: usize, make: fn(String) -> Term) -> Term {
        if tag.is_empty() {
            return self.nothing_to_match(word, pos);
        }
        make(lowercase(tag))
    }

    fn keyword_term(&mut self, word: &str, pos: usize) -> Term {
        let words: Vec<String> = Words::new(word).map(lowercase).collect();
        match words.len() {
            0 => self.nothing_to_match(word, pos),
            1 => Term::Keyword(words.concat()),
            // Punctuation inside a keyword splits it into tokens that must follow each other,
            // which is how X treats `coca-cola`.
            _ => Term::Phrase(words),
        }
    }

    fn quoted_term(&mut self, body: &str, proximity: Option<&str>, at: usize) -> Term {
        let pos = self.position(at);
        let words: Vec<String> = Words::new(body).map(lowercase).collect();
        if words.is_empty() {
            return self.nothing_to_match(&format!("\"{body}\""), pos);
        }
        let Some(digits) = proximity else {
            return if words.len() == 1 {
                Term::Keyword(words.concat())
            } else {
                Term::Phrase(words)
            };
        };
        match digits.parse::<usize>() {
            Ok(distance) if (1..=MAX_PROXIMITY).contains(&distance) => {
                Term::Near { words, distance }
            }
            _ => {
                // Unconfirmed text; the limit of 6 is documented.
                self.problems.push(format!(
                    "Proximity distance must be between 1 and {MAX_PROXIMITY}, not '{digits}' \
                     (at position {pos})"
                ));
                Term::Invalid { conjunction: false }
            }
        }
    }

    fn operator_term(&mut self, name: &str, value: &str, at: usize) -> Term {
        let pos = self.position(at);
        let conjunction = matches!(name, "is" | "has" | "lang" | "sample");
        let standalone = matches!(name, "from" | "to" | "retweets_of" | "url");
        if !conjunction && !standalone {
            // X's words, e.g. for `since:` and `h:m`.
            self.problems.push(format!(
                "Reference to invalid operator '{name}' (at position {pos})"
            ));
            return Term::Invalid { conjunction: false };
        }
        if value.is_empty() {
            return self.nothing_to_match(&format!("{name}:"), pos);
        }
        let term = match (name, value) {
            ("from", _) => user_ref(value).map(Term::From),
            ("to", _) => user_ref(value).map(Term::To),
            ("retweets_of", _) => user_ref(value).map(Term::RetweetsOf),
            ("url", _) => Some(Term::Url(lowercase(value))),
            ("is", "retweet") => Some(Term::Flag(Flag::Retweet)),
            ("is", "reply") => Some(Term::Flag(Flag::Reply)),
            ("is", "quote") => Some(Term::Flag(Flag::Quote)),
            ("has", "media") => Some(Term::Flag(Flag::Media)),
            ("has", "links") => Some(Term::Flag(Flag::Links)),
            ("has", "geo") => Some(Term::Flag(Flag::Geo)),
            ("has", "mentions") => Some(Term::Flag(Flag::Mentions)),
            ("has", "hashtags") => Some(Term::Flag(Flag::Hashtags)),
            ("has", "cashtags") => Some(Term::Flag(Flag::Cashtags)),
            ("is" | "has", _) => {
                // X names the whole clause here: "Reference to invalid operator 'has:polls'".
                self.problems.push(format!(
                    "Reference to invalid operator '{name}:{value}' (at position {pos})"
                ));
                return Term::Invalid { conjunction: true };
            }
            ("lang", _) => is_language_tag(value).then(|| Term::Lang(value.to_ascii_lowercase())),
            ("sample", _) => value
                .parse::<u32>()
                .ok()
                .filter(|percent| (1..=MAX_SAMPLE_PERCENT).contains(percent))
                .map(Term::Sample),
            _ => None,
        };
        match term {
            Some(term) => term,
            None => self.invalid_value(name, value, pos, conjunction),
        }
    }

    /// A clause that names nothing to look for: `#`, `from:`, `""`, `!!!`.
    fn nothing_to_match(&mut self, text: &str, pos: usize) -> Term {
        // Modelled on X's "no viable alternative at input '[' (at position 1)".
        self.problems.push(format!(
            "no viable alternative at input '{text}' (at position {pos})"
        ));
        Term::Invalid { conjunction: false }
    }

    fn invalid_value(&mut self, name: &str, value: &str, pos: usize, conjunction: bool) -> Term {
        // Unconfirmed text: X's wording for a malformed operator value was not found.
        self.problems.push(format!(
            "Invalid value '{value}' for operator '{name}' (at position {pos})"
        ));
        Term::Invalid { conjunction }
    }
}

fn collapse(mut nodes: Vec<Node>, join: fn(Vec<Node>) -> Node) -> Node {
    if nodes.len() == 1 {
        nodes.swap_remove(0)
    } else {
        join(nodes)
    }
}

/// One numeric user id (digits only, as X reads them) or one username without `@`.
fn user_ref(value: &str) -> Option<UserRef> {
    if !value.is_empty() && value.len() <= 19 && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(UserRef::Id);
    }
    is_username(value).then(|| UserRef::Name(value.to_ascii_lowercase()))
}

fn is_username(name: &str) -> bool {
    (1..=15).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A BCP 47 style tag such as `en`, `und` or `zh-tw`. X checks against its own list of
/// languages; the simulator only checks the shape.
fn is_language_tag(value: &str) -> bool {
    let mut parts = value.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

// ---------------------------------------------------------------------------------------------
// Validation of the whole tree.

/// Every message X gives for the rule, or none when it is accepted.
fn validate(root: &Node, problems: Vec<String>) -> Vec<String> {
    let mut details = Vec::new();
    if !root.has_positive() {
        // X's words, e.g. for `-follow` and `--b`, which also get the next message.
        details.push(format!(
            "Rules must contain a non-negation term (at position {})",
            root.first_pos()
        ));
    }
    if let Some(problem) = unanchored(root) {
        details.push(problem);
    }
    for problem in problems {
        if !details.contains(&problem) {
            details.push(problem);
        }
    }
    details
}

/// The message for the first alternative of the rule with no positive standalone clause, if any.
fn unanchored(node: &Node) -> Option<String> {
    if node.is_anchored() {
        return None;
    }
    match node {
        // X's words for a clause that matches nothing by itself, e.g. a negation.
        Node::Leaf {
            negated: true, pos, ..
        } => Some(no_positive_clause(*pos)),
        // X's words for a conjunction-required operator without a standalone one, e.g.
        // `has:media`.
        Node::Leaf { pos, .. } => Some(format!(
            "is/has/lang cannot be used as a standalone operator (at position {pos})"
        )),
        Node::Or(arms) => arms.iter().find_map(unanchored),
        Node::And(items) => match items.iter().find(|item| item.has_positive()) {
            Some(item) => unanchored(item),
            None => Some(no_positive_clause(node.first_pos())),
        },
    }
}

fn no_positive_clause(pos: usize) -> String {
    format!("Rules must contain at least one positive, non-stopword clause (at position {pos})")
}

impl Node {
    /// Whether every way of satisfying this node needs a positive standalone clause.
    fn is_anchored(&self) -> bool {
        match self {
            Node::Leaf { term, negated, .. } => !negated && term.is_standalone(),
            Node::And(items) => items.iter().any(Node::is_anchored),
            Node::Or(arms) => arms.iter().all(Node::is_anchored),
        }
    }

    fn has_positive(&self) -> bool {
        match self {
            Node::Leaf { negated, .. } => !negated,
            Node::And(nodes) | Node::Or(nodes) => nodes.iter().any(Node::has_positive),
        }
    }

    fn first_pos(&self) -> usize {
        match self {
            Node::Leaf { pos, .. } => *pos,
            Node::And(nodes) | Node::Or(nodes) => nodes.first().map_or(1, Node::first_pos),
        }
    }

    fn eval(&self, post: &MatchInput<'_>, context: Context) -> bool {
        match self {
            Node::Leaf { term, negated, .. } => term.eval(post, context) != *negated,
            Node::And(items) => items.iter().all(|item| item.eval(post, context)),
            Node::Or(arms) => arms.iter().any(|arm| arm.eval(post, context)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Matching.

impl Term {
    fn eval(&self, post: &MatchInput<'_>, context: Context) -> bool {
        let fold = context == Context::Search;
        match self {
            Term::Keyword(word) => in_text(post, context, |text| {
                Words::new(text).any(|token| same_word(token, word, fold))
            }),
            Term::Phrase(words) => in_text(post, context, |text| phrase_in(text, words, fold)),
            Term::Near { words, distance } => {
                in_text(post, context, |text| near_in(text, words, *distance, fold))
            }
            Term::Hashtag(tag) => post.hashtags.iter().any(|h| same_word(h, tag, false)),
            Term::Cashtag(tag) => post.cashtags.iter().any(|c| same_word(c, tag, false)),
            Term::Mention(name) => post
                .mentions
                .iter()
                .any(|(_, username)| username.eq_ignore_ascii_case(name)),
            Term::From(user) => user.is(Some(post.author_id), Some(post.author_username)),
            Term::To(user) => user.is(post.in_reply_to_user_id, post.in_reply_to_username),
            Term::RetweetsOf(user) => user.is(post.retweet_of_user_id, post.retweet_of_username),
            Term::Url(part) => post.urls.iter().any(|url| contains_lowercase(url, part)),
            Term::Flag(flag) => flag.eval(post),
            Term::Lang(code) => post.lang.eq_ignore_ascii_case(code),
            // Every post is in the sample: the simulator's volumes are small and a sampled
            // stream that skips posts at random would make tests flaky.
            Term::Sample(_) => true,
            Term::Invalid { .. } => false,
        }
    }
}

impl UserRef {
    fn is(&self, id: Option<u64>, username: Option<&str>) -> bool {
        match self {
            UserRef::Id(wanted) => id == Some(*wanted),
            UserRef::Name(wanted) => username.is_some_and(|name| name.eq_ignore_ascii_case(wanted)),
        }
    }
}

impl Flag {
    fn eval(self, post: &MatchInput<'_>) -> bool {
        match self {
            Flag::Retweet => post.is_retweet,
            Flag::Reply => post.is_reply,
            Flag::Quote => post.is_quote,
            Flag::Media => post.has_media,
            Flag::Links => post.has_links,
            Flag::Geo => post.has_geo,
            Flag::Mentions => !post.mentions.is_empty(),
            Flag::Hashtags => !post.hashtags.is_empty(),
            Flag::Cashtags => !post.cashtags.is_empty(),
        }
    }
}

/// Text operators look at the post's text and, on the stream only, at the quoted post's text.
/// Entity operators (`#`, `@`, `url:` …) use the post's own entities in both places.
fn in_text(post: &MatchInput<'_>, context: Context, found: impl Fn(&str) -> bool) -> bool {
    found(post.text) || (context == Context::Stream && post.quoted_text.is_some_and(found))
}

fn phrase_in(text: &str, words: &[String], fold: bool) -> bool {
    let mut from = Words::new(text);
    loop {
        let mut probe = from.clone();
        if words.iter().all(|word| {
            probe
                .next()
                .is_some_and(|token| same_word(token, word, fold))
        }) {
            return true;
        }
        if from.next().is_none() {
            return false;
        }
    }
}

/// Whether some occurrence of the first word has each other word at most `distance` tokens
/// away, before or after. X documents the pair case, `"a b"~N`; a longer phrase is read as
/// every word near the first.
fn near_in(text: &str, words: &[String], distance: usize, fold: bool) -> bool {
    let Some((first, others)) = words.split_first() else {
        return false;
    };
    Words::new(text).enumerate().any(|(at, token)| {
        same_word(token, first, fold)
            && others.iter().all(|word| {
                let low = at.saturating_sub(distance);
                Words::new(text)
                    .enumerate()
                    .skip(low)
                    .take(at + distance + 1 - low)
                    .any(|(other_at, other)| other_at != at && same_word(other, word, fold))
            })
    })
}

/// Whether `token` from a post equals `word` from a rule, `word` being lowercased already.
/// With `fold`, accents are ignored on both sides, as search does.
fn same_word(token: &str, word: &str, fold: bool) -> bool {
    if token.is_ascii() && word.is_ascii() {
        return token.eq_ignore_ascii_case(word);
    }
    let lowered = token.chars().flat_map(char::to_lowercase).map(one_sigma);
    if fold {
        lowered
            .filter_map(fold_accent)
            .eq(word.chars().filter_map(fold_accent))
    } else {
        lowered.eq(word.chars())
    }
}

/// The lowercase form rule words are kept in, the same one [`same_word`] gives a post's tokens.
///
/// Lowercased character by character rather than with `str::to_lowercase`, which turns a final
/// capital sigma into `ς` depending on its neighbours, and with both sigmas made one, so that
/// `ΟΔΟΣ`, `οδος` and `οδοσ` are the same word wherever they stand.
fn lowercase(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(one_sigma)
        .collect()
}

fn one_sigma(c: char) -> char {
    if c == 'ς' { 'σ' } else { c }
}

/// Whether `haystack`, lowercased, contains `needle`, which is lowercase already.
fn contains_lowercase(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let (hay, pin) = (haystack.as_bytes(), needle.as_bytes());
        return pin.is_empty() || hay.windows(pin.len()).any(|w| w.eq_ignore_ascii_case(pin));
    }
    haystack.char_indices().any(|(start, _)| {
        let mut rest = haystack[start..]
            .chars()
            .flat_map(char::to_lowercase)
            .map(one_sigma);
        needle.chars().all(|c| rest.next() == Some(c))
    })
}

/// The unaccented form of a lowercase Latin letter; `None` drops a combining accent.
/// Covers Latin-1 and Latin Extended-A, which is what accent-insensitive search meets in practice.
fn fold_accent(c: char) -> Option<char> {
    let base = match c {
        '\u{300}'..='\u{36f}' => return None,
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' | 'ħ' => 'h',
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' | 'ŧ' => 't',
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    };
    Some(base)
}

// ---------------------------------------------------------------------------------------------
// Tokens.

/// The tokens of a text, produced lazily and without copying.
///
/// A token is a run of letters, digits, underscores and combining marks; every other character
/// separates tokens, except that an ideograph, a kana or a symbol such as an emoji is a token
/// of its own, so `東京` is two tokens and `🔥` is one. The same split is applied to rule
/// keywords, which is what makes `coca-cola` and `"coca cola"` the same two-token phrase.
#[derive(Debug, Clone)]
struct Words<'a> {
    rest: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharClass {
    Separator,
    Word,
    Single,
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Self {
        Words { rest: text }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let Some(start) = self.rest.find(|c| char_class(c) != CharClass::Separator) else {
            self.rest = "";
            return None;
        };
        let rest = &self.rest[start..];
        let mut chars = rest.char_indices();
        let first = chars.next().map_or(' ', |(_, c)| c);
        let end = if char_class(first) == CharClass::Single {
            first.len_utf8()
        } else {
            chars
                .find(|&(_, c)| char_class(c) != CharClass::Word)
                .map_or(rest.len(), |(at, _)| at)
        };
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

fn char_class(c: char) -> CharClass {
    let code = u32::from(c);
    let ideograph_or_kana = matches!(
        code,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF
    );
    if ideograph_or_kana {
        CharClass::Single
    } else if c.is_alphanumeric() || c == '_' || (0x300..=0x36F).contains(&code) {
        CharClass::Word
    } else if code >= 0x2100
        && !c.is_whitespace()
        // CJK punctuation, variation selectors and full-width punctuation separate like
        // ASCII punctuation does.
        && !matches!(code, 0x3000..=0x303F | 0xFE00..=0xFE0F | 0xFF00..=0xFFEF)
    {
        CharClass::Single
    } else {
        CharClass::Separator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1024;

    fn rule(value: &str) -> Query {
        match parse(value, LIMIT) {
            Ok(query) => query,
            Err(e) => panic!("{value:?} should parse, got {e}"),
        }
    }

    fn refusal(value: &str) -> RuleError {
        match parse(value, LIMIT) {
            Ok(query) => panic!("{value:?} should be refused, got {query:?}"),
            Err(e) => e,
        }
    }

    fn text(text: &str) -> MatchInput<'_> {
        MatchInput {
            text,
            author_id: 42,
            author_username: "Someone",
            lang: "en",
            ..MatchInput::default()
        }
    }

    fn on_stream(value: &str, post: &MatchInput<'_>) -> bool {
        rule(value).matches(post, Context::Stream)
    }

    fn in_search(value: &str, post: &MatchInput<'_>) -> bool {
        rule(value).matches(post, Context::Search)
    }

    // --- Boolean structure -------------------------------------------------------------------

    #[test]
    fn whitespace_means_and() {
        assert!(on_stream("grumpy cat", &text("a cat, very grumpy")));
        assert!(!on_stream("grumpy cat", &text("a grumpy dog")));
    }

    #[test]
    fn or_matches_either_side() {
        assert!(on_stream("cat OR dog", &text("my dog")));
        assert!(on_stream("cat OR dog", &text("my cat")));
        assert!(!on_stream("cat OR dog", &text("my bird")));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // apple (banana OR cherry) would need apple; (apple banana) OR cherry does not.
        let query = rule("apple banana OR cherry");
        assert!(query.matches(&text("cherry"), Context::Stream));
        assert!(query.matches(&text("apple banana"), Context::Stream));
        assert!(!query.matches(&text("apple"), Context::Stream));
        assert!(!query.matches(&text("banana"), Context::Stream));
    }

    #[test]
    fn or_then_and_groups_the_right_side() {
        let query = rule("cherry OR apple banana");
        assert!(query.matches(&text("cherry"), Context::Stream));
        assert!(!query.matches(&text("apple"), Context::Stream));
    }

    #[test]
    fn parentheses_override_precedence() {
        let query = rule("apple (banana OR cherry)");
        assert!(query.matches(&text("apple cherry"), Context::Stream));
        assert!(!query.matches(&text("cherry"), Context::Stream));
    }

    #[test]
    fn nested_groups_are_read() {
        let query = rule("((a1 OR b1) (c1 OR (d1 e1))) -f1");
        assert!(query.matches(&text("b1 d1 e1"), Context::Stream));
        assert!(!query.matches(&text("b1 d1"), Context::Stream));
        assert!(!query.matches(&text("a1 c1 f1"), Context::Stream));
    }

    #[test]
    fn lowercase_or_and_and_are_plain_keywords() {
        assert!(!on_stream("cat or dog", &text("cat")));
        assert!(on_stream("cat or dog", &text("cat or dog")));
        assert!(on_stream("cat and dog", &text("dog and cat")));
    }

    #[test]
    fn quoted_or_is_a_keyword() {
        assert!(on_stream("cat \"OR\" dog", &text("cat or dog")));
        assert!(!on_stream("cat \"OR\" dog", &text("cat dog")));
    }

    // --- Negation ----------------------------------------------------------------------------

    #[test]
    fn negated_keyword_excludes_posts_with_it() {
        assert!(on_stream("cat -dog", &text("a cat")));
        assert!(!on_stream("cat -dog", &text("a cat and a dog")));
    }

    #[test]
    fn negated_operator_excludes_matching_posts() {
        let retweet = MatchInput {
            is_retweet: true,
            ..text("RT a cat")
        };
        assert!(!on_stream("cat -is:retweet", &retweet));
        assert!(on_stream("cat -is:retweet", &text("a cat")));
    }

    #[test]
    fn negation_applies_to_one_term_only() {
        let query = rule("-dog cat OR bird");
        assert!(query.matches(&text("bird dog"), Context::Stream));
        assert!(!query.matches(&text("cat dog"), Context::Stream));
    }

    #[test]
    fn negated_phrase_excludes_the_phrase_only() {
        let query = rule("climate -\"climate change\"");
        assert!(query.matches(&text("climate and change"), Context::Stream));
        assert!(!query.matches(&text("climate change now"), Context::Stream));
    }

    #[test]
    fn negating_a_group_is_refused() {
        let e = refusal("skiing -(snow OR day)");
        assert_eq!(e.kind, RuleErrorKind::Invalid);
        assert_eq!(
            e.detail,
            "Negation of a grouped clause is not supported; negate each clause instead \
             (at position 8)"
        );
    }

    #[test]
    fn negating_each_clause_instead_of_the_group_is_accepted() {
        let query = rule("skiing -snow -day");
        assert!(query.matches(&text("skiing today"), Context::Stream));
        assert!(!query.matches(&text("skiing in snow"), Context::Stream));
    }

    // --- Keywords, phrases, tokens -----------------------------------------------------------

    #[test]
    fn keyword_is_case_insensitive_and_whole_token() {
        assert!(on_stream("cat", &text("Cat!")));
        assert!(on_stream("CAT", &text("my cat.")));
        assert!(!on_stream("cat", &text("category")));
        assert!(!on_stream("cat", &text("bobcat")));
    }

    #[test]
    fn keyword_matches_inside_hashtags_and_mentions_text() {
        // The text is tokenised on punctuation, so `#` and `@` separate like any other mark.
        assert!(on_stream("cats", &text("love #cats")));
    }

    #[test]
    fn keyword_is_accent_sensitive_on_the_stream() {
        assert!(on_stream("diacrítica", &text("Diacrítica")));
        assert!(!on_stream("diacrítica", &text("diacritica")));
        assert!(!on_stream("diacritica", &text("diacrítica")));
    }

    #[test]
    fn keyword_ignores_accents_in_search() {
        assert!(in_search("diacrítica", &text("diacritica")));
        assert!(in_search("diacritica", &text("DIACRÍTICA")));
        assert!(in_search("cafe", &text("un café")));
    }

    #[test]
    fn non_ascii_keyword_is_case_insensitive() {
        assert!(on_stream("ÉCOLE", &text("l'école")));
        assert!(on_stream("straße", &text("STRAßE")));
    }

    #[test]
    fn greek_final_sigma_matches_in_any_case() {
        assert!(on_stream("ΟΔΟΣ", &text("στην οδος")));
        assert!(on_stream("οδος", &text("ΟΔΟΣ!")));
    }

    #[test]
    fn quoted_phrase_matches_consecutive_tokens_in_any_case() {
        assert!(on_stream(
            "\"climate change\"",
            &text("Climate Change is here")
        ));
        assert!(on_stream("\"climate change\"", &text("climate-change!")));
    }

    #[test]
    fn quoted_phrase_needs_order_and_adjacency() {
        assert!(!on_stream("\"climate change\"", &text("change climate")));
        assert!(!on_stream(
            "\"climate change\"",
            &text("climate will change")
        ));
        assert!(!on_stream("\"climate change\"", &text("climate")));
    }

    #[test]
    fn keyword_with_punctuation_is_matched_like_a_phrase() {
        assert!(on_stream("coca-cola", &text("I like Coca-Cola")));
        assert!(on_stream("coca-cola", &text("coca cola")));
        assert!(on_stream("\"coca-cola\"", &text("COCA-COLA")));
        assert!(!on_stream("coca-cola", &text("cola coca")));
        assert!(!on_stream("coca-cola", &text("coca")));
    }

    #[test]
    fn colon_between_digits_is_a_keyword_not_an_operator() {
        assert!(on_stream("12:30", &text("see you at 12:30")));
        assert!(!on_stream("12:30", &text("12 then 30")));
    }

    #[test]
    fn operators_inside_quotes_are_plain_text() {
        let post = text("from:jack said hi");
        assert!(on_stream("\"from:jack\"", &post));
        assert!(!on_stream("\"from:jack\"", &text("jack from said hi")));
    }

    #[test]
    fn emoji_is_a_keyword_of_its_own() {
        assert!(on_stream("🔥", &text("this is🔥🔥")));
        assert!(!on_stream("🔥", &text("fire")));
    }

    #[test]
    fn ideographs_are_single_tokens() {
        assert!(on_stream("東京", &text("東京タワーに行く")));
        assert!(!on_stream("東京", &text("京東")));
    }

    #[test]
    fn keyword_matches_a_note_sized_text() {
        let long = format!("{} needle", "word ".repeat(800));
        assert!(on_stream("needle", &text(&long)));
    }

    // --- Proximity ---------------------------------------------------------------------------

    #[test]
    fn proximity_matches_words_within_the_distance_in_either_order() {
        let query = rule("\"social media\"~3");
        assert!(query.matches(&text("social and other media"), Context::Stream));
        assert!(query.matches(&text("media is social"), Context::Stream));
        assert!(query.matches(&text("social media"), Context::Stream));
    }

    #[test]
    fn proximity_rejects_words_further_apart() {
        let query = rule("\"social media\"~2");
        assert!(!query.matches(&text("social and all other media"), Context::Stream));
        assert!(!query.matches(&text("social"), Context::Stream));
    }

    #[test]
    fn proximity_needs_two_occurrences_for_a_repeated_word() {
        let query = rule("\"go go\"~1");
        assert!(query.matches(&text("go go"), Context::Stream));
        assert!(!query.matches(&text("go"), Context::Stream));
    }

    #[test]
    fn proximity_over_six_is_refused() {
        let e = refusal("\"social media\"~7");
        assert_eq!(
            e.detail,
            "Proximity distance must be between 1 and 6, not '7' (at position 1)"
        );
    }

    #[test]
    fn proximity_of_zero_or_without_digits_is_refused() {
        assert_eq!(refusal("\"a b\"~0").kind, RuleErrorKind::Invalid);
        assert!(refusal("\"a b\"~").detail.contains("not ''"));
    }

    // --- User operators ----------------------------------------------------------------------

    #[test]
    fn from_matches_username_case_insensitively() {
        assert!(on_stream("from:SOMEONE", &text("hello")));
        assert!(on_stream("from:someone", &text("hello")));
        assert!(!on_stream("from:someone_else", &text("hello")));
    }

    #[test]
    fn from_matches_numeric_user_id() {
        assert!(on_stream("from:42", &text("hello")));
        assert!(!on_stream("from:43", &text("hello")));
    }

    #[test]
    fn from_ids_joined_by_or_watch_several_users() {
        let query = rule("from:1 OR from:42 OR from:2244994945");
        assert!(query.matches(&text("hello"), Context::Stream));
        let other = MatchInput {
            author_id: 7,
            ..text("hello")
        };
        assert!(!query.matches(&other, Context::Stream));
    }

    #[test]
    fn to_matches_reply_target_by_name_and_by_id() {
        let reply = MatchInput {
            in_reply_to_user_id: Some(783_214),
            in_reply_to_username: Some("XDevelopers"),
            is_reply: true,
            ..text("thanks")
        };
        assert!(on_stream("to:xdevelopers", &reply));
        assert!(on_stream("to:783214", &reply));
        assert!(!on_stream("to:someone", &reply));
        assert!(!on_stream("to:xdevelopers", &text("thanks")));
    }

    #[test]
    fn retweets_of_matches_original_author_by_name_and_by_id() {
        let retweet = MatchInput {
            retweet_of_user_id: Some(9),
            retweet_of_username: Some("Original"),
            is_retweet: true,
            ..text("RT @Original: hi")
        };
        assert!(on_stream("retweets_of:original", &retweet));
        assert!(on_stream("retweets_of:9", &retweet));
        assert!(!on_stream("retweets_of:10", &retweet));
        assert!(!on_stream("retweets_of:original", &text("hi")));
    }

    #[test]
    fn user_operator_refuses_at_sign_and_bad_names() {
        assert_eq!(
            refusal("from:@jack").detail,
            "Invalid value '@jack' for operator 'from' (at position 1)"
        );
        assert_eq!(
            refusal("to:much_too_long_username").detail,
            "Invalid value 'much_too_long_username' for operator 'to' (at position 1)"
        );
        assert_eq!(refusal("retweets_of:a-b").kind, RuleErrorKind::Invalid);
        assert_eq!(
            refusal("from:12345678901234567890").kind,
            RuleErrorKind::Invalid
        );
    }

    #[test]
    fn operator_without_value_is_refused() {
        assert_eq!(
            refusal("cat from:").detail,
            "no viable alternative at input 'from:' (at position 5)"
        );
    }

    #[test]
    fn mention_matches_mentioned_username_not_text() {
        let mentions = [(1_u64, "XDevelopers")];
        let post = MatchInput {
            mentions: &mentions,
            ..text("hi @XDevelopers")
        };
        assert!(on_stream("@xdevelopers", &post));
        assert!(!on_stream("@xdevelopers", &text("hi @XDevelopers")));
        assert!(!on_stream("@other", &post));
    }

    #[test]
    fn mention_with_invalid_username_is_refused() {
        assert_eq!(
            refusal("@foo-bar").detail,
            "Invalid value 'foo-bar' for operator '@' (at position 1)"
        );
    }

    // --- Entity operators --------------------------------------------------------------------

    #[test]
    fn hashtag_is_exact_and_case_insensitive() {
        let tags = ["ThankUNext"];
        let post = MatchInput {
            hashtags: &tags,
            ..text("#ThankUNext")
        };
        assert!(on_stream("#thankunext", &post));
        assert!(!on_stream("#thanku", &post));
        assert!(!on_stream("#thankunext", &text("#ThankUNext")));
    }

    #[test]
    fn cashtag_matches_cashtag_entities() {
        let tags = ["TWTR"];
        let post = MatchInput {
            cashtags: &tags,
            ..text("$TWTR up")
        };
        assert!(on_stream("$twtr", &post));
        assert!(!on_stream("$fb", &post));
        assert!(on_stream("$twtr OR @xdevelopers -$fb", &post));
    }

    #[test]
    fn lone_hash_or_dollar_is_refused() {
        assert_eq!(
            refusal("cat #").detail,
            "no viable alternative at input '#' (at position 5)"
        );
        assert_eq!(refusal("$ cat").kind, RuleErrorKind::Invalid);
    }

    #[test]
    fn url_matches_part_of_an_expanded_url() {
        let urls = ["https://Developer.X.com/en/docs"];
        let post = MatchInput {
            urls: &urls,
            has_links: true,
            ..text("docs https://t.co/abc")
        };
        assert!(on_stream("url:\"developer.x.com\"", &post));
        assert!(on_stream("url:https://developer.x.com/en", &post));
        assert!(on_stream("url:docs", &post));
        assert!(!on_stream("url:\"example.com\"", &post));
        assert!(!on_stream("url:docs", &text("docs")));
    }

    #[test]
    fn quoted_url_may_hold_spaces_and_operators_characters() {
        let urls = ["https://example.com/a (b)"];
        let post = MatchInput {
            urls: &urls,
            ..text("x")
        };
        assert!(on_stream("url:\"example.com/a (b)\"", &post));
    }

    #[test]
    fn is_operators_read_the_post_flags() {
        let quote = MatchInput {
            is_quote: true,
            ..text("cat")
        };
        let reply = MatchInput {
            is_reply: true,
            ..text("cat")
        };
        assert!(on_stream("cat is:quote", &quote));
        assert!(!on_stream("cat is:quote", &reply));
        assert!(on_stream("cat is:reply", &reply));
        assert!(!on_stream("cat is:retweet", &reply));
    }

    #[test]
    fn has_operators_read_flags_and_entity_lists() {
        let tags = ["cats"];
        let mentions = [(5_u64, "bob")];
        let post = MatchInput {
            has_media: true,
            has_geo: true,
            hashtags: &tags,
            mentions: &mentions,
            ..text("cat")
        };
        assert!(on_stream(
            "cat has:media has:geo has:hashtags has:mentions",
            &post
        ));
        assert!(!on_stream("cat has:links", &post));
        assert!(!on_stream("cat has:cashtags", &post));
        assert!(!on_stream("cat has:media", &text("cat")));
        assert!(!on_stream("cat has:mentions", &text("cat")));
    }

    #[test]
    fn lang_matches_the_post_language() {
        assert!(on_stream("cat lang:en", &text("cat")));
        assert!(on_stream("cat lang:EN", &text("cat")));
        assert!(!on_stream("cat lang:fr", &text("cat")));
    }

    #[test]
    fn lang_with_a_malformed_code_is_refused() {
        assert_eq!(
            refusal("cat lang:english").detail,
            "Invalid value 'english' for operator 'lang' (at position 5)"
        );
    }

    #[test]
    fn sample_is_always_true_next_to_a_standalone_clause() {
        assert!(on_stream("cat sample:10", &text("cat")));
        assert!(!on_stream("cat sample:10", &text("dog")));
    }

    #[test]
    fn sample_cannot_be_negated() {
        assert_eq!(
            refusal("cat -sample:10").detail,
            "The sample operator cannot be negated (at position 5)"
        );
    }

    #[test]
    fn sample_out_of_range_is_refused() {
        assert_eq!(refusal("cat sample:0").kind, RuleErrorKind::Invalid);
        assert_eq!(refusal("cat sample:101").kind, RuleErrorKind::Invalid);
    }

    #[test]
    fn operator_names_are_lowercase_only() {
        assert_eq!(
            refusal("FROM:jack").detail,
            "Reference to invalid operator 'FROM' (at position 1)"
        );
    }

    // --- Stream versus search ----------------------------------------------------------------

    #[test]
    fn stream_matches_quoted_text_and_search_does_not() {
        let quote = MatchInput {
            quoted_text: Some("the original about cats"),
            is_quote: true,
            ..text("look at this")
        };
        assert!(on_stream("cats", &quote));
        assert!(!in_search("cats", &quote));
        assert!(on_stream("\"about cats\"", &quote));
        assert!(!in_search("\"about cats\"", &quote));
    }

    #[test]
    fn negated_keyword_on_stream_also_sees_quoted_text() {
        let quote = MatchInput {
            quoted_text: Some("dogs"),
            ..text("cats")
        };
        assert!(!on_stream("cats -dogs", &quote));
        assert!(in_search("cats -dogs", &quote));
    }

    #[test]
    fn phrase_does_not_span_text_and_quoted_text() {
        let quote = MatchInput {
            quoted_text: Some("change everything"),
            ..text("about climate")
        };
        assert!(!on_stream("\"climate change\"", &quote));
    }

    // --- Validation: refusals in X's words ---------------------------------------------------

    #[test]
    fn empty_rule_is_refused() {
        let e = refusal("");
        assert_eq!(e.kind, RuleErrorKind::Empty);
        assert_eq!(e.detail, "Rule value must be a non-empty string");
        assert_eq!(refusal("   \t").kind, RuleErrorKind::Empty);
    }

    #[test]
    fn rule_over_the_length_limit_is_refused() {
        let Err(e) = parse("cats dogs", 8) else {
            panic!("nine characters exceed a limit of eight");
        };
        assert_eq!(e.kind, RuleErrorKind::TooLong);
        assert_eq!(
            e.detail,
            "Rule length exceeds the maximum allowed (8 characters)"
        );
        assert!(parse("cats dog", 8).is_ok());
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        // Nine characters, eighteen bytes.
        assert!(parse("ééééééééé", 9).is_ok());
        assert!(parse("éééééééééé", 9).is_err());
    }

    #[test]
    fn only_negated_terms_are_refused_as_x_does() {
        let e = refusal("-follow");
        assert_eq!(
            e.details,
            vec![
                "Rules must contain a non-negation term (at position 1)",
                "Rules must contain at least one positive, non-stopword clause (at position 1)",
            ]
        );
        assert_eq!(e.detail, e.details[0]);
    }

    #[test]
    fn double_dash_is_one_negation_as_x_reads_it() {
        let e = refusal("--b");
        assert_eq!(
            e.details,
            vec![
                "Rules must contain a non-negation term (at position 1)",
                "Rules must contain at least one positive, non-stopword clause (at position 1)",
            ]
        );
    }

    #[test]
    fn several_negations_without_a_positive_term_are_refused() {
        let e = refusal("-cat -dog -is:retweet");
        assert_eq!(e.details.len(), 2);
        assert_eq!(e.kind, RuleErrorKind::Invalid);
    }

    #[test]
    fn conjunction_required_operator_alone_is_refused() {
        for value in [
            "has:media",
            "is:retweet",
            "lang:en",
            "sample:10",
            "is:quote lang:en",
        ] {
            assert_eq!(
                refusal(value).details,
                vec!["is/has/lang cannot be used as a standalone operator (at position 1)"],
                "{value}"
            );
        }
    }

    #[test]
    fn conjunction_required_operators_joined_by_or_are_refused() {
        assert_eq!(
            refusal("has:links OR is:retweet").detail,
            "is/has/lang cannot be used as a standalone operator (at position 1)"
        );
    }

    #[test]
    fn every_or_alternative_needs_a_standalone_clause() {
        assert_eq!(
            refusal("cat OR has:media").detail,
            "is/has/lang cannot be used as a standalone operator (at position 8)"
        );
        assert_eq!(
            refusal("(cat has:media) OR (dog OR lang:en)").detail,
            "is/has/lang cannot be used as a standalone operator (at position 28)"
        );
    }

    #[test]
    fn negated_or_alternative_is_refused() {
        assert_eq!(
            refusal("cat OR -dog").details,
            vec!["Rules must contain at least one positive, non-stopword clause (at position 8)"]
        );
    }

    #[test]
    fn conjunction_required_operators_beside_a_standalone_one_are_accepted() {
        let query = rule("\"X data\" has:mentions (has:media OR has:links)");
        let mentions = [(1_u64, "bob")];
        let post = MatchInput {
            mentions: &mentions,
            has_links: true,
            ..text("x data")
        };
        assert!(query.matches(&post, Context::Stream));
        assert!(rule("-is:retweet cat").matches(&text("cat"), Context::Stream));
        assert!(
            rule("(grumpy cat) OR (#meme has:media)").matches(&text("grumpy cat"), Context::Stream)
        );
    }

    #[test]
    fn unknown_operator_is_refused() {
        let e = refusal("cat foo:bar");
        assert_eq!(e.kind, RuleErrorKind::Invalid);
        assert_eq!(
            e.details,
            vec!["Reference to invalid operator 'foo' (at position 5)"]
        );
    }

    #[test]
    fn url_without_the_url_operator_is_an_unknown_operator() {
        assert_eq!(
            refusal("cat https://x.com").detail,
            "Reference to invalid operator 'https' (at position 5)"
        );
    }

    #[test]
    fn unknown_has_value_gets_both_of_x_messages() {
        assert_eq!(
            refusal("has:polls").details,
            vec![
                "is/has/lang cannot be used as a standalone operator (at position 1)",
                "Reference to invalid operator 'has:polls' (at position 1)",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_in_order() {
        let e = refusal("foo:1 cat bar:2");
        assert_eq!(
            e.details,
            vec![
                "Reference to invalid operator 'foo' (at position 1)",
                "Reference to invalid operator 'bar' (at position 11)",
            ]
        );
        assert_eq!(e.to_string(), e.details.join(", "));
    }

    #[test]
    fn unclosed_parenthesis_is_refused() {
        let e = refusal("(cat OR dog");
        assert_eq!(e.kind, RuleErrorKind::Syntax);
        assert_eq!(e.detail, "missing ')' at '<EOF>' (at position 12)");
    }

    #[test]
    fn stray_closing_parenthesis_is_refused() {
        let e = refusal("(cat OR dog) bird)");
        assert_eq!(e.kind, RuleErrorKind::Syntax);
        assert_eq!(e.detail, "missing EOF at ')' (at position 18)");
        assert_eq!(refusal(")cat").detail, "missing EOF at ')' (at position 1)");
    }

    #[test]
    fn unclosed_double_quote_is_refused() {
        let e = refusal("cat \"climate change");
        assert_eq!(e.kind, RuleErrorKind::Syntax);
        assert_eq!(
            e.detail,
            "no viable alternative at character '\"' (at position 5)"
        );
        assert_eq!(refusal("url:\"https://x.com").kind, RuleErrorKind::Syntax);
    }

    #[test]
    fn single_quotes_are_refused_as_x_does() {
        assert_eq!(
            refusal("(pepsi OR cola OR 'coca cola')").detail,
            "no viable alternative at character ''' (at position 19)"
        );
    }

    #[test]
    fn apostrophe_inside_a_word_is_punctuation() {
        assert!(on_stream("don't", &text("I don't know")));
    }

    #[test]
    fn uppercase_and_is_refused_as_ambiguous() {
        let e = refusal("(humorous AND (film OR movies)) -is:retweet lang:en");
        assert_eq!(
            e.detail,
            "Ambiguous use of and as a keyword. Use a space to logically join two clauses, \
             or \"and\" to find occurrences of and in text (at position 11)"
        );
    }

    #[test]
    fn empty_or_side_is_refused() {
        assert_eq!(
            refusal("cat OR").detail,
            "no viable alternative at input 'OR' (at position 5)"
        );
        assert_eq!(
            refusal("OR cat").detail,
            "no viable alternative at input 'OR' (at position 1)"
        );
        assert_eq!(
            refusal("cat OR OR dog").detail,
            "no viable alternative at input 'OR' (at position 5)"
        );
        assert_eq!(
            refusal("(cat OR) dog").detail,
            "no viable alternative at input 'OR' (at position 6)"
        );
        assert_eq!(
            refusal("cat OR -").detail,
            "no viable alternative at input '-' (at position 8)"
        );
    }

    #[test]
    fn empty_group_is_refused() {
        assert_eq!(
            refusal("cat ()").detail,
            "no viable alternative at input ')' (at position 6)"
        );
    }

    #[test]
    fn lone_dash_or_punctuation_is_refused() {
        assert_eq!(
            refusal("cat - dog").detail,
            "no viable alternative at input '-' (at position 5)"
        );
        assert_eq!(
            refusal("cat !!!").detail,
            "no viable alternative at input '!!!' (at position 5)"
        );
        assert_eq!(
            refusal("cat \"\"").detail,
            "no viable alternative at input '\"\"' (at position 5)"
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(
            refusal("café foo:1").detail,
            "Reference to invalid operator 'foo' (at position 6)"
        );
    }

    #[test]
    fn accepted_rules_from_x_documentation_parse() {
        for value in [
            "(\"Twitter API\" OR #v2) -\"recent search\"",
            "thankunext #fanart OR @arianagrande",
            "to:twitterdev OR to:twitterapi -to:twitter",
            "from:TwitterDev url:\"https://t.co\"",
            "retweets_of:twitterdev OR retweets_of:twitterapi",
            "data @twitterdev -is:retweet",
            "from:twitterdev -has:hashtags",
            "recommend #paris has:geo -bakery",
            "(kittens OR puppies) has:media",
            "#nowplaying has:mentions",
            "#stonks has:cashtags",
            "skiing -snow -day -noschool",
            "(happy OR happiness) lang:en -birthday -is:retweet",
        ] {
            assert!(parse(value, LIMIT).is_ok(), "{value}");
        }
    }

    #[test]
    fn default_match_input_matches_nothing_textual() {
        let post = MatchInput::default();
        assert!(!rule("cat").matches(&post, Context::Stream));
        assert!(rule("-cat dog OR from:0").matches(&post, Context::Search));
    }

    #[test]
    fn a_thousand_rules_match_one_post() {
        let rules: Vec<Query> = (0..1000)
            .map(|n| rule(&format!("(word{n} OR \"phrase {n}\") -is:retweet lang:en")))
            .collect();
        let post = text("a post with phrase 517 and word999 in it");
        let matched: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, query)| query.matches(&post, Context::Stream))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(matched, vec![517, 999]);
    }
}
