//! `--bandwidth` as a timetable, as rclone's `--bwlimit` takes one: `08:00,10MiB 19:00,off`.
//! Space-separated `HH:MM,RATE` entries in local time, RATE a size per second or `off`; the
//! entry in force is the last one whose time is at or before now, and before the day's first
//! entry, the day's last (the timetable wraps around midnight).

use std::fmt;

/// Minutes in a day.
pub const DAY_MINUTES: u32 = 24 * 60;

/// `--bandwidth`: one rate, or a timetable of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bandwidth {
    /// Bytes per second, all day.
    Fixed(u64),
    /// A rate per time of day.
    Timetable(Timetable),
}

impl Bandwidth {
    /// Bytes per second at `minute` after local midnight (`None`: unlimited).
    pub fn at(&self, minute: u32) -> Option<u64> {
        match self {
            Bandwidth::Fixed(rate) => Some(*rate),
            Bandwidth::Timetable(t) => t.in_force(minute).rate,
        }
    }
}

/// Entries sorted by time, no two at the same minute, at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timetable {
    entries: Vec<Entry>,
}

/// From `at` on, `rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Minutes after midnight, local time.
    pub at: u32,
    /// Bytes per second; `None` for `off` (no limit).
    pub rate: Option<u64>,
}

impl fmt::Display for Entry {
    /// `08:00,10.00 MiB/s` or `19:00,off`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02},", self.at / 60, self.at % 60)?;
        match self.rate {
            Some(rate) => write!(f, "{}/s", indicatif::HumanBytes(rate)),
            None => f.write_str("off"),
        }
    }
}

impl Timetable {
    /// Reads `HH:MM,RATE HH:MM,RATE …`, each RATE `off` or what `rate` makes of it (a size in
    /// its range). Entries may come in any order; two at the same time are an error.
    pub fn parse(text: &str, rate: impl Fn(&str) -> Result<u64, String>) -> Result<Self, String> {
        let mut entries = Vec::new();
        for item in text.split_whitespace() {
            let (time, value) = item
                .split_once(',')
                .ok_or_else(|| format!("`{item}` is not HH:MM,RATE (such as 08:00,10MiB)"))?;
            let at = minute_of(time)
                .ok_or_else(|| format!("`{time}` in `{item}` is not a time from 00:00 to 23:59"))?;
            let rate = match value.trim() {
                v if v.eq_ignore_ascii_case("off") => None,
                v => Some(rate(v).map_err(|e| format!("`{value}` in `{item}`: {e}, or off"))?),
            };
            entries.push(Entry { at, rate });
        }
        if entries.is_empty() {
            return Err("an empty timetable; expected HH:MM,RATE entries".to_owned());
        }
        entries.sort_by_key(|e| e.at);
        if let Some(w) = entries.windows(2).find(|w| w[0].at == w[1].at) {
            return Err(format!("two entries at {:02}:{:02}", w[0].at / 60, w[0].at % 60));
        }
        Ok(Timetable { entries })
    }

    /// The entry in force at `minute` after midnight: the last at or before it, else (before the
    /// first of the day) the day's last.
    pub fn in_force(&self, minute: u32) -> Entry {
        let last = *self.entries.last().expect("a timetable has entries");
        self.entries.iter().rev().find(|e| e.at <= minute % DAY_MINUTES).copied().unwrap_or(last)
    }

    /// The entries, by time.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// `HH:MM` (or `H:MM`) as minutes after midnight.
fn minute_of(time: &str) -> Option<u32> {
    let (h, m) = time.trim().split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || m.len() != 2 || !digits(m) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(s: &str) -> Result<u64, String> {
        parse_size::parse_size(s).map_err(|e| e.to_string())
    }

    fn at(h: u32, m: u32) -> u32 {
        h * 60 + m
    }

    #[test]
    fn a_timetable_reads_entries_in_any_order() {
        let t = Timetable::parse("19:00,off  08:00,10MiB\t12:30,512KiB", size).unwrap();
        let want = [
            Entry { at: at(8, 0), rate: Some(10 << 20) },
            Entry { at: at(12, 30), rate: Some(512 << 10) },
            Entry { at: at(19, 0), rate: None },
        ];
        assert_eq!(t.entries(), want);
        assert_eq!(t.entries()[0].to_string(), "08:00,10.00 MiB/s");
        assert_eq!(t.entries()[2].to_string(), "19:00,off");
        assert_eq!(Timetable::parse("0:05,OFF", size).unwrap().entries()[0].at, 5);
    }

    #[test]
    fn the_entry_in_force_is_the_last_begun_wrapping_at_midnight() {
        let t = Timetable::parse("08:00,10MiB 19:00,off", size).unwrap();
        let rate = |h, m| t.in_force(at(h, m)).rate;
        assert_eq!(rate(8, 0), Some(10 << 20));
        assert_eq!(rate(18, 59), Some(10 << 20));
        assert_eq!(rate(19, 0), None);
        assert_eq!(rate(23, 59), None);
        // Before the day's first entry, the day's last is still in force.
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(7, 59), None);
        let one = Timetable::parse("12:00,1MiB", size).unwrap();
        assert_eq!(
            (one.in_force(0).rate, one.in_force(at(23, 0)).rate),
            (Some(1 << 20), Some(1 << 20))
        );
        let b = Bandwidth::Timetable(t);
        assert_eq!((b.at(at(9, 0)), b.at(at(20, 0))), (Some(10 << 20), None));
        assert_eq!(Bandwidth::Fixed(5).at(0), Some(5));
    }

    #[test]
    fn bad_timetables_say_what_is_wrong() {
        let err = |s: &str| Timetable::parse(s, size).unwrap_err();
        assert!(err("").contains("empty"));
        assert!(err("08:00").contains("is not HH:MM,RATE"), "{}", err("08:00"));
        assert!(err("24:00,1MiB").contains("`24:00` in `24:00,1MiB` is not a time"));
        assert!(err("08:60,1MiB").contains("not a time"));
        assert!(err("8h,1MiB").contains("not a time"));
        assert!(err("08:00,fast").contains("`fast` in `08:00,fast`"), "{}", err("08:00,fast"));
        assert!(err("08:00,off 8:00,1MiB").contains("two entries at 08:00"));
    }
}
