//! The portal listener: Leptos pages and server functions, WebAuthn ceremonies, static assets.

mod account;
mod approvals;
mod assets;
mod backend;
pub mod bounds;
pub mod ceremonies;
mod changes;
pub mod client;
mod csrf;
pub mod describe;
mod diff;
mod error;
pub mod events;
mod guardrails;
mod heavy;
mod listener;
mod objects;
mod oidc;
mod origin;
pub mod ratelimit;
mod review;
mod security_headers;
mod sessions;
mod theme;

use std::sync::{Arc, OnceLock};

use app::backend::PortalBackend;
use app::{shell, App};
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::identity::session::IDLE_TIMEOUT_SECS;
use crate::state::AppState;
use crate::store::SessionBackend;

pub use backend::{scope_text, signed_in};
pub use listener::{serve, STALL_TIMEOUT};
pub use origin::PortalOrigin;

/// Session cookie name.
pub const SESSION_COOKIE: &str = "countersign_session";
/// Its name over https: `__Host-` keeps sibling subdomains from setting or shadowing it.
pub const HOST_SESSION_COOKIE: &str = "__Host-countersign_session";

/// The app's pages, listed once per process. Listing them runs the app with resource loading
/// switched off by a process-wide flag in leptos_server, so a page rendered meanwhile on another
/// thread (another portal in the same process, as in the tests) could wait forever (leptos#4773).
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The built site in memory; without one (a bad site root) the pages link the unhashed paths,
/// which the fallback serves from disk as before.
fn load_assets(options: &LeptosOptions) -> assets::Assets {
    match assets::Assets::load(std::path::Path::new(options.site_root.as_ref())) {
        Ok(assets) => {
            assets.warm_up();
            assets
        }
        Err(e) => {
            tracing::error!(error = %e, "could not load the portal's assets; serving them from disk");
            assets::Assets::default()
        }
    }
}

/// Routes of the portal listener.
pub fn router(state: AppState, leptos_options: LeptosOptions, sessions: SessionBackend) -> Router {
    let routes = route_list();
    let heavy = Arc::new(heavy::Heavy::default());
    let backend: Arc<dyn PortalBackend> = Arc::new(backend::Backend(state.clone(), heavy.clone()));
    let fallback_backend = backend.clone();
    let assets = load_assets(&leptos_options);
    let base = assets.base();
    let pages = Router::new()
        .leptos_routes_with_context(
            &leptos_options,
            routes,
            {
                let base = base.clone();
                move || {
                    provide_context(backend.clone());
                    provide_context(base.clone());
                }
            },
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        // Files added to the site root after start-up, and the not-found page (with the backend,
        // so its header knows who is signed in).
        .fallback(leptos_axum::file_and_error_handler_with_context(
            move || {
                provide_context(fallback_backend.clone());
                provide_context(base.clone());
            },
            shell,
        ))
        .with_state(leptos_options);

    let ceremonies = Router::new()
        .route("/auth/setup/start", post(ceremonies::setup_start))
        .route("/auth/setup/finish", post(ceremonies::setup_finish))
        .route("/auth/login/start", post(ceremonies::login_start))
        .route("/auth/login/finish", post(ceremonies::login_finish))
        .route("/auth/stepup/start", post(ceremonies::stepup_start))
        .route("/auth/stepup/finish", post(ceremonies::stepup_finish))
        .route("/auth/decide/start", post(approvals::decide_start))
        .route("/auth/decide/finish", post(approvals::decide_finish))
        .route("/c/withdraw", post(approvals::withdraw))
        .route("/auth/logout", post(ceremonies::logout))
        .route("/auth/logout-everywhere", post(sessions::logout_everywhere))
        .route(
            "/auth/login/passkey/start",
            post(account::discoverable_start),
        )
        .route(
            "/auth/login/passkey/finish",
            post(account::discoverable_finish),
        )
        .route("/account/passkeys/add/start", post(account::add_start))
        .route("/account/passkeys/add/confirm", post(account::add_confirm))
        .route("/account/passkeys/add/finish", post(account::add_finish))
        .route("/account/passkeys/rename", post(account::rename))
        .route(
            "/account/passkeys/remove/start",
            post(account::remove_start),
        )
        .route(
            "/account/passkeys/remove/finish",
            post(account::remove_finish),
        )
        .route("/auth/oidc/login", post(oidc::login))
        .route("/auth/oidc/stepup", post(oidc::stepup))
        .route("/auth/oidc/decide", post(oidc::decide))
        .route(crate::identity::oidc::CALLBACK_PATH, get(oidc::callback))
        .layer(axum::middleware::from_fn_with_state(
            ratelimit::Limited {
                state: state.clone(),
                limiter: Arc::new(ratelimit::RateLimiter::new(ratelimit::Limits::default())),
            },
            ratelimit::limit_authentication,
        ))
        .with_state(state.clone());

    let live = Router::new()
        .route("/events", get(events::events))
        .with_state(events::Live::new(state.clone()));

    let downloads = Router::new()
        .route("/c/{code}/objects.json", get(objects::download))
        .with_state(objects::Objects {
            state: state.clone(),
            heavy,
        });

    let origin = PortalOrigin(state.public_url.origin().ascii_serialization());
    let themes = Router::new()
        .route("/theme", post(theme::set_theme))
        .with_state(origin.clone());
    let secure = state.public_url.scheme() == "https";
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name(if secure {
            HOST_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        })
        .with_secure(secure)
        .with_http_only(true)
        // Lax, not Strict: the link in a kubectl denial is opened from outside the browser or from chat,
        // and must arrive signed in. Cross-site POSTs are refused by the origin check.
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::seconds(IDLE_TIMEOUT_SECS),
        ));

    pages
        .merge(ceremonies)
        .merge(live)
        .merge(downloads)
        .merge(themes)
        .layer(axum::middleware::from_fn_with_state(
            origin,
            origin::same_origin_only,
        ))
        .layer(axum::middleware::from_fn_with_state(
            csrf::CsrfCookie { secure },
            csrf::synchronizer_token,
        ))
        .layer(session_layer)
        // Knows the client's address (resolved just outside it); before sessions and CSRF, so a
        // slow body is cut off before anything waits on it.
        .layer(axum::middleware::from_fn_with_state(
            bounds::PerClient::default(),
            bounds::per_client,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.trusted_proxies.clone(),
            client::resolve,
        ))
        // Outside the session and CSRF layers: assets need neither, and must not set cookies.
        .layer(axum::middleware::from_fn_with_state(assets, assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            security_headers::Https(secure),
            security_headers::on_every_response,
        ))
        .layer(
            tower::ServiceBuilder::new()
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    listener::REQUEST_TIMEOUT,
                ))
                // One semaphore for the whole portal: a Router layer is applied per route, and
                // `ConcurrencyLimitLayer` would give every route its own (second review, finding 6).
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    listener::MAX_CONCURRENT_REQUESTS,
                )),
        )
}
