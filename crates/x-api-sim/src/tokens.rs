//! Pagination tokens in the shapes X uses for each endpoint family.
//!
//! Tokens are opaque to clients but must look like X's and be rejected with a 400 when forged
//! or sent to the wrong endpoint. Each token carries a position plus a keyed check value over
//! (endpoint family, subject, position), so tokens are stateless on the server yet cannot be
//! reused for another user, list or query. The shapes follow the API description:
//! timelines/search/list tweets base36 (long, lowercase), followers/following base32 of 16
//! characters, list collections 1–19 characters, rules exactly 16 characters.

use crate::rng::hash;

/// Endpoint families, so a token from one family is invalid in another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Family {
    UserTweets = 1,
    Mentions = 2,
    Search = 3,
    ListTweets = 4,
    Follows = 5,
    ListCollection = 6,
    Rules = 7,
    Counts = 8,
    TimelinePrev = 9,
    MentionsPrev = 10,
}

#[derive(Clone, Debug)]
pub struct Tokens {
    secret: u64,
}

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl Tokens {
    pub fn new(seed: u64) -> Self {
        Tokens {
            secret: hash(&[seed, 0x70_6b_6e]),
        }
    }

    fn mac(&self, family: Family, subject: u64, a: u64, b: u64) -> u64 {
        hash(&[self.secret, family as u64, subject, a, b])
    }

    /// A long base36 token carrying two words (position and an auxiliary value).
    pub fn long(&self, family: Family, subject: u64, a: u64, b: u64) -> String {
        let mut out = String::with_capacity(39);
        for word in [
            a ^ self.secret,
            b ^ self.secret.rotate_left(17),
            self.mac(family, subject, a, b),
        ] {
            push_base36(&mut out, word);
        }
        out
    }

    pub fn parse_long(&self, family: Family, subject: u64, token: &str) -> Option<(u64, u64)> {
        if token.len() != 39 {
            return None;
        }
        let a = parse_base36(&token[0..13])? ^ self.secret;
        let b = parse_base36(&token[13..26])? ^ self.secret.rotate_left(17);
        let mac = parse_base36(&token[26..39])?;
        (mac == self.mac(family, subject, a, b)).then_some((a, b))
    }

    /// A 16-character base32 token (followers/following and stream rules).
    pub fn base32(&self, family: Family, subject: u64, pos: u32) -> String {
        let mac = self.mac(family, subject, u64::from(pos), 0) & 0xFFFF_FFFF_FFFF;
        let value = (u128::from(mac) << 32) | u128::from(pos ^ self.secret as u32);
        (0..16)
            .rev()
            .map(|i| char::from(BASE32[((value >> (i * 5)) & 31) as usize]))
            .collect()
    }

    pub fn parse_base32(&self, family: Family, subject: u64, token: &str) -> Option<u32> {
        if token.len() != 16 {
            return None;
        }
        let mut value = 0u128;
        for c in token.bytes() {
            let digit = BASE32.iter().position(|&d| d == c)? as u128;
            value = (value << 5) | digit;
        }
        let pos = (value as u32) ^ self.secret as u32;
        let mac = (value >> 32) as u64;
        (mac == self.mac(family, subject, u64::from(pos), 0) & 0xFFFF_FFFF_FFFF).then_some(pos)
    }

    /// A decimal token of at most 19 characters (List collections).
    pub fn short(&self, family: Family, subject: u64, pos: u32) -> String {
        let mac = self.mac(family, subject, u64::from(pos), 0) & 0x0FFF_FFFF;
        // Never start with a zero digit so the token keeps its length through integer parsing.
        ((1u64 << 60) | (mac << 32) | u64::from(pos)).to_string()
    }

    pub fn parse_short(&self, family: Family, subject: u64, token: &str) -> Option<u32> {
        if token.is_empty() || token.len() > 19 || !token.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u64 = token.parse().ok()?;
        if value >> 60 != 1 {
            return None;
        }
        let pos = value as u32;
        let mac = (value >> 32) & 0x0FFF_FFFF;
        (mac == self.mac(family, subject, u64::from(pos), 0) & 0x0FFF_FFFF).then_some(pos)
    }
}

fn push_base36(out: &mut String, mut v: u64) {
    let mut digits = [b'0'; 13];
    for slot in digits.iter_mut().rev() {
        *slot = BASE36[(v % 36) as usize];
        v /= 36;
    }
    out.extend(digits.iter().map(|&d| char::from(d)));
}

fn parse_base36(s: &str) -> Option<u64> {
    let mut v: u64 = 0;
    for c in s.bytes() {
        let d = BASE36.iter().position(|&x| x == c)? as u64;
        v = v.checked_mul(36)?.checked_add(d)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tokens_round_trip_and_bind_their_subject() {
        let t = Tokens::new(7);
        let tok = t.long(Family::UserTweets, 42, 1_234_567_890_123, 17);
        assert_eq!(tok.len(), 39);
        assert!(
            tok.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
        assert_eq!(
            t.parse_long(Family::UserTweets, 42, &tok),
            Some((1_234_567_890_123, 17))
        );
        assert_eq!(t.parse_long(Family::UserTweets, 43, &tok), None);
        assert_eq!(t.parse_long(Family::Mentions, 42, &tok), None);
        assert_eq!(
            Tokens::new(8).parse_long(Family::UserTweets, 42, &tok),
            None
        );
        let mut bad = tok.clone();
        bad.replace_range(0..1, if tok.starts_with('z') { "y" } else { "z" });
        assert_eq!(t.parse_long(Family::UserTweets, 42, &bad), None);
    }

    #[test]
    fn base32_tokens_are_sixteen_chars() {
        let t = Tokens::new(7);
        for pos in [0u32, 1, 1000, u32::MAX] {
            let tok = t.base32(Family::Follows, 9, pos);
            assert_eq!(tok.len(), 16);
            assert!(tok.bytes().all(|b| BASE32.contains(&b)));
            assert_eq!(t.parse_base32(Family::Follows, 9, &tok), Some(pos));
            assert_eq!(t.parse_base32(Family::Rules, 9, &tok), None);
        }
        assert_eq!(t.parse_base32(Family::Follows, 9, "AAAAAAAAAAAAAAAA"), None);
    }

    #[test]
    fn short_tokens_fit_nineteen_chars() {
        let t = Tokens::new(7);
        for pos in [0u32, 5, 99_999] {
            let tok = t.short(Family::ListCollection, 3, pos);
            assert!((1..=19).contains(&tok.len()), "{tok}");
            assert_eq!(t.parse_short(Family::ListCollection, 3, &tok), Some(pos));
            assert_eq!(t.parse_short(Family::ListCollection, 4, &tok), None);
        }
    }
}
