//! SRT files read and made into WebVTT.
//!
//! A cue is its number (digits, as `12`; some writers put `-1`, `1.1` or `007`, and some none),
//! its timing line (`00:00:01,000 --> 00:00:02,500`, maybe followed by `X1:… X2:… Y1:… Y2:…`
//! coordinates, which are dropped) and its text lines, up to a blank line. The WebVTT written
//! has the cues sorted by start time (stably: cues that start together keep their order), each
//! with its number as its identifier; keeps `<b>`, `<i>` and `<u>`; drops `<font …>` tags and
//! `{\an8}`-style overrides; escapes any other `<`, `>` and `&` so the text reads as the SRT
//! showed it. A cue may end as it starts (it is written so too).

use super::cue::{self, Order, Style, Timing};
use super::{Kind, Line, ParseError};

/// Whether an SRT line ends a cue: nothing on it but whitespace.
fn is_blank(line: &Line<'_>) -> bool {
    line.text.trim_matches(cue::WHITESPACE).is_empty()
}

/// Whether `line` is an SRT cue number: digits, maybe after a `-`, maybe followed by a `.` and
/// more digits (`12`, `-1`, `1.1`, `007`), with whitespace around.
pub(super) fn is_number(line: &str) -> bool {
    let number = line.trim_matches(cue::WHITESPACE);
    let number = number.strip_prefix('-').unwrap_or(number);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    !whole.is_empty() && whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
}

/// One cue read: its timing line, times, number (if it has one) and text as WebVTT.
struct Cue<'a> {
    line: Line<'a>,
    timing: Timing,
    number: Option<&'a str>,
    text: String,
}

/// Checks `lines` as an SRT track of `kind`: the WebVTT it makes and its number of cues.
pub(super) fn convert_lines(lines: &[Line<'_>], kind: Kind) -> Result<(String, usize), ParseError> {
    let mut cues = Vec::new();
    let mut i = 0;
    loop {
        while i < lines.len() && is_blank(&lines[i]) {
            i += 1;
        }
        if i == lines.len() {
            break;
        }
        let from = i;
        while i < lines.len() && !is_blank(&lines[i]) {
            i += 1;
        }
        cues.push(cue(&lines[from..i], !cues.is_empty())?);
    }
    // Stable: cues that start at the same time stay in the file's order.
    cues.sort_by_key(|cue| cue.timing.start);
    let mut vtt = String::from("WEBVTT\n\n");
    let mut order = Order::new(kind);
    for cue in &cues {
        order.next(&cue.line, &cue.timing, &cue.text)?;
        if let Some(number) = cue.number {
            vtt.push_str(number);
            vtt.push('\n');
        }
        let (start, end) = (cue::show(cue.timing.start), cue::show(cue.timing.end));
        vtt.push_str(&format!("{start} --> {end}\n"));
        if !cue.text.is_empty() {
            vtt.push_str(&cue.text);
            vtt.push('\n');
        }
        vtt.push('\n');
    }
    Ok((vtt, order.count))
}

/// Reads one cue (a block of lines between blank lines); `after_cue` when one came before it.
fn cue<'a>(block: &[Line<'a>], after_cue: bool) -> Result<Cue<'a>, ParseError> {
    let first = block[0];
    let (number, timing_index) = if first.text.contains("-->") {
        (None, 0)
    } else if is_number(first.text) {
        if block.len() == 1 {
            let message = "expected the timing line (`hh:mm:ss,ttt --> hh:mm:ss,ttt`) after the \
                           cue's number";
            return Err(first.error(first.text.len(), message));
        }
        (Some(first.text.trim_matches(cue::WHITESPACE)), 1)
    } else {
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
        return Err(first.error(at, message));
    };
    let line = block[timing_index];
    let timing = cue::timing(&line, Style::Srt)?;
    coordinates(&line, timing.rest_at)?;
    let mut text = Vec::new();
    for text_line in &block[timing_index + 1..] {
        if let Some(at) = text_line.text.find("-->") {
            let message = "`-->` in a cue's text: leave a blank line before the next cue";
            return Err(text_line.error(at, message));
        }
        let converted = convert_text(text_line.text);
        // An empty line would end the cue in WebVTT (a line that only held `{\an8}`).
        if !converted.is_empty() {
            text.push(converted);
        }
    }
    Ok(Cue { line, timing, number, text: text.join("\n") })
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
pub(super) fn convert_text(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
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
    out
}
