//! What WebVTT and SRT cues share: timestamps, the `START --> END` timing line, and the order
//! cues come in.

use super::{Kind, Line, ParseError};

/// A time in a track, in milliseconds.
pub(super) type Millis = u64;

/// `ms` as `hh:mm:ss.ttt`, the way messages and converted files show times.
pub(super) fn show(ms: Millis) -> String {
    Time(ms).to_string()
}

/// A time shown as `hh:mm:ss.ttt` ([`show`]), written where it goes.
pub(super) struct Time(pub Millis);

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0;
        let (h, m, s, t) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        write!(f, "{h:02}:{m:02}:{s:02}.{t:03}")
    }
}

/// Which timestamps a timing line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// `hh:mm:ss.ttt` (hours 2 digits or more) or `mm:ss.ttt`; a cue ends after it starts.
    WebVtt,
    /// `h:mm:ss,ttt` (hours 1 digit or more): `.` or a fullwidth `，` taken for `,`, a fullwidth
    /// `：` for `:`, and the milliseconds may be left out; a cue may end as it starts.
    Srt,
}

impl Style {
    fn shape(self) -> &'static str {
        match self {
            Style::WebVtt => "`hh:mm:ss.ttt` or `mm:ss.ttt`",
            Style::Srt => "`hh:mm:ss,ttt`",
        }
    }

    /// The length of the `:` between hours, minutes and seconds `text` starts with, if it does.
    fn colon(self, text: &str) -> Option<usize> {
        match self {
            Style::Srt if text.starts_with('\u{ff1a}') => Some('\u{ff1a}'.len_utf8()),
            _ => text.starts_with(':').then_some(1),
        }
    }

    /// The length of the separator before the milliseconds `text` starts with, if it does.
    fn decimal(self, text: &str) -> Option<usize> {
        match self {
            Style::WebVtt => text.starts_with('.').then_some(1),
            Style::Srt => text
                .chars()
                .next()
                .filter(|c| matches!(c, ',' | '.' | '\u{ff0c}'))
                .map(char::len_utf8),
        }
    }
}

/// A timing line read: its times and where on the line each part is (byte offsets).
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub start: Millis,
    pub end: Millis,
    pub start_at: usize,
    /// Where what follows the end time starts (settings, coordinates or nothing).
    pub rest_at: usize,
}

/// The whitespace that can sit between the parts of a line: space, tab and form feed.
pub(super) const WHITESPACE: [char; 3] = [' ', '\t', '\u{c}'];

/// The bytes of whitespace at the start of `text`.
pub(super) fn blanks(text: &str) -> usize {
    text.len() - text.trim_start_matches(WHITESPACE).len()
}

/// The tokens of `text` from byte `at` on, as cue and region settings are read: runs of
/// anything but [`WHITESPACE`], each with the byte it starts at.
pub(super) fn tokens(text: &str, at: usize) -> impl Iterator<Item = (usize, &str)> {
    let mut pos = at;
    std::iter::from_fn(move || {
        pos += blanks(text.get(pos..)?);
        let len = text[pos..].find(WHITESPACE).unwrap_or(text.len() - pos);
        let token = (len > 0).then(|| (pos, &text[pos..pos + len]));
        pos += len;
        token
    })
}

/// Reads `START --> END` from the start of `line` (whitespace around each part, or none),
/// and checks that the end is after the start (or, in SRT, not before it).
pub(super) fn timing(line: &Line<'_>, style: Style) -> Result<Timing, ParseError> {
    let text = line.text;
    let start_at = blanks(text);
    let (start, after) = timestamp(line, start_at, style)?;
    let arrow_at = after + blanks(&text[after..]);
    if !text[arrow_at..].starts_with("-->") {
        return Err(line.error(arrow_at, "expected `-->` between the cue's start and end"));
    }
    let end_at = arrow_at + 3 + blanks(&text[arrow_at + 3..]);
    let (end, rest_at) = timestamp(line, end_at, style)?;
    if end < start || (end == start && style == Style::WebVtt) {
        let message = format!("end {} is not after start {}", show(end), show(start));
        return Err(line.error(end_at, message));
    }
    Ok(Timing { start, end, start_at, rest_at })
}

/// The end of the run of ASCII digits in `text` starting at byte `at`.
fn digits_end(text: &str, at: usize) -> usize {
    at + text[at..].bytes().take_while(u8::is_ascii_digit).count()
}

/// Reads a timestamp at byte `at` of `line`: its time and the byte just after it.
fn timestamp(line: &Line<'_>, at: usize, style: Style) -> Result<(Millis, usize), ParseError> {
    let text = line.text;
    // The runs of digits before the decimal separator, split at `:`, as (start, end): the first
    // four, one more than a timestamp has, and how many.
    let mut found = [(0, 0); 4];
    let mut count = 0;
    let mut at_part = at;
    loop {
        let end = digits_end(text, at_part);
        if end == at_part {
            let message = format!("expected a timestamp {}", style.shape());
            return Err(line.error(at_part, message));
        }
        if let Some(part) = found.get_mut(count) {
            *part = (at_part, end);
        }
        count += 1;
        let Some(colon) = style.colon(&text[end..]) else {
            break;
        };
        at_part = end + colon;
    }
    let allowed = match style {
        Style::WebVtt => 2..=3,
        Style::Srt => 3..=3,
    };
    if count > *allowed.end() {
        let message = format!("too many `:` in the timestamp, expected {}", style.shape());
        let colon_at = text[..found[*allowed.end()].0].char_indices().last().map_or(0, |(i, _)| i);
        return Err(line.error(colon_at, message));
    }
    let parts = &found[..count];
    if parts.len() < *allowed.start() {
        let message = format!("expected `:` in the timestamp, as in {}", style.shape());
        return Err(line.error(parts[parts.len() - 1].1, message));
    }
    let value = |(from, to): (usize, usize)| text[from..to].parse::<u64>().unwrap_or(u64::MAX);
    let mut hours = 0;
    if parts.len() == 3 {
        let (from, to) = parts[0];
        let least = if style == Style::WebVtt { 2 } else { 1 };
        if to - from < least {
            return Err(line.error(from, "hours need at least 2 digits (`01`, not `1`)"));
        }
        hours = value(parts[0]);
        if to - from > 6 {
            return Err(line.error(from, "hours out of range (at most 999999)"));
        }
    }
    let units = ["minutes", "seconds"];
    let mut minutes_seconds = [0; 2];
    for (n, part) in parts[parts.len() - 2..].iter().enumerate() {
        let (from, to) = *part;
        if to - from != 2 {
            let message = format!("{} need exactly 2 digits", units[n]);
            return Err(line.error(from, message));
        }
        minutes_seconds[n] = value(*part);
        if minutes_seconds[n] > 59 {
            let message = format!("{} out of range: `{}` (00 to 59)", units[n], &text[from..to]);
            return Err(line.error(from, message));
        }
    }
    let separator_at = parts[parts.len() - 1].1;
    let [minutes, seconds] = minutes_seconds;
    let whole = ((hours * 60 + minutes) * 60 + seconds) * 1000;
    let Some(separator) = style.decimal(&text[separator_at..]) else {
        let rest = &text[separator_at..];
        if style == Style::Srt
            && (rest.is_empty() || rest.starts_with(|c| c == '-' || WHITESPACE.contains(&c)))
        {
            return Ok((whole, separator_at));
        }
        let message = match style {
            Style::WebVtt => "expected `.` and 3 digits of milliseconds after the seconds",
            Style::Srt => "expected `,` and 3 digits of milliseconds after the seconds",
        };
        return Err(line.error(separator_at, message));
    };
    let millis_at = separator_at + separator;
    let millis_end = digits_end(text, millis_at);
    if millis_end - millis_at != 3 {
        let message =
            format!("expected exactly 3 digits of milliseconds, found {}", millis_end - millis_at);
        return Err(line.error(millis_at, message));
    }
    Ok((whole + value((millis_at, millis_end)), millis_end))
}

/// The cues met so far, to check that each comes in order (and, for chapters, that none
/// overlaps the one before it).
#[derive(Debug)]
pub(super) struct Order {
    kind: Kind,
    previous: Option<(Millis, Millis)>,
    /// Cues seen.
    pub count: usize,
}

impl Order {
    pub fn new(kind: Kind) -> Self {
        Order { kind, previous: None, count: 0 }
    }

    /// Takes the cue timed by `timing` on `line`; `titled` when its text holds anything but
    /// whitespace.
    pub fn next(
        &mut self,
        line: &Line<'_>,
        timing: &Timing,
        titled: bool,
    ) -> Result<(), ParseError> {
        if let Some((start, end)) = self.previous {
            if timing.start < start {
                let message = format!(
                    "cue starts at {}, before the previous cue's {} (cues must be in order)",
                    show(timing.start),
                    show(start)
                );
                return Err(line.error(timing.start_at, message));
            }
            if self.kind == Kind::Chapters && timing.start < end {
                let message = format!(
                    "chapter starts at {}, before the previous chapter ends at {} (chapters \
                     must not overlap)",
                    show(timing.start),
                    show(end)
                );
                return Err(line.error(timing.start_at, message));
            }
        }
        if self.kind == Kind::Chapters && !titled {
            let message = "chapter has no title (write it on the line after the timing line)";
            return Err(line.error(0, message));
        }
        self.previous = Some((timing.start, timing.end));
        self.count += 1;
        Ok(())
    }
}
