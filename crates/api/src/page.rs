//! A page of a listing (`GET /videos`, `/videos/{id}/captions`, `/watermarks`, …): its items
//! and where the other pages are.

use serde::{Deserialize, Serialize};

/// One page of a listing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page.
    pub data: Vec<T>,
    /// Where this page sits (absent from a few of api.video's examples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

impl<T> Page<T> {
    /// How many pages there are: `pagination.pagesTotal`, else (an answer without it) one more
    /// than `page` while this page is full (`size` items), this one when it is not.
    pub fn pages(&self, page: u32, size: usize) -> u32 {
        let guess = if self.data.len() >= size { page + 1 } else { page };
        self.pagination.as_ref().and_then(|p| p.pages_total).unwrap_or(guess)
    }

    /// Whether page `page` (from 1) is the last: the one `pagesTotal` names, or one that is not
    /// full (`size` items) when the answer does not say.
    pub fn is_last(&self, page: u32, size: usize) -> bool {
        match self.pagination.as_ref().and_then(|p| p.pages_total) {
            Some(total) => page >= total,
            None => self.data.len() < size,
        }
    }
}

/// `pagination` of a page.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// This page's number, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_page: Option<u32>,
    /// Items a page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    /// How many pages there are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages_total: Option<u32>,
    /// How many items there are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_total: Option<u64>,
    /// How many items this page holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_page_items: Option<u32>,
    /// `self`, `first`, `previous`, `next`, `last`.
    #[serde(default)]
    pub links: Vec<PageLink>,
}

/// One of a page's links.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PageLink {
    /// `self`, `first`, `previous`, `next` or `last`.
    pub rel: String,
    /// The page's path and query.
    pub uri: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(items: usize, pages_total: Option<u32>) -> Page<u8> {
        let pagination =
            pages_total.map(|t| Pagination { pages_total: Some(t), ..Default::default() });
        Page { data: vec![0; items], pagination }
    }

    #[test]
    fn the_last_page_is_the_one_the_answer_names_else_one_not_full() {
        assert!(page(100, Some(2)).is_last(2, 100) && !page(100, Some(2)).is_last(1, 100));
        assert!(!page(100, None).is_last(3, 100) && page(99, None).is_last(3, 100));
        assert_eq!((page(100, Some(7)).pages(1, 100), page(100, None).pages(4, 100)), (7, 5));
        assert_eq!(page(10, None).pages(4, 100), 4);
    }
}
