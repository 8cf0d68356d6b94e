//! The X API v2 client.
//!
//! [`Client`] sends requests for one credential set; [`Governor`] keeps every rate budget of
//! the process; [`Pages`] walks paged collections; [`StreamConnection`] reads a stream.
//! `endpoint` and `fields` hold what X publishes about its endpoints and payloads, so the rest
//! of netwar never spells a path or a field list.

pub mod auth;
pub mod backoff;
pub mod client;
pub mod endpoint;
pub mod fields;
pub mod governor;
pub mod paging;
pub mod requests;
pub mod response;
pub mod stream;

pub use backoff::{ReconnectPolicy, RetryPolicy, StreamFailure};
pub use client::{Call, Client, pin};
pub use endpoint::{Endpoint, Pool};
pub use governor::{BudgetStatus, Governor};
pub use paging::{End, Pages};
pub use requests::{
    Exclude, NewRule, ResourceOutcome, SearchOptions, StreamRule, TimelineOptions, Window,
};
pub use response::{Includes, Meta, Outcome, Page, Problem};
pub use stream::{
    DisconnectReason, MatchingRule, RawEvent, StreamConnection, StreamError, StreamEvent,
    StreamKind, StreamedTweet,
};
