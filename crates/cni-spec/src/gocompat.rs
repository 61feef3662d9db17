//! Go standard-library behaviours, outside JSON, that the configs and environments of the
//! plugins we replace rely on (Go's JSON rules are in [`crate::gojson`]).
//!
//! - [`parse_duration`]: Go's `time.ParseDuration`, for values such as
//!   `IPAM_DB_CONNECTION_TIMEOUT` that Amazon's plugins read with it.

use std::time::Duration;

/// Why a string is not a duration. The messages are Go's (`time: invalid duration "5x"`),
/// except for [`DurationError::Negative`], which Go accepts and a [`Duration`] cannot hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not of the form `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or past Go's range (±2⁶³ ns, about
    /// 292 years).
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    /// A number without a unit (other than a lone `0`).
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {value:?}")]
    UnknownUnit { unit: String, value: String },
    /// A valid Go duration below zero.
    #[error("duration {0:?} is negative")]
    Negative(String),
}

/// Go's units, in nanoseconds (`µs` is U+00B5 MICRO SIGN, `μs` U+03BC GREEK SMALL LETTER MU).
const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// 2⁶³: one past Go's largest duration, and the magnitude of its smallest.
const LIMIT: u64 = 1 << 63;

/// Parses a duration as Go's `time.ParseDuration` does: a possibly signed sequence of decimal
/// numbers, each with an optional fraction and a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`,
/// `h`), e.g. `300ms`, `1.5h`, `1h2m3.5s`, `+5s`; or a lone `0`. Fractions below a nanosecond
/// are truncated, as in Go. The range is Go's (up to 2⁶³−1 ns); a negative duration is an
/// error (a [`Duration`] is never negative), `-0s` is zero.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(s.to_owned());
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (ns, after) = component(rest, s)?;
        total = total
            .checked_add(ns)
            .filter(|t| *t <= LIMIT)
            .ok_or_else(invalid)?;
        rest = after;
    }
    if negative && total > 0 {
        return Err(DurationError::Negative(s.to_owned()));
    }
    if total >= LIMIT {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total))
}

/// One `number[.fraction]unit` at the start of `rest`, in nanoseconds, and what follows it.
/// `whole` is the entire input, for errors.
fn component<'a>(rest: &'a str, whole: &str) -> Result<(u64, &'a str), DurationError> {
    let invalid = || DurationError::Invalid(whole.to_owned());
    let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count();
    if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
        return Err(invalid());
    }
    let int_len = digits(rest);
    let mut value: u64 = 0;
    for c in rest[..int_len].bytes() {
        if value > LIMIT / 10 {
            return Err(invalid());
        }
        value = value * 10 + u64::from(c - b'0');
        if value > LIMIT {
            return Err(invalid());
        }
    }
    let mut rest = &rest[int_len..];
    // the fraction: digits past what 63 bits hold are read and ignored, as Go does
    let (mut fraction, mut scale, mut frac_len) = (0u64, 1f64, 0);
    if let Some(after_point) = rest.strip_prefix('.') {
        frac_len = digits(after_point);
        let mut full = false;
        for c in after_point[..frac_len].bytes() {
            if full || fraction > (LIMIT - 1) / 10 {
                full = true;
                continue;
            }
            let next = fraction * 10 + u64::from(c - b'0');
            if next > LIMIT {
                full = true;
                continue;
            }
            fraction = next;
            scale *= 10.0;
        }
        rest = &after_point[frac_len..];
    }
    if int_len == 0 && frac_len == 0 {
        // ".s", "-.h"
        return Err(invalid());
    }
    // the unit runs to the next digit or point (both ASCII, so this is a char boundary)
    let unit_len = rest
        .bytes()
        .take_while(|c| *c != b'.' && !c.is_ascii_digit())
        .count();
    if unit_len == 0 {
        return Err(DurationError::MissingUnit(whole.to_owned()));
    }
    let unit = &rest[..unit_len];
    let Some(&(_, scale_ns)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(DurationError::UnknownUnit {
            unit: unit.to_owned(),
            value: whole.to_owned(),
        });
    };
    if value > LIMIT / scale_ns {
        return Err(invalid());
    }
    value *= scale_ns;
    if fraction > 0 {
        // below one unit (fraction < scale), so at most 3.6e12 ns: exact enough in an f64,
        // as in Go
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let part = (fraction as f64 * (scale_ns as f64 / scale)) as u64;
        value += part;
        if value > LIMIT {
            return Err(invalid());
        }
    }
    Ok((value, &rest[unit_len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn go_syntax() {
        for (s, d) in [
            ("0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("-0s", Duration::ZERO),
            ("5s", ms(5_000)),
            ("+5s", ms(5_000)),
            ("300ms", ms(300)),
            ("1.5s", ms(1_500)),
            (".5s", ms(500)),
            ("1.s", ms(1_000)),
            ("1m30s", ms(90_000)),
            ("1h2m3.5s", ms(3_723_500)),
            ("1.5h", ms(5_400_000)),
            ("2m", ms(120_000)),
            ("10ns", Duration::from_nanos(10)),
            ("2us", Duration::from_micros(2)),
            ("2\u{b5}s", Duration::from_micros(2)),
            ("2\u{3bc}s", Duration::from_micros(2)),
            ("1h1h", ms(7_200_000)),
            ("3s300ms", ms(3_300)),
            // below a nanosecond: truncated
            ("0.1ns", Duration::ZERO),
            ("1.0000000001s", Duration::from_nanos(1_000_000_000)),
            // more fraction digits than 63 bits hold: the rest are ignored
            ("1.00000000000000000000000001s", ms(1_000)),
            // Go's extremes
            (
                "9223372036854775807ns",
                Duration::from_nanos(i64::MAX as u64),
            ),
            ("2562047h", Duration::from_secs(2_562_047 * 3_600)),
        ] {
            assert_eq!(parse_duration(s), Ok(d), "{s}");
        }
    }

    #[test]
    fn refusals_name_the_value() {
        let invalid = |s: &str| DurationError::Invalid(s.to_owned());
        for s in ["", "+", "-", ".", ".s", "-.s", "s", "inf s", "-+1s", " 5s"] {
            assert_eq!(parse_duration(s), Err(invalid(s)), "{s:?}");
        }
        // past Go's range: never a panic
        for s in [
            "9223372036854775808ns",
            "2562048h",
            "99999999999999999999s",
            "1000000000000000000m",
            "9223372036854775807ns1ns",
            "2562047h2562047h",
        ] {
            assert_eq!(parse_duration(s), Err(invalid(s)), "{s}");
        }
        for s in ["5", "1.5", "1h5"] {
            assert_eq!(
                parse_duration(s),
                Err(DurationError::MissingUnit(s.to_owned())),
                "{s}"
            );
        }
        for (s, unit) in [
            ("5x", "x"),
            ("1e300s", "e"),
            ("5 s", " s"),
            ("1S", "S"),
            ("1h-1m", "h-"),
        ] {
            assert_eq!(
                parse_duration(s),
                Err(DurationError::UnknownUnit {
                    unit: unit.to_owned(),
                    value: s.to_owned()
                }),
                "{s}"
            );
        }
        for s in ["-1s", "-1ns", "-1.5h"] {
            assert_eq!(
                parse_duration(s),
                Err(DurationError::Negative(s.to_owned())),
                "{s}"
            );
        }
        assert_eq!(
            parse_duration("5").unwrap_err().to_string(),
            "time: missing unit in duration \"5\""
        );
        assert_eq!(
            parse_duration("1e300s").unwrap_err().to_string(),
            "time: unknown unit \"e\" in duration \"1e300s\""
        );
    }
}
