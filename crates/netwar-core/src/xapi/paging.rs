//! Paging through collections, and how a collection ended.
//!
//! X pages with opaque tokens: `meta.next_token` goes back as `pagination_token` (or
//! `next_token` on search), and the last page has none. Timelines, mentions and List tweets
//! also stop at a history cap (the newest 3,200 or 800 posts); reaching it is not an error but
//! it is worth knowing — it means older posts exist that this endpoint will never return — so
//! a finished [`Pages`] says whether it ran out or hit the cap.

use futures_util::Stream;

use crate::error::Result;

use super::client::{Call, Client};
use super::endpoint::Endpoint;
use super::response::Page;

/// How a collection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "end")]
pub enum End {
    /// Every item the query selects was returned.
    Exhausted,
    /// The endpoint's history cap was reached: older items exist but cannot be paged to.
    Capped { cap: u32 },
    /// The caller stopped early (a page limit, or a known item was reached).
    Stopped,
}

/// A paged collection, fetched one page at a time.
#[derive(Debug)]
pub struct Pages {
    client: Client,
    call: Call,
    token_parameter: &'static str,
    cap: Option<u32>,
    /// With `exclude` or a time window, a short or empty page is not a sign of the cap.
    filtered: bool,
    items: u64,
    pages: u64,
    started: bool,
    next_token: Option<String>,
    end: Option<End>,
}

impl Pages {
    pub(crate) fn new(client: Client, call: Call, cap: Option<u32>, filtered: bool) -> Self {
        let token_parameter = match call.endpoint {
            Endpoint::SearchRecent | Endpoint::SearchAll => "next_token",
            _ => "pagination_token",
        };
        Pages {
            client,
            call,
            token_parameter,
            cap,
            filtered,
            items: 0,
            pages: 0,
            started: false,
            next_token: None,
            end: None,
        }
    }

    /// Starts from a token saved by an earlier run (a job interrupted half-way resumes here).
    pub fn resume_from(mut self, token: Option<String>) -> Self {
        if let Some(token) = token {
            self.started = true;
            self.next_token = Some(token);
        }
        self
    }

    /// The next page, or `None` when the collection has ended (see [`Pages::end`]).
    pub async fn next_page(&mut self) -> Result<Option<Page>> {
        if self.end.is_some() {
            return Ok(None);
        }
        if self.started && self.next_token.is_none() {
            self.end = Some(End::Exhausted);
            return Ok(None);
        }

        let mut call = self.call.clone();
        if let Some(token) = &self.next_token {
            call.set_param(self.token_parameter, token.clone());
        }
        let page = self.client.page(&call).await?;
        let had_token = self.next_token.is_some();
        self.started = true;
        self.pages += 1;
        self.items += page.data.len() as u64;
        self.next_token = page.meta.next_token.clone();

        if self.next_token.is_none() {
            self.end = Some(self.classify_end(had_token, page.data.is_empty()));
        }
        Ok(Some(page))
    }

    fn classify_end(&self, had_token: bool, empty: bool) -> End {
        let Some(cap) = self.cap else {
            return End::Exhausted;
        };
        // X returns an empty page past the cap; without filters, so many items also means it.
        if self.items >= u64::from(cap) || (had_token && empty && !self.filtered) {
            End::Capped { cap }
        } else {
            End::Exhausted
        }
    }

    /// The token that fetches the page after the last one returned, for saving progress.
    pub fn next_token(&self) -> Option<&str> {
        self.next_token.as_deref()
    }

    /// How the collection ended, once [`Pages::next_page`] has returned `None` or the last
    /// page; `None` while pages remain.
    pub fn end(&self) -> Option<End> {
        self.end
    }

    /// Marks the collection as stopped by the caller.
    pub fn stop(&mut self) {
        self.end.get_or_insert(End::Stopped);
    }

    pub fn items_seen(&self) -> u64 {
        self.items
    }

    pub fn pages_fetched(&self) -> u64 {
        self.pages
    }

    /// The pages as a stream, for callers that prefer combinators.
    pub fn into_stream(self) -> impl Stream<Item = Result<Page>> {
        futures_util::stream::try_unfold(self, |mut pages| async move {
            Ok(pages.next_page().await?.map(|page| (page, pages)))
        })
    }
}
