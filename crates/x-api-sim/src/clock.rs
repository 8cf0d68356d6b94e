//! The simulated clock.
//!
//! Simulated now = start + offset + real elapsed time × scale. A fast clock lets a test watch
//! days of activity in minutes, and `advance` jumps it forward for tests that need a later
//! world immediately. Everything posted in the world becomes visible only once simulated now
//! passes its time, so the clock is the single source of "now" for every endpoint.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct SimClock {
    start_ms: i64,
    scale: f64,
    origin: Instant,
    offset_ms: AtomicI64,
}

impl SimClock {
    pub fn new(start_ms: i64, scale: f64) -> Self {
        SimClock {
            start_ms,
            scale,
            origin: Instant::now(),
            offset_ms: AtomicI64::new(0),
        }
    }

    /// A clock frozen at `start + elapsed`, for computing the ground truth offline.
    pub fn frozen(start_ms: i64, elapsed_ms: i64) -> Self {
        let c = SimClock::new(start_ms, 0.0);
        c.offset_ms.store(elapsed_ms, Ordering::Relaxed);
        c
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// Simulated now in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        let real = self.origin.elapsed().as_secs_f64() * 1000.0;
        self.start_ms + self.offset_ms.load(Ordering::Relaxed) + (real * self.scale) as i64
    }

    pub fn now(&self) -> DateTime<Utc> {
        ms_to_datetime(self.now_ms())
    }

    /// Jumps the simulated clock forward.
    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms.max(0), Ordering::Relaxed);
    }

    /// Real time in seconds until simulated time reaches `sim_ms`; infinite on a stopped clock.
    pub fn real_secs_until(&self, sim_ms: i64) -> f64 {
        let sim_left = (sim_ms - self.now_ms()).max(0) as f64 / 1000.0;
        if self.scale > 0.0 {
            sim_left / self.scale
        } else {
            f64::INFINITY
        }
    }

    /// The real wall-clock epoch second at which simulated time reaches `sim_ms`.
    ///
    /// Rate-limit reset headers use this, so a client that sleeps until the header's time
    /// works on a fast clock without knowing the scale.
    pub fn real_epoch_at(&self, sim_ms: i64) -> i64 {
        let wait = self.real_secs_until(sim_ms).min(366.0 * 86400.0);
        (real_epoch_secs_f64() + wait).ceil() as i64
    }
}

/// Real wall-clock time in Unix seconds.
pub fn real_epoch_secs() -> i64 {
    real_epoch_secs_f64() as i64
}

fn real_epoch_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub fn ms_to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// X's response time format: `2022-10-07T22:43:18.000Z`.
pub fn format_time(ms: i64) -> String {
    let mut buf = [0u8; 24];
    write_time(ms, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Writes [`format_time`]'s text into a buffer without allocating. Responses carry several
/// timestamps per object, so this avoids a general-purpose formatter on the hot path.
pub fn write_time(ms: i64, out: &mut [u8; 24]) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));

    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);

    let mut put = |at: usize, value: i64, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, rem / 3600, 2);
    put(14, rem % 3600 / 60, 2);
    put(17, rem % 60, 2);
    put(20, milli, 3);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        out[at] = c;
    }
}

/// Parses a request time (`YYYY-MM-DDTHH:mm:ssZ`, RFC 3339) into Unix milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let c = SimClock::new(1_000_000, 0.0);
        assert_eq!(c.now_ms(), 1_000_000);
        c.advance_ms(5_000);
        assert_eq!(c.now_ms(), 1_005_000);
    }

    #[test]
    fn fast_formatter_agrees_with_chrono() {
        for ms in [
            0,
            1_288_834_974_657,
            1_767_225_599_999,
            951_782_400_000,
            4_102_444_800_123,
        ] {
            let expected = ms_to_datetime(ms)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            assert_eq!(format_time(ms), expected);
        }
    }

    #[test]
    fn formats_like_x() {
        assert_eq!(format_time(1_665_182_598_000), "2022-10-07T22:43:18.000Z");
        assert_eq!(parse_time("2022-10-07T22:43:18Z"), Some(1_665_182_598_000));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn reset_epoch_scales_with_the_clock() {
        let c = SimClock::new(0, 60.0);
        // 15 simulated minutes are 15 real seconds at 60x.
        let reset = c.real_epoch_at(c.now_ms() + 900_000);
        let now = real_epoch_secs();
        assert!((reset - now - 15).abs() <= 1, "{reset} vs {now}");
    }
}
