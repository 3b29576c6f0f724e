//! WebVTT files checked as the W3C WebVTT spec writes them: the signature, header lines, then
//! blocks split by blank lines (NOTE, STYLE and REGION blocks, cues).

use super::cue::{self, Order, Style};
use super::region::{self, percentage};
use super::{Kind, Line, ParseError};

/// Whether `line` is the WebVTT signature: `WEBVTT`, alone or followed by a space or tab.
pub(super) fn is_signature(line: &str) -> bool {
    line.strip_prefix("WEBVTT").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Whether `line` starts a block of keyword `word` (`NOTE`, `STYLE`, `REGION`).
fn is_keyword(line: &str, word: &str) -> bool {
    line.strip_prefix(word).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// What the blocks read so far set: the cues' order, and the regions defined.
struct Blocks<'a> {
    order: Order,
    /// Each REGION block's identifier, and the block's first line.
    regions: Vec<(&'a str, Line<'a>)>,
}

/// Whether a line holds nothing but spaces, tabs or form feeds (or nothing at all).
fn is_blank(text: &str) -> bool {
    text.trim_matches(cue::WHITESPACE).is_empty()
}

/// Which of `lines` end a block: empty lines, and the lines of nothing but whitespace that
/// browsers read as such. A browser reads a whitespace line as text (of the cue, comment or
/// header it is in), but a line with `-->` after it starts the next cue all the same: so a
/// whitespace line counts as blank when the next line that is not whitespace is empty, holds
/// `-->`, or is past the end. One followed by other text stays text, as browsers show it.
fn separators(lines: &[Line<'_>]) -> Vec<bool> {
    let mut ends = vec![false; lines.len()];
    // What the next line that is not whitespace makes of the whitespace lines before it.
    let mut next_ends = true;
    for (i, line) in lines.iter().enumerate().rev() {
        if line.is_empty() {
            ends[i] = true;
            next_ends = true;
        } else if is_blank(line.text) {
            ends[i] = next_ends;
        } else {
            next_ends = line.text.contains("-->");
        }
    }
    ends
}

/// Checks `lines` (the first being the signature) as a track of `kind`; the number of cues.
pub(super) fn check(lines: &[Line<'_>], kind: Kind) -> Result<usize, ParseError> {
    let blank = separators(lines);
    // The header: lines up to the first blank one.
    let mut i = 1;
    while i < lines.len() && !blank[i] {
        if let Some(at) = lines[i].text.find("-->") {
            let message = "a cue right under the `WEBVTT` header: leave a blank line before it";
            return Err(lines[i].error(at, message));
        }
        i += 1;
    }
    let mut blocks = Blocks { order: Order::new(kind), regions: Vec::new() };
    loop {
        // Whitespace lines before a block are no part of it: a browser reads them and the line
        // after as a block of their own when no timing line follows, and drops it.
        while i < lines.len() && (blank[i] || is_blank(lines[i].text)) {
            i += 1;
        }
        if i == lines.len() {
            break;
        }
        let from = i;
        while i < lines.len() && !blank[i] {
            i += 1;
        }
        block(&lines[from..i], &mut blocks)?;
    }
    if blocks.order.count == 0 {
        let last = lines[lines.len() - 1];
        return Err(last.error(0, "no cues: the file holds no `START --> END` timing line"));
    }
    Ok(blocks.order.count)
}

/// Checks one block (lines between blank lines).
fn block<'a>(block: &[Line<'a>], blocks: &mut Blocks<'a>) -> Result<(), ParseError> {
    let first = block[0];
    let timing_index = if first.text.contains("-->") {
        0
    } else if block.len() > 1 && block[1].text.contains("-->") {
        1
    } else {
        return other_block(block, blocks);
    };
    let line = block[timing_index];
    let timing = cue::timing(&line, Style::WebVtt)?;
    settings(&line, timing.rest_at, &blocks.regions)?;
    let payload = &block[timing_index + 1..];
    for (n, text_line) in payload.iter().enumerate() {
        if let Some(at) = text_line.text.find("-->") {
            // A line of whitespace before it did not end the cue: say so there.
            if let Some(blank) = payload[..n].iter().rev().find(|l| is_blank(l.text)) {
                let message = "a line of only whitespace, then text, then a timing line: browsers \
                               show the text (up to the timing line) as this cue's, not as the \
                               next cue's identifier; make this line empty";
                return Err(blank.error(0, message));
            }
            let message = "`-->` in a cue's text: leave a blank line before the next cue";
            return Err(text_line.error(at, message));
        }
    }
    let text: String = payload.iter().map(|l| l.text).collect::<Vec<_>>().join("\n");
    blocks.order.next(&line, &timing, &text)
}

/// Checks a block that holds no timing line where a cue has one: a NOTE, STYLE or REGION block,
/// or an error.
fn other_block<'a>(block: &[Line<'a>], blocks: &mut Blocks<'a>) -> Result<(), ParseError> {
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
    if keyword != "NOTE" && blocks.order.count > 0 {
        let message = format!("a {keyword} block after the first cue (it must come before)");
        return Err(first.error(0, message));
    }
    for line in block {
        if let Some(at) = line.text.find("-->") {
            let message = format!("`-->` in a {keyword} block: leave a blank line before a cue");
            return Err(line.error(at, message));
        }
    }
    if keyword == "REGION" {
        region::check(block, &mut blocks.regions)?;
    }
    Ok(())
}

const SETTINGS: &str = "vertical, line, position, size, align, region";

/// Checks the cue settings of `line`, from byte `at` (just after the end time); `regions` are
/// the regions defined.
fn settings(line: &Line<'_>, at: usize, regions: &[(&str, Line<'_>)]) -> Result<(), ParseError> {
    let text = line.text;
    if at < text.len() && !text[at..].starts_with(cue::WHITESPACE) {
        return Err(line.error(at, "expected a space between the end time and cue settings"));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (pos, token) in cue::tokens(text, at) {
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
            "region" if !value.is_empty() && !regions.iter().any(|(id, _)| *id == value) => {
                let message = format!(
                    "no REGION block defines region `{value}` (define it before the first cue: \
                     `REGION`, then `id:{value}` on the line below)"
                );
                return Err(line.error(value_at, message));
            }
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
    }
    Ok(())
}

/// What a cue setting's value looks like.
fn hint(name: &str) -> &'static str {
    match name {
        "vertical" => "`rl` or `lr`",
        "line" => {
            "a line number (whole, at most 1.8e308 either way) or a percentage, then optionally \
             `,start`, `,center` or `,end`"
        }
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

/// Whether `value` is a `line:` position: a percentage or a (maybe negative) line number, one
/// a browser can hold (a line number past the largest floating-point number is dropped).
fn line_position(value: &str) -> bool {
    let whole = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    percentage(value)
        || (whole(value.strip_prefix('-').unwrap_or(value))
            && value.parse::<f64>().is_ok_and(f64::is_finite))
}
