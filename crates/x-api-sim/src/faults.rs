//! Fault injection: the failures a long-running recorder must survive.
//!
//! Spec grammar (the `--faults` flag and `POST /_sim/faults?spec=`): comma-separated
//! `key=value` pairs, for example
//! `error_rate=0.05,slow_rate=0.1,slow_ms=2000,cut_rate=0.01,truncate_rate=0.01,
//! stream_disconnect_every=30,stall_every=120,stall_secs=25,operational_disconnect_every=300,
//! stream_connect_429=1`. Rates are probabilities per request; `*_every` periods are simulated
//! seconds; `slow_ms` and `stall_secs` are real time, because they exercise client timeouts.
//! Decisions come from a generator seeded by the world seed and the request's sequence number,
//! so a run with the same requests in the same order sees the same faults.

use crate::rng::rng_for;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    /// Probability of a 500/502/503/504 answer.
    pub error_rate: f64,
    /// Probability of a delayed answer, and the delay in real milliseconds.
    pub slow_rate: f64,
    pub slow_ms: u64,
    /// Probability of closing the connection part-way through the body.
    pub cut_rate: f64,
    /// Probability of a complete response whose JSON body is cut short.
    pub truncate_rate: f64,
    /// Close streams every N simulated seconds.
    pub stream_disconnect_every: Option<u64>,
    /// Every N simulated seconds a stream goes silent (no keep-alives) for `stall_secs` real
    /// seconds.
    pub stall_every: Option<u64>,
    pub stall_secs: u64,
    /// Send an operational-disconnect message and close, every N simulated seconds.
    pub operational_disconnect_every: Option<u64>,
    /// Answer the first N stream connection attempts with 429 TooManyConnections.
    pub stream_connect_429: u64,
}

impl FaultSpec {
    pub fn none() -> FaultSpec {
        FaultSpec {
            slow_ms: 2_000,
            stall_secs: 25,
            ..Default::default()
        }
    }

    pub fn is_none(&self) -> bool {
        *self == FaultSpec::none()
            || (self.error_rate == 0.0
                && self.slow_rate == 0.0
                && self.cut_rate == 0.0
                && self.truncate_rate == 0.0
                && self.stream_disconnect_every.is_none()
                && self.stall_every.is_none()
                && self.operational_disconnect_every.is_none()
                && self.stream_connect_429 == 0)
    }

    /// The faults for request number `seq`.
    pub fn plan(&self, seed: u64, seq: u64) -> FaultPlan {
        let mut rng = rng_for(&[seed, 0xFA17, seq]);
        let error = rng
            .chance(self.error_rate)
            .then(|| *rng.pick(&[500u16, 502, 503, 504]));
        let slow = rng
            .chance(self.slow_rate)
            .then(|| Duration::from_millis(self.slow_ms));
        let cut = rng.chance(self.cut_rate);
        let truncate = rng.chance(self.truncate_rate);
        FaultPlan {
            error,
            slow,
            cut,
            truncate,
        }
    }
}

/// What to do to one response.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultPlan {
    pub error: Option<u16>,
    pub slow: Option<Duration>,
    pub cut: bool,
    pub truncate: bool,
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = FaultSpec::none();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {part:?}"))?;
            let rate = |v: &str| -> Result<f64, String> {
                let r: f64 = v.parse().map_err(|_| format!("{k}: not a number: {v:?}"))?;
                if (0.0..=1.0).contains(&r) {
                    Ok(r)
                } else {
                    Err(format!("{k}: rate must be in 0..=1"))
                }
            };
            let int = |v: &str| -> Result<u64, String> {
                v.parse()
                    .map_err(|_| format!("{k}: not a whole number: {v:?}"))
            };
            let period = |v: &str| -> Result<Option<u64>, String> {
                let n = int(v)?;
                Ok((n > 0).then_some(n))
            };
            match k {
                "error_rate" => spec.error_rate = rate(v)?,
                "slow_rate" => spec.slow_rate = rate(v)?,
                "slow_ms" => spec.slow_ms = int(v)?,
                "cut_rate" => spec.cut_rate = rate(v)?,
                "truncate_rate" => spec.truncate_rate = rate(v)?,
                "stream_disconnect_every" => spec.stream_disconnect_every = period(v)?,
                "stall_every" => spec.stall_every = period(v)?,
                "stall_secs" => spec.stall_secs = int(v)?,
                "operational_disconnect_every" => spec.operational_disconnect_every = period(v)?,
                "stream_connect_429" => spec.stream_connect_429 = int(v)?,
                other => return Err(format!("unknown fault {other:?}")),
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error_rate={},slow_rate={},slow_ms={},cut_rate={},truncate_rate={},stall_secs={},\
             stream_connect_429={}",
            self.error_rate,
            self.slow_rate,
            self.slow_ms,
            self.cut_rate,
            self.truncate_rate,
            self.stall_secs,
            self.stream_connect_429
        )?;
        for (k, v) in [
            ("stream_disconnect_every", self.stream_disconnect_every),
            ("stall_every", self.stall_every),
            (
                "operational_disconnect_every",
                self.operational_disconnect_every,
            ),
        ] {
            if let Some(v) = v {
                write!(f, ",{k}={v}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let s: FaultSpec = "error_rate=0.05,slow_rate=0.1,slow_ms=2000,cut_rate=0.01,\
            truncate_rate=0.01,stream_disconnect_every=30,stall_every=120,stall_secs=25,\
            operational_disconnect_every=300,stream_connect_429=1"
            .parse()
            .unwrap();
        assert_eq!(s.error_rate, 0.05);
        assert_eq!(s.stream_disconnect_every, Some(30));
        assert_eq!(s.stall_every, Some(120));
        assert_eq!(s.operational_disconnect_every, Some(300));
        assert_eq!(s.stream_connect_429, 1);
        let again: FaultSpec = s.to_string().parse().unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn rejects_nonsense() {
        assert!("error_rate=2".parse::<FaultSpec>().is_err());
        assert!("bogus=1".parse::<FaultSpec>().is_err());
        assert!("error_rate".parse::<FaultSpec>().is_err());
        assert!("".parse::<FaultSpec>().unwrap().is_none());
    }

    #[test]
    fn plans_are_deterministic_and_follow_rates() {
        let s: FaultSpec = "error_rate=0.2".parse().unwrap();
        let errors = (0..10_000)
            .filter(|&i| s.plan(3, i).error.is_some())
            .count();
        assert!((1_700..2_300).contains(&errors), "{errors}");
        assert_eq!(s.plan(3, 17), s.plan(3, 17));
    }
}
