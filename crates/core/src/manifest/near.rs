//! The column a misspelt header name most likely meant: `Path` → `path`, `titel` → `title`,
//! `meta-genre` → `meta.genre`.

use super::{COLUMNS, META_PREFIX};

/// The known column `name` is nearest to: the same but for case, separators (`-`, ` ` for `_`),
/// or at most two letters added, dropped, changed or swapped (one for names of four letters or
/// fewer, so short names are not taken for one another). `None` when nothing is that near.
pub(crate) fn near_column(name: &str) -> Option<String> {
    let folded = name.trim().to_lowercase().replace(['-', ' '], "_");
    for prefix in ["meta_", "meta:", "meta/"] {
        if let Some(key) = folded.strip_prefix(prefix).filter(|k| !k.is_empty()) {
            return Some(format!("{META_PREFIX}{key}"));
        }
    }
    if folded.starts_with(META_PREFIX) {
        return Some(format!("{META_PREFIX}{}", &name.trim()[META_PREFIX.len()..]));
    }
    let most = if folded.chars().count() <= 4 { 1 } else { 2 };
    COLUMNS
        .iter()
        .map(|c| (distance(&folded, c), *c))
        .filter(|(d, _)| *d <= most)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

/// Edit distance with adjacent transpositions (optimal string alignment), over characters.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspellings_find_their_column_and_strangers_none() {
        let near = |n: &str| near_column(n);
        assert_eq!(near("Path").as_deref(), Some("path"));
        assert_eq!(near("TITLE").as_deref(), Some("title"));
        assert_eq!(near("titel").as_deref(), Some("title"));
        assert_eq!(near("descripton").as_deref(), Some("description"));
        assert_eq!(near("player-id").as_deref(), Some("player_id"));
        assert_eq!(near("Meta.Genre").as_deref(), Some("meta.Genre"));
        assert_eq!(near("meta_genre").as_deref(), Some("meta.genre"));
        assert_eq!(near("colour"), None);
        assert_eq!(near("x"), None);
        assert_eq!(distance("ab", "ba"), 1);
    }
}
