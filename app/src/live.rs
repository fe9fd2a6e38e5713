//! Live updates: one server-sent-events connection per page tells every resource that reads
//! [`version`] to fetch again when an elevation changes (an approval, a rejection, a withdrawal,
//! time running out). The events carry no data; pages refetch through their usual checks.

use leptos::prelude::*;

/// Bumped on every event.
#[derive(Clone, Copy)]
struct Live(RwSignal<u64>);

/// Provide the counter (once, at the root).
pub fn provide() {
    provide_context(Live(RwSignal::new(0)));
}

/// The counter, tracked: a resource whose source reads it refetches on every event.
pub fn version() -> u64 {
    use_context::<Live>().map_or(0, |l| l.0.get())
}

/// Open the connection (in the browser, once signed in; a second call does nothing).
pub fn connect() {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;
        let Some(Live(counter)) = use_context::<Live>() else {
            return;
        };
        thread_local! {
            static OPEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if OPEN.with(|o| o.replace(true)) {
            return;
        }
        if let Ok(source) = web_sys::EventSource::new("/events") {
            let listener = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |_| {
                // The person's own ceremony is still finishing (its response renews the session
                // cookie, and it refetches when done): a fetch now would carry the old cookie.
                let busy = document()
                    .query_selector("form[aria-busy=true]")
                    .ok()
                    .flatten()
                    .is_some();
                if !busy {
                    counter.update(|n| *n += 1);
                }
            });
            source.set_onmessage(Some(listener.as_ref().unchecked_ref()));
            // Both live as long as the page: the connection is the page's, not a component's.
            listener.forget();
            std::mem::forget(source);
        }
    }
}

/// When a ceremony on this page finishes in place (see `webauthn.js`), mark it in `done` and run
/// `refetch`, so the page shows the result without a reload.
pub fn on_ceremony_done(done: RwSignal<bool>, refetch: impl Fn() + Clone + 'static) {
    #[cfg(feature = "hydrate")]
    {
        let handle =
            leptos::leptos_dom::helpers::window_event_listener_untyped("ceremonydone", move |_| {
                done.set(true);
                refetch();
            });
        on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (done, refetch);
}
