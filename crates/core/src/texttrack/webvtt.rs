//! WebVTT files checked as the W3C WebVTT spec writes them: the signature, header lines, then
//! blocks split by blank lines (NOTE, STYLE and REGION blocks, cues).

use super::cue::{self, Order, Style};
use super::{Kind, Line, ParseError};

/// Whether `line` is the WebVTT signature: `WEBVTT`, alone or followed by a space or tab.
pub(super) fn is_signature(line: &str) -> bool {
    line.strip_prefix("WEBVTT").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Whether `line` starts a block of keyword `word` (`NOTE`, `STYLE`, `REGION`).
fn is_keyword(line: &str, word: &str) -> bool {
    line.strip_prefix(word).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Checks `lines` (the first being the signature) as a track of `kind`; the number of cues.
pub(super) fn check(lines: &[Line<'_>], kind: Kind) -> Result<usize, ParseError> {
    // The header: lines up to the first blank one.
    let mut i = 1;
    while i < lines.len() && !lines[i].is_empty() {
        if let Some(at) = lines[i].text.find("-->") {
            let message = "a cue right under the `WEBVTT` header: leave a blank line before it";
            return Err(lines[i].error(at, message));
        }
        i += 1;
    }
    let mut order = Order::new(kind);
    loop {
        while i < lines.len() && lines[i].is_empty() {
            i += 1;
        }
        if i == lines.len() {
            break;
        }
        let from = i;
        while i < lines.len() && !lines[i].is_empty() {
            i += 1;
        }
        block(&lines[from..i], &mut order)?;
    }
    if order.count == 0 {
        let last = lines[lines.len() - 1];
        return Err(last.error(0, "no cues: the file holds no `START --> END` timing line"));
    }
    Ok(order.count)
}

/// Checks one block (lines between blank lines).
fn block(block: &[Line<'_>], order: &mut Order) -> Result<(), ParseError> {
    let first = block[0];
    let timing_index = if first.text.contains("-->") {
        0
    } else if block.len() > 1 && block[1].text.contains("-->") {
        1
    } else {
        return other_block(block, order);
    };
    let line = block[timing_index];
    let timing = cue::timing(&line, Style::WebVtt)?;
    settings(&line, timing.rest_at)?;
    let payload = &block[timing_index + 1..];
    for text_line in payload {
        if let Some(at) = text_line.text.find("-->") {
            let message = "`-->` in a cue's text: leave a blank line before the next cue";
            return Err(text_line.error(at, message));
        }
    }
    let text: String = payload.iter().map(|l| l.text).collect::<Vec<_>>().join("\n");
    order.next(&line, &timing, &text)
}

/// Checks a block that holds no timing line where a cue has one: a NOTE, STYLE or REGION block,
/// or an error.
fn other_block(block: &[Line<'_>], order: &Order) -> Result<(), ParseError> {
    let first = block[0];
    let keyword = ["NOTE", "STYLE", "REGION"].into_iter().find(|k| is_keyword(first.text, k));
    let Some(keyword) = keyword else {
        // A line that starts like a timestamp is a timing line gone wrong: say where.
        let timing_like = block.iter().take(2).find(|l| {
            let text = l.text.trim_start_matches([' ', '\t']);
            text.starts_with(|c: char| c.is_ascii_digit()) && text.contains(':')
        });
        if let Some(line) = timing_like {
            cue::timing(line, Style::WebVtt)?;
        }
        let message = "expected a cue (an optional identifier line, then `START --> END`) or a \
                       NOTE, STYLE or REGION block";
        return Err(first.error(0, message));
    };
    if keyword != "NOTE" && order.count > 0 {
        let message = format!("a {keyword} block after the first cue (it must come before)");
        return Err(first.error(0, message));
    }
    for line in block {
        if let Some(at) = line.text.find("-->") {
            let message = format!("`-->` in a {keyword} block: leave a blank line before a cue");
            return Err(line.error(at, message));
        }
    }
    Ok(())
}

const SETTINGS: &str = "vertical, line, position, size, align, region";

/// Checks the cue settings of `line`, from byte `at` (just after the end time).
fn settings(line: &Line<'_>, at: usize) -> Result<(), ParseError> {
    let text = line.text;
    if at < text.len() && !text[at..].starts_with([' ', '\t']) {
        return Err(line.error(at, "expected a space between the end time and cue settings"));
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut pos = at;
    while pos < text.len() {
        pos += cue::blanks(&text[pos..]);
        if pos == text.len() {
            break;
        }
        let len = text[pos..].find([' ', '\t']).unwrap_or(text.len() - pos);
        let token = &text[pos..pos + len];
        let Some((name, value)) = token.split_once(':') else {
            let message = format!("expected a cue setting `name:value`, found `{token}`");
            return Err(line.error(pos, message));
        };
        let value_at = pos + name.len() + 1;
        let ok = match name {
            "vertical" => matches!(value, "rl" | "lr"),
            "line" => with_alignment(value, line_position, &["start", "center", "end"]),
            "position" => with_alignment(value, percentage, &["line-left", "center", "line-right"]),
            "size" => percentage(value),
            "align" => matches!(value, "start" | "center" | "end" | "left" | "right"),
            "region" => !value.is_empty(),
            _ => {
                let message = format!("unknown cue setting `{name}` (known: {SETTINGS})");
                return Err(line.error(pos, message));
            }
        };
        if !ok {
            let message = format!("bad value `{value}` for cue setting `{name}`: {}", hint(name));
            return Err(line.error(value_at, message));
        }
        if seen.contains(&name) {
            return Err(line.error(pos, format!("cue setting `{name}` given twice")));
        }
        seen.push(name);
        pos += len;
    }
    Ok(())
}

/// What a cue setting's value looks like.
fn hint(name: &str) -> &'static str {
    match name {
        "vertical" => "`rl` or `lr`",
        "line" => "a line number or a percentage, then optionally `,start`, `,center` or `,end`",
        "position" => "a percentage, then optionally `,line-left`, `,center` or `,line-right`",
        "size" => "a percentage such as `50%`",
        "align" => "`start`, `center`, `end`, `left` or `right`",
        _ => "a region identifier",
    }
}

/// Whether `value` is `first` optionally followed by `,` and one of `alignments`.
fn with_alignment(value: &str, first: fn(&str) -> bool, alignments: &[&str]) -> bool {
    match value.split_once(',') {
        None => first(value),
        Some((head, alignment)) => first(head) && alignments.contains(&alignment),
    }
}

/// Whether `value` is digits, optionally with a fraction: `12`, `12.5`.
fn number(value: &str) -> bool {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

/// Whether `value` is a WebVTT percentage: a number from 0 to 100, then `%`.
fn percentage(value: &str) -> bool {
    value
        .strip_suffix('%')
        .is_some_and(|n| number(n) && n.parse::<f64>().is_ok_and(|n| (0.0..=100.0).contains(&n)))
}

/// Whether `value` is a `line:` position: a percentage or a (maybe negative) line number.
fn line_position(value: &str) -> bool {
    let whole = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    percentage(value) || whole(value.strip_prefix('-').unwrap_or(value))
}
