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
