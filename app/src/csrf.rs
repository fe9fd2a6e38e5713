//! The CSRF synchronizer token as pages use it: the server embeds it in `<meta name="csrf-token">`,
//! forms carry it in a hidden field, `fetch` calls in a header.

use leptos::prelude::*;

use crate::backend::CSRF_FIELD;

/// This page's CSRF token (empty when none was issued, which the server then refuses).
pub fn csrf_token() -> String {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .and_then(|p| {
                p.extensions
                    .get::<crate::backend::CsrfToken>()
                    .map(|t| t.0.clone())
            })
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        // In the browser the server-rendered meta tag is the source, so forms rendered after
        // hydration carry the same token as the page.
        document()
            .query_selector("meta[name=csrf-token]")
            .ok()
            .flatten()
            .and_then(|m| m.get_attribute("content"))
            .unwrap_or_default()
    }
}

/// The hidden field every state-changing form includes.
#[component]
pub fn CsrfField() -> impl IntoView {
    view! { <input type="hidden" name=CSRF_FIELD value=csrf_token() /> }
}
