//! SRT files read and made into WebVTT.
//!
//! A cue is its number (digits, as `12`; some writers put `-1`, `1.1` or `007`, and some none),
//! its timing line (`00:00:01,000 --> 00:00:02,500`, maybe followed by `X1:… X2:… Y1:… Y2:…`
//! coordinates, which are dropped) and its text lines, up to a blank line. The WebVTT written
//! has the cues sorted by start time (stably: cues that start together keep their order), each
//! with its number as its identifier; keeps `<b>`, `<i>` and `<u>`; drops `<font …>` tags and
//! `{\an8}`-style overrides; escapes any other `<`, `>` and `&` so the text reads as the SRT
//! showed it. A cue may end as it starts (it is written so too).

use std::fmt::Write;
use std::io::Read;

use super::cue::{self, Order, Style, Timing};
use super::lines::{Lines, OwnedLine};
use super::{Kind, Line, ParseError, ReadError};

/// Whether an SRT line ends a cue: nothing on it but whitespace.
pub(super) fn is_blank(text: &str) -> bool {
    text.trim_matches(cue::WHITESPACE).is_empty()
}

/// Whether `line` is an SRT cue number: digits, maybe after a `-`, maybe followed by a `.` and
/// more digits (`12`, `-1`, `1.1`, `007`), with whitespace around.
pub(super) fn is_number(line: &str) -> bool {
    let number = line.trim_matches(cue::WHITESPACE);
    let number = number.strip_prefix('-').unwrap_or(number);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    !whole.is_empty() && whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
}

/// One cue read: its timing line, times, number line (if it has one) and text as WebVTT.
struct Cue {
    line: OwnedLine,
    timing: Timing,
    number: Option<OwnedLine>,
    text: String,
}

impl Cue {
    /// Whether its text holds anything but whitespace (a chapter's title).
    fn titled(&self) -> bool {
        !self.text.trim().is_empty()
    }

    /// Writes it as a WebVTT cue.
    fn write(&self, vtt: &mut String) {
        if let Some(number) = &self.number {
            vtt.push_str(number.text.trim_matches(cue::WHITESPACE));
            vtt.push('\n');
        }
        let (start, end) = (cue::Time(self.timing.start), cue::Time(self.timing.end));
        // Writing to a String does not fail.
        let _ = writeln!(vtt, "{start} --> {end}");
        if !self.text.is_empty() {
            vtt.push_str(&self.text);
            vtt.push('\n');
        }
        vtt.push('\n');
    }

    /// Gives its lines' room back to `lines` ([`Lines::recycle`]).
    fn recycle<R: Read>(self, lines: &mut Lines<R>) {
        lines.recycle(self.line);
        self.number.into_iter().for_each(|number| lines.recycle(number));
        lines.recycle_text(self.text);
    }
}

const HEADER: &str = "WEBVTT\n\n";

/// Checks the lines of an SRT file as a track of `kind`: its number of cues, and the length of
/// the WebVTT it makes, which is written to `vtt` when given.
///
/// The cues are sorted before they are written and their order checked, so a file is held whole,
/// as cues, to convert it; to check captions, a cue at a time (sorted captions are always in
/// order); to check chapters, each chapter's timing line, to sort them.
pub(super) fn convert<R: Read>(
    lines: &mut Lines<R>,
    kind: Kind,
    vtt: Option<&mut String>,
) -> Result<(usize, u64), ReadError> {
    let keep = vtt.is_some() || kind == Kind::Chapters;
    let (mut cues, mut count, mut len) = (Vec::new(), 0, HEADER.len() as u64);
    let mut scratch = String::new();
    while let Some(mut cue) = next_cue(lines, count > 0)? {
        count += 1;
        scratch.clear();
        cue.write(&mut scratch);
        len += scratch.len() as u64;
        match (keep, vtt.is_some()) {
            (true, true) => cues.push(cue),
            (true, false) => {
                // Checking chapters: the title's words are not needed, only whether it has any.
                let title = if cue.titled() { "-" } else { "" };
                let text = std::mem::replace(&mut cue.text, title.to_owned());
                lines.recycle_text(text);
                cue.number.take().into_iter().for_each(|number| lines.recycle(number));
                cues.push(cue);
            }
            (false, _) => cue.recycle(lines),
        }
    }
    if !keep {
        return Ok((count, len));
    }
    // Stable: cues that start at the same time stay in the file's order.
    cues.sort_by_key(|cue| cue.timing.start);
    let mut order = Order::new(kind);
    for cue in &cues {
        order.next(&cue.line.view(), &cue.timing, cue.titled())?;
    }
    if let Some(vtt) = vtt {
        vtt.reserve(len as usize);
        vtt.push_str(HEADER);
        cues.iter().for_each(|cue| cue.write(vtt));
    }
    Ok((order.count, len))
}

/// Reads the next cue (a block of lines between blank lines); `after_cue` when one came before
/// it. `None` past the last.
fn next_cue<R: Read>(lines: &mut Lines<R>, after_cue: bool) -> Result<Option<Cue>, ReadError> {
    let first = loop {
        match lines.next()? {
            None => return Ok(None),
            Some(line) if is_blank(&line.text) => lines.recycle(line),
            Some(line) => break line,
        }
    };
    let (number, line) = if first.text.contains("-->") {
        (None, first)
    } else if is_number(&first.text) {
        match lines.next()? {
            Some(line) if !is_blank(&line.text) => (Some(first), line),
            _ => {
                let message = "expected the timing line (`hh:mm:ss,ttt --> hh:mm:ss,ttt`) after \
                               the cue's number";
                return Err(first.view().error(first.text.len(), message).into());
            }
        }
    } else {
        return Err(not_a_cue(first.view(), after_cue).into());
    };
    let timing = cue::timing(&line.view(), Style::Srt)?;
    coordinates(&line.view(), timing.rest_at)?;
    let mut text = lines.spare_text();
    while let Some(text_line) = lines.next()? {
        if is_blank(&text_line.text) {
            lines.recycle(text_line);
            break;
        }
        if let Some(at) = text_line.text.find("-->") {
            let message = "`-->` in a cue's text: leave a blank line before the next cue";
            return Err(text_line.view().error(at, message).into());
        }
        // An empty line would end the cue in WebVTT (a line that only held `{\an8}`).
        let before = text.len();
        if before > 0 {
            text.push('\n');
        }
        convert_text_to(&text_line.text, &mut text);
        if text.len() == before + usize::from(before > 0) {
            text.truncate(before);
        }
        lines.recycle(text_line);
    }
    Ok(Some(Cue { line, timing, number, text }))
}

/// The error for a block whose first line is neither a cue number nor a timing line.
fn not_a_cue(first: Line<'_>, after_cue: bool) -> ParseError {
    let found = first.text.trim_matches(cue::WHITESPACE);
    let at = cue::blanks(first.text)
        + found.find(|c: char| !c.is_ascii_digit() && c != '-').unwrap_or(0);
    let mut message = format!(
        "expected the cue's number (digits) or its timing line \
         (`hh:mm:ss,ttt --> hh:mm:ss,ttt`), found `{found}`"
    );
    if after_cue {
        message.push_str(
            " (text after a blank line is not part of the cue before it: a cue's text \
             cannot hold a blank line)",
        );
    }
    first.error(at, message)
}

/// Checks what follows the end time on a timing line, from byte `at`: nothing, or the
/// `X1:… X2:… Y1:… Y2:…` coordinates some SRT writers add.
fn coordinates(line: &Line<'_>, at: usize) -> Result<(), ParseError> {
    let text = line.text;
    if at < text.len() && !text[at..].starts_with(cue::WHITESPACE) {
        return Err(line.error(at, "expected a space or the line's end after the end time"));
    }
    for (pos, token) in cue::tokens(text, at) {
        let coordinate = token.split_once(':').is_some_and(|(name, value)| {
            let value = value.strip_prefix('-').unwrap_or(value);
            matches!(name, "X1" | "X2" | "Y1" | "Y2")
                && !value.is_empty()
                && value.bytes().all(|b| b.is_ascii_digit())
        });
        if !coordinate {
            let message = format!(
                "unexpected `{token}` after the end time (only `X1:… X2:… Y1:… Y2:…` \
                 coordinates may follow)"
            );
            return Err(line.error(pos, message));
        }
    }
    Ok(())
}

/// The tags WebVTT has too, kept (in lower case).
const KEPT_TAGS: [&str; 6] = ["<b>", "</b>", "<i>", "</i>", "<u>", "</u>"];

/// Whether `text` starts with `prefix`, ASCII case ignored.
fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// The length of the `<font …>` or `</font>` tag `text` starts with.
fn font_tag(text: &str) -> Option<usize> {
    if starts_with_ignore_case(text, "</font>") {
        return Some(7);
    }
    let open = starts_with_ignore_case(text, "<font") && text[5..].starts_with([' ', '\t', '>']);
    open.then(|| text.find('>').map(|end| end + 1)).flatten()
}

/// The length of the character reference `text` starts with (`&amp;`, `&#233;`, `&#xE9;`).
fn entity(text: &str) -> Option<usize> {
    let body = text.strip_prefix('&')?;
    let end = body.find(';')?;
    let name = &body[..end];
    let ok = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
    } else if let Some(decimal) = name.strip_prefix('#') {
        !decimal.is_empty() && decimal.bytes().all(|b| b.is_ascii_digit())
    } else {
        name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    ok.then_some(end + 2)
}

/// One line of SRT text as WebVTT cue text.
///
/// ```text
/// {\an8}<font color="#ffff00"><I>Tom & Jerry</I></font> <3  →  <i>Tom &amp; Jerry</i> &lt;3
/// ```
#[cfg(test)]
pub(super) fn convert_text(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    convert_text_to(line, &mut out);
    out
}

/// [`convert_text`], written at the end of `out`.
fn convert_text_to(line: &str, out: &mut String) {
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let mut skip = c.len_utf8();
        match c {
            '{' if rest.starts_with("{\\") && rest.contains('}') => {
                skip = rest.find('}').map_or(skip, |end| end + 1);
            }
            '<' => {
                if let Some(tag) = KEPT_TAGS.iter().find(|t| starts_with_ignore_case(rest, t)) {
                    out.push_str(tag);
                    skip = tag.len();
                } else if let Some(len) = font_tag(rest) {
                    skip = len;
                } else {
                    out.push_str("&lt;");
                }
            }
            '>' => out.push_str("&gt;"),
            '&' => match entity(rest) {
                Some(len) => {
                    out.push_str(&rest[..len]);
                    skip = len;
                }
                None => out.push_str("&amp;"),
            },
            _ => out.push(c),
        }
        rest = &rest[skip..];
    }
}
