//! WebVTT files checked as the W3C WebVTT spec writes them: the signature, header lines, then
//! blocks split by blank lines (NOTE, STYLE and REGION blocks, cues).

use std::io::Read;

use super::cue::{self, Order, Style};
use super::lines::{Lines, OwnedLine};
use super::region::{self, percentage};
use super::{Kind, Line, ParseError, ReadError};

/// Whether `line` is the WebVTT signature: `WEBVTT`, alone or followed by a space or tab.
pub(super) fn is_signature(line: &str) -> bool {
    line.strip_prefix("WEBVTT").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Whether `line` starts a block of keyword `word` (`NOTE`, `STYLE`, `REGION`).
fn is_keyword(line: &str, word: &str) -> bool {
    line.strip_prefix(word).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// What the blocks read so far set: the cues' order, and the regions defined.
struct Blocks {
    order: Order,
    /// Each REGION block's identifier, and the number of the block's first line.
    regions: Vec<(String, u64)>,
}

/// Whether a line holds nothing but spaces, tabs or form feeds (or nothing at all).
fn is_blank(text: &str) -> bool {
    text.trim_matches(cue::WHITESPACE).is_empty()
}

/// The lines of a WebVTT file, each with whether it ends a block: empty lines, and the lines of
/// nothing but whitespace that browsers read as such. A browser reads a whitespace line as text
/// (of the cue, comment or header it is in), but a line with `-->` after it starts the next cue
/// all the same: so a whitespace line counts as blank when the next line that is not whitespace
/// is empty, holds `-->`, or is past the end. One followed by other text stays text, as
/// browsers show it.
///
/// A run of whitespace lines comes as its last line alone: every line of a run ends a block or
/// none does, and what the checks make of a whitespace line (skipped between blocks, a line of
/// a header, comment or cue) does not depend on how many there are; the last is the one a
/// cue's error names, and the file's last line when the file ends with the run.
struct Marked<'l, R> {
    lines: &'l mut Lines<R>,
    /// A line read past a run of whitespace lines.
    ahead: Option<OwnedLine>,
    /// The last line handed out, for the error of a file without cues.
    last_number: u64,
    last_text: String,
}

impl<'l, R: Read> Marked<'l, R> {
    fn new(lines: &'l mut Lines<R>) -> Self {
        Marked { lines, ahead: None, last_number: 1, last_text: String::new() }
    }

    fn next(&mut self) -> Result<Option<(OwnedLine, bool)>, ReadError> {
        let line = match self.ahead.take() {
            Some(line) => line,
            None => match self.lines.next()? {
                Some(line) => line,
                None => return Ok(None),
            },
        };
        let marked = if line.text.is_empty() || !is_blank(&line.text) {
            let ends = line.text.is_empty();
            (line, ends)
        } else {
            let mut last = line;
            loop {
                match self.lines.next()? {
                    None => break (last, true),
                    Some(next) if !next.text.is_empty() && is_blank(&next.text) => {
                        self.lines.recycle(std::mem::replace(&mut last, next));
                    }
                    Some(next) => {
                        let ends = next.text.is_empty() || next.text.contains("-->");
                        self.ahead = Some(next);
                        break (last, ends);
                    }
                }
            }
        };
        self.last_number = marked.0.number;
        self.last_text.clear();
        self.last_text.push_str(&marked.0.text);
        Ok(Some(marked))
    }

    /// Gives back a line no longer needed ([`Lines::recycle`]).
    fn recycle(&mut self, line: OwnedLine) {
        self.lines.recycle(line);
    }
}

/// Checks the lines of a WebVTT file (the first being the signature) as a track of `kind`; the
/// number of cues.
pub(super) fn check<R: Read>(lines: &mut Lines<R>, kind: Kind) -> Result<usize, ReadError> {
    let mut marked = Marked::new(lines);
    // The signature, which the format was told by.
    marked.next()?;
    // The header: lines up to the first blank one.
    while let Some((line, ends)) = marked.next()? {
        if ends {
            break;
        }
        if let Some(at) = line.text.find("-->") {
            let message = "a cue right under the `WEBVTT` header: leave a blank line before it";
            return Err(line.view().error(at, message).into());
        }
        marked.recycle(line);
    }
    let mut blocks = Blocks { order: Order::new(kind), regions: Vec::new() };
    while let Some((line, ends)) = marked.next()? {
        // Whitespace lines before a block are no part of it: a browser reads them and the line
        // after as a block of their own when no timing line follows, and drops it.
        if ends || is_blank(&line.text) {
            marked.recycle(line);
            continue;
        }
        block(line, &mut marked, &mut blocks)?;
    }
    if blocks.order.count == 0 {
        let last = Line { number: marked.last_number, text: &marked.last_text };
        return Err(last.error(0, "no cues: the file holds no `START --> END` timing line").into());
    }
    Ok(blocks.order.count)
}

/// Checks one block (lines between blank lines), from its first line on.
fn block<R: Read>(
    first: OwnedLine,
    marked: &mut Marked<'_, R>,
    blocks: &mut Blocks,
) -> Result<(), ReadError> {
    if first.text.contains("-->") {
        return cue(first, marked, blocks);
    }
    let second = match marked.next()? {
        Some((line, false)) => line,
        // A block of one line.
        _ => return other_block(first, None, marked, blocks),
    };
    if second.text.contains("-->") {
        // The first line is the cue's identifier.
        marked.recycle(first);
        return cue(second, marked, blocks);
    }
    other_block(first, Some(second), marked, blocks)
}

/// Checks a cue from its timing line on, to the end of its block.
fn cue<R: Read>(
    timing_line: OwnedLine,
    marked: &mut Marked<'_, R>,
    blocks: &mut Blocks,
) -> Result<(), ReadError> {
    let line = timing_line.view();
    let timing = cue::timing(&line, Style::WebVtt)?;
    settings(&line, timing.rest_at, &blocks.regions)?;
    // The last whitespace line of the cue's text so far, and whether the text holds anything.
    let (mut blank, mut titled) = (None::<OwnedLine>, false);
    while let Some((text_line, ends)) = marked.next()? {
        if ends {
            break;
        }
        if let Some(at) = text_line.text.find("-->") {
            // A line of whitespace before it did not end the cue: say so there.
            if let Some(blank) = blank {
                let message = "a line of only whitespace, then text, then a timing line: browsers \
                               show the text (up to the timing line) as this cue's, not as the \
                               next cue's identifier; make this line empty";
                return Err(blank.view().error(0, message).into());
            }
            let message = "`-->` in a cue's text: leave a blank line before the next cue";
            return Err(text_line.view().error(at, message).into());
        }
        titled |= !text_line.text.trim().is_empty();
        let done = match is_blank(&text_line.text) {
            true => blank.replace(text_line),
            false => Some(text_line),
        };
        done.into_iter().for_each(|line| marked.recycle(line));
    }
    blocks.order.next(&line, &timing, titled)?;
    marked.recycle(timing_line);
    blank.into_iter().for_each(|line| marked.recycle(line));
    Ok(())
}

/// Checks a block that holds no timing line where a cue has one: a NOTE, STYLE or REGION block,
/// or an error. `second` is its second line, if it has one; the rest are read from `marked`.
fn other_block<R: Read>(
    first: OwnedLine,
    second: Option<OwnedLine>,
    marked: &mut Marked<'_, R>,
    blocks: &mut Blocks,
) -> Result<(), ReadError> {
    let keyword = ["NOTE", "STYLE", "REGION"].into_iter().find(|k| is_keyword(&first.text, k));
    let Some(keyword) = keyword else {
        // A line that starts like a timestamp is a timing line gone wrong: say where.
        let timing_like = std::iter::once(&first).chain(&second).find(|l| {
            let text = l.text.trim_start_matches([' ', '\t']);
            text.starts_with(|c: char| c.is_ascii_digit()) && text.contains(':')
        });
        if let Some(line) = timing_like {
            cue::timing(&line.view(), Style::WebVtt)?;
        }
        let message = "expected a cue (an optional identifier line, then `START --> END`) or a \
                       NOTE, STYLE or REGION block";
        return Err(first.view().error(0, message).into());
    };
    if keyword != "NOTE" && blocks.order.count > 0 {
        let message = format!("a {keyword} block after the first cue (it must come before)");
        return Err(first.view().error(0, message).into());
    }
    // A REGION block's own problems are said after any `-->` in it, which would end it.
    let mut region = (keyword == "REGION").then(|| region::Block::new(first.view()));
    let mut next = second;
    while let Some(line) = next {
        if let Some(at) = line.text.find("-->") {
            let message = format!("`-->` in a {keyword} block: leave a blank line before a cue");
            return Err(line.view().error(at, message).into());
        }
        if let Some(region) = &mut region {
            region.line(line.view(), &blocks.regions);
        }
        marked.recycle(line);
        next = match marked.next()? {
            Some((line, false)) => Some(line),
            _ => None,
        };
    }
    if let Some(region) = region {
        region.finish(first.view(), &mut blocks.regions)?;
    }
    marked.recycle(first);
    Ok(())
}

const SETTINGS: &str = "vertical, line, position, size, align, region";

/// Checks the cue settings of `line`, from byte `at` (just after the end time); `regions` are
/// the regions defined.
fn settings(line: &Line<'_>, at: usize, regions: &[(String, u64)]) -> Result<(), ParseError> {
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
            "region" if !value.is_empty() && !regions.iter().any(|(id, _)| id == value) => {
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
