//! WebVTT REGION blocks, checked as the W3C WebVTT spec writes them: `REGION` alone on the
//! block's first line, then settings (`id:`, `width:`, `lines:`, `regionanchor:`,
//! `viewportanchor:`, `scroll:`) split by spaces, tabs or line ends, each at most once, with an
//! `id` no other region has. A browser skips a setting it cannot read and keeps the region's
//! default, and keeps a region no cue can name: this module refuses both.

use super::cue;
use super::{Line, ParseError};

const SETTINGS: &str = "id, width, lines, regionanchor, viewportanchor, scroll";

/// A REGION block being read, a line at a time: its first line starts with `REGION`, and no
/// line holds `-->` (the caller says so first: such a line would end the block).
pub(super) struct Block {
    seen: Vec<String>,
    id: Option<String>,
    /// The first problem found; the lines after it are not looked at.
    error: Option<ParseError>,
}

impl Block {
    /// Starts the block at its first line.
    pub fn new(first: Line<'_>) -> Self {
        let keyword = "REGION".len();
        let after = cue::blanks(&first.text[keyword..]);
        let error = (keyword + after < first.text.len()).then(|| {
            let message = "text after `REGION` (a region's settings go on the lines below it, and \
                           a browser drops a REGION block whose first line holds more)";
            first.error(keyword + after, message)
        });
        Block { seen: Vec::new(), id: None, error }
    }

    /// Reads one line of settings after the first; `regions` are those defined before.
    pub fn line(&mut self, line: Line<'_>, regions: &[(String, u64)]) {
        if self.error.is_none() {
            self.error = self.settings(line, regions).err();
        }
    }

    fn settings(&mut self, line: Line<'_>, regions: &[(String, u64)]) -> Result<(), ParseError> {
        for (pos, token) in cue::tokens(line.text, 0) {
            let setting = token.split_once(':').filter(|(n, v)| !n.is_empty() && !v.is_empty());
            let Some((name, value)) = setting else {
                let message = format!("expected a region setting `name:value`, found `{token}`");
                return Err(line.error(pos, message));
            };
            let value_at = pos + name.len() + 1;
            let ok = match name {
                "id" => true,
                "width" => percentage(value),
                "lines" => value.bytes().all(|b| b.is_ascii_digit()),
                "regionanchor" | "viewportanchor" => {
                    value.split_once(',').is_some_and(|(x, y)| percentage(x) && percentage(y))
                }
                "scroll" => value == "up",
                _ => {
                    let message = format!("unknown region setting `{name}` (known: {SETTINGS})");
                    return Err(line.error(pos, message));
                }
            };
            if !ok {
                let message =
                    format!("bad value `{value}` for region setting `{name}`: {}", hint(name));
                return Err(line.error(value_at, message));
            }
            if self.seen.iter().any(|s| s == name) {
                return Err(line.error(pos, format!("region setting `{name}` given twice")));
            }
            self.seen.push(name.to_owned());
            if name == "id" {
                if let Some((_, other)) = regions.iter().find(|(other, _)| other == value) {
                    let message = format!(
                        "region `{value}` is defined twice (first by the REGION block on line \
                         {other})"
                    );
                    return Err(line.error(value_at, message));
                }
                self.id = Some(value.to_owned());
            }
        }
        Ok(())
    }

    /// Ends the block that `first` opened: its first problem, or its identifier added, with the
    /// number of its first line, to `regions`.
    pub fn finish(
        self,
        first: Line<'_>,
        regions: &mut Vec<(String, u64)>,
    ) -> Result<(), ParseError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let Some(id) = self.id else {
            let message = "a REGION block without an `id:` setting (cues name their region by it)";
            return Err(first.error(0, message));
        };
        regions.push((id, first.number));
        Ok(())
    }
}

/// What a region setting's value looks like.
fn hint(name: &str) -> &'static str {
    match name {
        "width" => "a percentage such as `40%`",
        "lines" => "a number of lines, digits only",
        "regionanchor" | "viewportanchor" => "two percentages, as in `0%,100%`",
        _ => "`up`",
    }
}

/// Whether `value` is digits, optionally with a fraction: `12`, `12.5`.
fn number(value: &str) -> bool {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

/// Whether `value` is a WebVTT percentage (which region and cue settings both take): a number
/// from 0 to 100, then `%`.
pub(super) fn percentage(value: &str) -> bool {
    value
        .strip_suffix('%')
        .is_some_and(|n| number(n) && n.parse::<f64>().is_ok_and(|n| (0.0..=100.0).contains(&n)))
}
