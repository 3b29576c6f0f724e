//! Values the user supplied, shown in messages without flooding the terminal.
//!
//! A path, id or flag value can be megabytes long (a generated manifest gone wrong, a file pasted
//! into a flag). Every message that echoes one goes through [`quoted`], which keeps the start of
//! a long value and says how long the whole is, so the message stays readable and bounded.

use std::borrow::Cow;

/// The most characters of one value a message shows.
pub const MAX_SHOWN_CHARS: usize = 200;

/// `value` in backticks, as messages show values; a value over [`MAX_SHOWN_CHARS`] characters is
/// cut, with an ellipsis and its full length in bytes: `` `aaaa…` (10485760 bytes) ``.
///
/// ```
/// use avbatch_core::excerpt::quoted;
/// assert_eq!(quoted("a.mp4"), "`a.mp4`");
/// let long = "a".repeat(10 << 20);
/// assert!(quoted(&long).ends_with("…` (10485760 bytes)"));
/// ```
pub fn quoted(value: &str) -> String {
    match head(value) {
        None => format!("`{value}`"),
        Some(head) => format!("`{head}…` ({} bytes)", value.len()),
    }
}

/// `value` cut like [`quoted`] does, without the backticks: for messages that quote values their
/// own way (clap's `'…'`).
pub fn cut(value: &str) -> Cow<'_, str> {
    match head(value) {
        None => Cow::Borrowed(value),
        Some(head) => Cow::Owned(format!("{head}… ({} bytes)", value.len())),
    }
}

/// The first [`MAX_SHOWN_CHARS`] characters of `value`, or `None` when it is no longer than that.
fn head(value: &str) -> Option<&str> {
    // Cut on a character boundary, never inside a multi-byte character.
    value.char_indices().nth(MAX_SHOWN_CHARS).map(|(at, _)| &value[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_whole_and_long_ones_cut_on_a_character() {
        assert_eq!(quoted(""), "``");
        let edge = "é".repeat(MAX_SHOWN_CHARS);
        assert_eq!(quoted(&edge), format!("`{edge}`"));
        let long = format!("{edge}é");
        assert_eq!(quoted(&long), format!("`{edge}…` ({} bytes)", long.len()));
        assert_eq!(cut(&long), format!("{edge}… ({} bytes)", long.len()));
        assert_eq!(cut("x"), "x");
        let huge = "a".repeat(10 << 20);
        let shown = quoted(&huge);
        assert!(shown.len() < 300, "{}", shown.len());
        assert!(shown.ends_with("…` (10485760 bytes)"), "{shown}");
    }
}
