//! The portal router served over plain HTTP next to a test webhook, and a browser as the server sees
//! it (session cookie and CSRF token), for tests that drive the portal's routes and server functions.

use std::collections::HashMap;

use anyhow::{ensure, Context};
use countersign::clock;
use countersign::identity::{Role, User};
use countersign::state::AppState;
use countersign::store::SessionBackend;
use leptos::prelude::LeptosOptions;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, COOKIE, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tower_sessions::cookie::time::{Duration as CookieDuration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::SessionStore;

use crate::soft_key::SoftKey;
use crate::support::{review, step_up_denial, TestApp, PUBLIC_URL};

pub(crate) const COOKIE_NAME: &str = "countersign_session";

/// The portal router on plain HTTP, next to the webhook of the same state.
pub(crate) struct Portal {
    pub(crate) app: TestApp,
    pub(crate) base: String,
    pub(crate) sessions: SessionBackend,
    pub(crate) client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    _site: tempfile::TempDir,
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A browser, as far as the server can tell: its cookies and the CSRF token its page embeds.
pub(crate) struct Browser {
    /// The `Cookie` header it sends (session and CSRF cookies).
    pub(crate) cookie: String,
    pub(crate) csrf: String,
    /// A session cookie the server set later, when this browser had none (a visitor's first
    /// ceremony step creates the session); kept as a browser keeps it.
    session: std::sync::Mutex<Option<String>>,
}

impl Browser {
    pub(crate) fn new(cookie: String, csrf: String) -> Self {
        Self {
            cookie,
            csrf,
            session: std::sync::Mutex::new(None),
        }
    }

    /// The `Cookie` header: what it was given, and the session it was given since.
    pub(crate) fn cookie_header(&self) -> String {
        match self.session.lock().map(|s| s.clone()) {
            Ok(Some(session)) => format!("{}; {session}", self.cookie),
            _ => self.cookie.clone(),
        }
    }

    /// Keep the session cookie a response set, if this browser had none yet.
    pub(crate) fn absorb(&self, response: &reqwest::Response) {
        if self.cookie.contains(COOKIE_NAME) {
            return;
        }
        if let (Some(set), Ok(mut session)) = (session_cookie(response), self.session.lock()) {
            session.get_or_insert(set);
        }
    }
}

impl Portal {
    pub(crate) async fn spawn() -> anyhow::Result<Self> {
        Self::spawn_at(PUBLIC_URL).await
    }

    /// The portal as if published at `public_url`.
    pub(crate) async fn spawn_at(public_url: &str) -> anyhow::Result<Self> {
        Self::spawn_with(public_url, |_| {}).await
    }

    /// The portal at `public_url`, its state changed by `configure` before it serves.
    pub(crate) async fn spawn_with(
        public_url: &str,
        configure: impl FnOnce(&mut AppState),
    ) -> anyhow::Result<Self> {
        Self::spawn_in_site(public_url, configure, tempfile::tempdir()?).await
    }

    /// The portal serving the built site in `site` (an empty directory: no built assets).
    pub(crate) async fn spawn_in_site(
        public_url: &str,
        configure: impl FnOnce(&mut AppState),
        site: tempfile::TempDir,
    ) -> anyhow::Result<Self> {
        // The webhook and the portal share the configured state (guardrails, identities).
        let db = crate::support::TestDb::sqlite().await?;
        let store = db.store.clone();
        let url = url::Url::parse(public_url)?;
        let app = TestApp::spawn_configured(
            store,
            Some(db),
            move |state| {
                state.public_url = url;
                configure(state);
            },
            None,
        )
        .await?;
        let sessions = app.state.store.session_store();
        sessions.migrate().await?;
        let options = LeptosOptions::builder()
            .output_name("countersign")
            .site_root(site.path().display().to_string())
            .site_pkg_dir("pkg")
            .build();
        let router = countersign::portal::router(app.state.clone(), options, sessions.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let stall = countersign::portal::STALL_TIMEOUT;
            if let Err(e) = countersign::portal::serve(listener, router, stall).await {
                eprintln!("portal stopped: {e}");
            }
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Self {
            app,
            base: format!("http://127.0.0.1:{}", addr.port()),
            sessions,
            client,
            server,
            _site: site,
        })
    }

    pub(crate) fn state(&self) -> &AppState {
        &self.app.state
    }

    pub(crate) async fn user(&self, username: &str, role: Role) -> anyhow::Result<User> {
        let user = User {
            user_id: uuid::Uuid::new_v4().to_string(),
            username: username.to_owned(),
            display_name: username.to_owned(),
            role,
            created_at: clock::now(),
            groups: Vec::new(),
        };
        self.state().store.create_user(&user).await?;
        Ok(user)
    }

    /// A session in the store as a passkey sign-in at `login_time` leaves it, expiring at `expiry`.
    pub(crate) async fn session_at(
        &self,
        user: &User,
        login_time: i64,
        expiry: OffsetDateTime,
    ) -> anyhow::Result<Browser> {
        let csrf = format!("csrf-{}", uuid::Uuid::new_v4().simple());
        let mut data = HashMap::new();
        data.insert("user_id".to_owned(), json!(user.user_id));
        data.insert("login_time".to_owned(), json!(login_time));
        data.insert("auth_time".to_owned(), json!(login_time));
        data.insert("csrf_token".to_owned(), json!(csrf));
        let mut record = Record {
            id: Id::default(),
            data,
            expiry_date: expiry,
        };
        self.sessions.create(&mut record).await?;
        Ok(Browser::new(format!("{COOKIE_NAME}={}", record.id), csrf))
    }

    pub(crate) async fn signed_in(&self, user: &User) -> anyhow::Result<Browser> {
        self.session_at(
            user,
            clock::now() - 5,
            OffsetDateTime::now_utc() + CookieDuration::minutes(30),
        )
        .await
    }

    pub(crate) fn headers(&self, browser: Option<&Browser>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(b) = browser {
            if let Ok(v) = HeaderValue::from_str(&b.cookie_header()) {
                h.insert(COOKIE, v);
            }
        }
        h.insert(ORIGIN, HeaderValue::from_static(PUBLIC_URL));
        h
    }

    pub(crate) async fn get(
        &self,
        path: &str,
        browser: Option<&Browser>,
    ) -> anyhow::Result<reqwest::Response> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .headers(self.headers(browser))
            .send()
            .await?;
        if let Some(b) = browser {
            b.absorb(&response);
        }
        Ok(response)
    }

    /// A form post, with the given fields as they are (include `csrf` to present the token).
    pub(crate) async fn form(
        &self,
        path: &str,
        browser: Option<&Browser>,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .headers(self.headers(browser))
            .form(fields)
            .send()
            .await?;
        if let Some(b) = browser {
            b.absorb(&response);
        }
        Ok(response)
    }

    /// A JSON post as the WebAuthn script makes it (token in the header).
    pub(crate) async fn json(
        &self,
        path: &str,
        browser: Option<&Browser>,
        body: &Value,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .headers(self.headers(browser))
            .json(body);
        if let Some(b) = browser {
            request = request.header("x-csrf-token", &b.csrf);
        }
        let response = request.send().await?;
        if let Some(b) = browser {
            b.absorb(&response);
        }
        Ok(response)
    }

    /// A first-admin setup link's token for `username`, as `countersign serve --first-admin`
    /// prints it at first start.
    pub(crate) async fn first_admin_link(&self, username: &str) -> anyhow::Result<String> {
        use countersign::identity::setup::{first_admin_link, FirstAdmin};
        match first_admin_link(self.state().store.as_ref(), Some(username), false).await? {
            FirstAdmin::Made(token) => Ok(token),
            other => anyhow::bail!("no first-admin link: {other:?}"),
        }
    }

    /// Register a new software key through a setup link: `start` is the body of
    /// `/auth/setup/start`. Returns the key and the finish's response.
    pub(crate) async fn setup_with_key(
        &self,
        browser: &Browser,
        start: &Value,
    ) -> anyhow::Result<(SoftKey, reqwest::Response)> {
        let options: Value = self
            .json("/auth/setup/start", Some(browser), start)
            .await?
            .json()
            .await?;
        let mut key = SoftKey::new(PUBLIC_URL)?;
        let response = self
            .json(
                "/auth/setup/finish",
                Some(browser),
                &key.register(&options)?,
            )
            .await?;
        Ok((key, response))
    }

    /// The grant a challenge was confirmed with, if any.
    pub(crate) async fn grant_of(&self, code: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .state()
            .store
            .challenge(code)
            .await?
            .context("challenge gone")?
            .grant_id)
    }

    /// `kubectl exec` into the payments pod, denied with a challenge: the review, the challenge
    /// code and the requester's username.
    pub(crate) async fn exec_challenge(&self) -> anyhow::Result<(Value, String, String)> {
        let exec = review("pod-exec")?;
        let (code, _) = step_up_denial(&self.app.decide(&exec).await?, "prod-exec")?;
        let requester = self
            .state()
            .store
            .challenge(&code)
            .await?
            .context("no challenge")?
            .request
            .username;
        Ok((exec, code, requester))
    }

    /// `kubectl exec` into the payments pod, confirmed: a live, unlimited grant. Returns the review,
    /// the grant id and the requester.
    pub(crate) async fn live_grant(&self) -> anyhow::Result<(Value, String, String)> {
        let exec = review("pod-exec")?;
        let (code, _) = step_up_denial(&self.app.decide(&exec).await?, "prod-exec")?;
        let grant = self.app.confirm(&code).await?;
        Ok((exec, grant.id, grant.username))
    }

    pub(crate) async fn is_live(&self, grant_id: &str) -> anyhow::Result<bool> {
        Ok(self
            .state()
            .store
            .all_live_grants(clock::now())
            .await?
            .iter()
            .any(|g| g.id == grant_id))
    }

    /// Open a page as a browser would (HTML); returns the session cookie it set, else the one sent,
    /// and the CSRF token the page embeds.
    pub(crate) async fn page(&self, path: &str, cookie: Option<&str>) -> anyhow::Result<Browser> {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base))
            .header(ACCEPT, "text/html");
        if let Some(c) = cookie {
            request = request.header(COOKIE, c);
        }
        let response = request.send().await?;
        ensure!(
            response.status() == StatusCode::OK,
            "{path}: {}",
            response.status()
        );
        // A visitor with nothing in a session gets no session, only the CSRF token's cookie.
        let cookie = set_cookies(&response)
            .or_else(|| cookie.map(str::to_owned))
            .context("no session or CSRF cookie")?;
        let html = response.text().await?;
        let csrf = html
            .split("<meta name=\"csrf-token\" content=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .context("no csrf-token meta tag")?
            .to_owned();
        Ok(Browser::new(cookie, csrf))
    }

    pub(crate) async fn audit_kinds(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .state()
            .store
            .audit_records(0, 10_000)
            .await?
            .into_iter()
            .map(|r| r.event.kind)
            .collect())
    }
}

/// Every `name=value` a response's `Set-Cookie` headers set, as one `Cookie` header.
pub(crate) fn set_cookies(response: &reqwest::Response) -> Option<String> {
    let pairs: Vec<&str> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect();
    (!pairs.is_empty()).then(|| pairs.join("; "))
}

/// `countersign_session=ID` from a response's `Set-Cookie`, if it set one.
pub(crate) fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(COOKIE_NAME))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}
