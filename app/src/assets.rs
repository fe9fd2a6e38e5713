//! Where the page links the portal's built assets (stylesheet, hydration JS and wasm, public
//! files). The server serves them under a content-hashed prefix and provides it as context; without
//! one (a page rendered with no built site, as in tests) the unhashed paths are linked.
//!
//! In the browser there is no such context, and none is needed: hydration keeps the attributes the
//! server rendered.

use leptos::prelude::use_context;

/// The URL prefix of the built assets, e.g. `/assets/3f2a…`; empty for the unhashed paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetBase(pub String);

/// The prefix this page's assets are linked under (the `root` of `HydrationScripts`).
pub fn base() -> String {
    use_context::<AssetBase>().unwrap_or_default().0
}

/// The URL of the built file at `path`, relative to the site root (`pkg/countersign.css`).
pub fn url(path: &str) -> String {
    format!("{}/{path}", base())
}
