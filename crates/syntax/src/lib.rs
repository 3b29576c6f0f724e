//! The values avbatch's flags take, as people write them: whole numbers, sizes (`10MiB`),
//! durations (`250ms`, `1h`) and probabilities, each held to a range, and sizes and durations
//! shown back the way they are written. The product's flags (`avbatch upload`, `clean`, …) and
//! the double's (`avbatch serve`, declared in `avbatch-serve`) both take them from here, so a
//! range reads the same in every `--help` and every refusal.
//!
//! Each parser is a clap `value_parser`: `Ok(value)`, or `Err` with the range in words.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

const KIB: u64 = 1024;
const GIB: u64 = 1024 * 1024 * 1024;

/// A clap value parser: a whole number within `range`.
pub fn whole<T>(
    range: RangeInclusive<T>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Clone + Send + Sync + 'static,
{
    move |s| match s.trim().parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from {} to {}", range.start(), range.end())),
    }
}

/// A clap value parser: a size (`10MiB`, `1048576`) within `range`.
pub fn size(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |s| {
        let expected = || {
            format!(
                "expected a size from {} to {}, such as 10MiB",
                show_size(*range.start()),
                show_size(*range.end())
            )
        };
        match parse_size::parse_size(s) {
            Ok(n) if range.contains(&n) => Ok(n),
            Ok(_) => Err(expected()),
            Err(e) => Err(format!("not a size ({e}); {}", expected())),
        }
    }
}

/// A clap value parser: a duration (`250ms`, `5s`, `1h`) within `range`.
pub fn duration(
    range: RangeInclusive<Duration>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |s| {
        let expected = || {
            format!(
                "expected a duration from {} to {}, such as 250ms, 5s or 1h",
                show_duration(*range.start()),
                show_duration(*range.end())
            )
        };
        match humantime::parse_duration(s) {
            Ok(d) if range.contains(&d) => Ok(d),
            Ok(_) => Err(expected()),
            Err(e) => Err(format!("not a duration ({e}); {}", expected())),
        }
    }
}

/// The clap value parser of fault probabilities: a number from 0 to 1.
pub fn probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err("expected a probability from 0 to 1".to_owned()),
    }
}

/// `n` bytes the way the size flags are written: `5MiB`, `100GiB`, `1 byte`.
pub fn show_size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(GIB, "GiB"), (1024 * 1024, "MiB"), (KIB, "KiB")];
    match UNITS.iter().find(|(unit, _)| n >= *unit && n.is_multiple_of(*unit)) {
        Some((unit, name)) => format!("{}{name}", n / unit),
        None if n == 1 => "1 byte".to_owned(),
        None => format!("{n} bytes"),
    }
}

/// `d` the way the duration flags are written: `100ms`, `1h`, `7days`.
pub fn show_duration(d: Duration) -> String {
    if d.is_zero() {
        "0s".to_owned()
    } else {
        humantime::format_duration(d).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_take_the_range_and_refuse_the_rest() {
        let c = whole(1usize..=1024);
        assert_eq!((c("1"), c("1024")), (Ok(1), Ok(1024)));
        for bad in ["0", "1025", "18446744073709551615", "99999999999999999999999", "-1", "x"] {
            assert_eq!(c(bad), Err("expected a whole number from 1 to 1024".to_owned()), "{bad}");
        }
        let b = size(KIB..=100 * GIB);
        assert_eq!(b("1KiB"), Ok(1024));
        assert_eq!(b("0").unwrap_err(), "expected a size from 1KiB to 100GiB, such as 10MiB");
        assert!(b("lots").unwrap_err().starts_with("not a size ("), "{:?}", b("lots"));
        let t = duration(Duration::from_millis(100)..=Duration::from_secs(3600));
        assert_eq!(t("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(
            t("0s").unwrap_err(),
            "expected a duration from 100ms to 1h, such as 250ms, 5s or 1h"
        );
        assert!(t("18446744073709551615s").is_err());
        assert!(probability("NaN").is_err() && probability("1").is_ok());
        assert!(probability("1.5").is_err() && probability("0").is_ok());
    }

    #[test]
    fn sizes_and_durations_show_as_flags_take_them() {
        assert_eq!(
            [show_size(5 << 20), show_size(100 << 30), show_size(1), show_size(1500)],
            ["5MiB", "100GiB", "1 byte", "1500 bytes"]
        );
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(
            [
                show_duration(Duration::from_secs(3600)),
                show_duration(Duration::ZERO),
                show_duration(week)
            ],
            ["1h", "0s", "7days"]
        );
    }
}
