//! The languages api.video takes for captions and chapters: a closed list, the 672 tags its
//! documentation names (`vod/add-captions.md`, "Supported caption language tags"); the spec
//! answers `400 invalid-attribute` ("The "language" attribute is not valid.") to any other. Kept
//! as data with its source, `data/caption-languages.tsv`, so a new list is a new file.

use std::sync::OnceLock;

/// The list as the documentation gives it: `tag<TAB>English name<TAB>native name` a line, after
/// `#` comments naming the source.
const TABLE: &str = include_str!("../data/caption-languages.tsv");

/// A language api.video takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Language {
    /// The tag, as the list writes it (`en`, `fr-CA`, `es-419`, `zh-Hans-CN`).
    pub tag: &'static str,
    /// Its English name.
    pub english: &'static str,
    /// Its own name, as `languageName` gives it.
    pub native: &'static str,
}

/// Every language api.video takes, in the documentation's order.
pub fn caption_languages() -> &'static [Language] {
    static ALL: OnceLock<Vec<Language>> = OnceLock::new();
    ALL.get_or_init(|| {
        TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let mut fields = l.split('\t');
                let (tag, english, native) = (fields.next()?, fields.next()?, fields.next()?);
                Some(Language { tag, english, native })
            })
            .collect()
    })
}

/// The language `tag` names, if api.video takes it (the tag written as the list writes it).
pub fn caption_language(tag: &str) -> Option<&'static Language> {
    caption_languages().iter().find(|l| l.tag == tag)
}

/// Whether `tag` is written the way api.video's 400 asks before it looks at the list: letters,
/// digits (`es-419`) and dashes only.
pub fn language_tag_shape(tag: &str) -> bool {
    !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_holds_the_672_documented_tags_once_each() {
        let all = caption_languages();
        assert_eq!(all.len(), 672);
        let mut tags: Vec<&str> = all.iter().map(|l| l.tag).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), 672);
        for tag in ["es-419", "en-001", "ja-JP-TRADITIONAL", "zh-Hans-CN", "fr-CA", "en"] {
            assert!(caption_language(tag).is_some(), "{tag} is documented");
        }
        for tag in ["zz", "en-XX", "en-us", "EN", ""] {
            assert!(caption_language(tag).is_none(), "{tag} is not");
        }
        assert_eq!(caption_language("fr").map(|l| l.native), Some("Français"));
    }
}
