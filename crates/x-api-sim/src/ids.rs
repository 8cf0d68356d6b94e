//! Identifier encoding: snowflake-like ids, media keys and id parameter validation.
//!
//! Tweet ids carry their posting time and their author, as X's snowflake ids carry time and a
//! worker number: `((ms since the Twitter epoch) << 22) | user_index`. A user never posts twice
//! in the same millisecond, so an id names exactly one tweet, and any tweet can be found from
//! its id alone without an index. List, media, poll and rule ids use the same layout with other
//! low bits.

/// The Twitter snowflake epoch, 2010-11-04T01:42:54.657Z, in Unix milliseconds.
pub const TWITTER_EPOCH_MS: i64 = 1_288_834_974_657;

/// Low bits reserved for the index of whatever produced the id.
pub const INDEX_BITS: u32 = 22;

/// The largest user count the id layout supports.
pub const MAX_INDEX: u32 = (1 << INDEX_BITS) - 1;

/// Builds a snowflake id from a Unix millisecond time and a low index.
pub fn snowflake(ms: i64, low: u32) -> u64 {
    debug_assert!(ms >= TWITTER_EPOCH_MS);
    debug_assert!(low <= MAX_INDEX);
    (((ms - TWITTER_EPOCH_MS) as u64) << INDEX_BITS) | u64::from(low)
}

/// The Unix millisecond time encoded in a snowflake id.
pub fn snowflake_ms(id: u64) -> i64 {
    (id >> INDEX_BITS) as i64 + TWITTER_EPOCH_MS
}

/// The low index encoded in a snowflake id.
pub fn snowflake_low(id: u64) -> u32 {
    (id & u64::from(MAX_INDEX)) as u32
}

/// Parses an id as X validates it: `^[0-9]{1,19}$` and within 64 bits.
pub fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether a username matches X's `^[A-Za-z0-9_]{1,15}$`.
pub fn valid_username(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The media-key prefix X uses for each media type.
pub fn media_key(kind: crate::world::MediaKind, media_id: u64) -> String {
    use crate::world::MediaKind;
    let prefix = match kind {
        MediaKind::Photo => 3,
        MediaKind::Video => 7,
        MediaKind::AnimatedGif => 16,
    };
    format!("{prefix}_{media_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_round_trips() {
        let ms = 1_767_225_600_123; // 2026-01-01T00:00:00.123Z
        let id = snowflake(ms, 4321);
        assert_eq!(snowflake_ms(id), ms);
        assert_eq!(snowflake_low(id), 4321);
        // Real 2026 ids are 19 digits.
        assert_eq!(id.to_string().len(), 19);
    }

    #[test]
    fn ids_order_by_time_first() {
        assert!(snowflake(TWITTER_EPOCH_MS + 2, 0) > snowflake(TWITTER_EPOCH_MS + 1, MAX_INDEX));
    }

    #[test]
    fn id_parameter_validation() {
        assert_eq!(parse_id("12"), Some(12));
        assert_eq!(parse_id(""), None);
        assert_eq!(parse_id("12a"), None);
        assert_eq!(parse_id("-1"), None);
        assert_eq!(parse_id("12345678901234567890"), None);
        assert_eq!(
            parse_id("9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert!(valid_username("jack_2"));
        assert!(!valid_username("sixteen_chars_xx"));
        assert!(!valid_username("a-b"));
    }
}
