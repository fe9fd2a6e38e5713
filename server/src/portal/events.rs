//! `GET /events`: server-sent events that tell open pages an elevation changed, so the
//! requester's page, the approvers' queue and the header badge update without a reload.
//!
//! Each event names only the challenge and what happened; the page refetches through the same
//! access checks as ever. A person hears only of challenges they may see: their own (or their
//! service accounts'), or those their groups review.
//!
//! Bounded (second review, finding 4): streams are capped per person and in total; who may hear
//! of a challenge is read once per process, without its body, and kept (it never changes); and
//! every stream checks its session again, so sign-out, disabling or demotion closes it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::{Session, SessionStore as _};

use super::backend::signed_in;
use super::error::ApiError;
use crate::challenges::Audience;
use crate::identity::authz::{allows, Permission};
use crate::identity::{Role, User};
use crate::state::AppState;

/// Open streams one person may hold (tabs and windows).
pub const MAX_STREAMS_PER_PERSON: usize = 8;
/// Open streams in all.
pub const MAX_STREAMS: usize = 1024;
/// How often a stream checks that its session still stands.
pub const SESSION_RECHECK: Duration = Duration::from_secs(10);
/// Audiences kept; past it the cache starts over (a cache miss is one light read).
const MAX_AUDIENCES: usize = 10_000;

/// What every stream shares: the slots and the audiences.
#[derive(Clone)]
pub struct Live {
    /// App state.
    pub state: AppState,
    /// Open streams, per person.
    pub slots: Arc<Slots>,
    /// Who may hear of which challenge.
    pub audiences: Arc<Audiences>,
}

impl Live {
    /// Live updates over `state`.
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            slots: Arc::default(),
            audiences: Arc::default(),
        }
    }
}

/// Open streams per person and in all.
#[derive(Debug, Default)]
pub struct Slots {
    open: Mutex<HashMap<String, usize>>,
}

/// A stream's place; given back when the stream ends.
pub struct Slot {
    slots: Arc<Slots>,
    person: String,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for one more stream of `person`, if the caps allow it.
    pub fn take(self: &Arc<Self>, person: &str) -> Option<Slot> {
        let mut open = self.lock();
        let total: usize = open.values().sum();
        let mine = open.get(person).copied().unwrap_or(0);
        if total >= MAX_STREAMS || mine >= MAX_STREAMS_PER_PERSON {
            return None;
        }
        open.insert(person.to_owned(), mine + 1);
        Some(Slot {
            slots: self.clone(),
            person: person.to_owned(),
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.lock().values().sum()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        if let Some(n) = open.get_mut(&self.person) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.person);
            }
        }
    }
}

/// Challenge code → who may hear of it, read once per process.
#[derive(Debug, Default)]
pub struct Audiences {
    known: Mutex<HashMap<String, Option<Arc<Audience>>>>,
    /// One read at a time: the streams that hear an event together ask together, and all but the
    /// first find the answer the first read.
    reading: tokio::sync::Mutex<()>,
}

impl Audiences {
    /// The audience of `code`, from memory or with one light read.
    pub async fn of(&self, state: &AppState, code: &str) -> Option<Arc<Audience>> {
        if let Some(known) = self.lock().get(code) {
            return known.clone();
        }
        let _reading = self.reading.lock().await;
        if let Some(known) = self.lock().get(code) {
            return known.clone();
        }
        state.metrics.live_audience_read();
        // A store failure is not remembered: the next event asks again.
        let read = state.store.challenge_audience(code).await.ok()?;
        let audience = read.map(Arc::new);
        let mut known = self.lock();
        if known.len() >= MAX_AUDIENCES {
            known.clear();
        }
        known.insert(code.to_owned(), audience.clone());
        audience
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Arc<Audience>>>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One stream's state between events.
struct Stream {
    live: Live,
    session: Session,
    user: User,
    receiver: tokio::sync::broadcast::Receiver<crate::elevation::ElevationEvent>,
    recheck: tokio::time::Interval,
    _slot: Slot,
}

/// `GET /events`
pub async fn events(State(live): State<Live>, session: Session) -> Result<Response, ApiError> {
    let user = signed_in(&live.state, &session)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let slot = live.slots.take(&user.user_id).ok_or_else(|| {
        ApiError::TooMany(format!(
            "too many live-update streams are open (at most {MAX_STREAMS_PER_PERSON} per person); close some tabs"
        ))
    })?;
    let mut recheck = tokio::time::interval(SESSION_RECHECK);
    recheck.reset();
    let stream = Stream {
        receiver: live.state.events.subscribe(),
        live,
        session,
        user,
        recheck,
        _slot: slot,
    };
    let stream = stream::unfold(stream, |mut s| async move {
        loop {
            let event = tokio::select! {
                event = s.receiver.recv() => match event {
                    Ok(event) => Some(event),
                    // Missed some: the page refetches anyway.
                    Err(RecvError::Lagged(_)) => None,
                    Err(RecvError::Closed) => return None,
                },
                _ = s.recheck.tick() => {
                    s.user = still_signed_in(&s.live.state, &s.session).await?;
                    continue;
                }
            };
            let data = match event {
                Some(e) => match s.live.audiences.of(&s.live.state, &e.code).await {
                    Some(audience) if hears(&s.live.state, &s.user, &audience) => {
                        serde_json::json!({ "code": e.code, "happened": e.happened }).to_string()
                    }
                    _ => continue,
                },
                None => "{}".to_owned(),
            };
            let sse = Event::default().event("message").data(data);
            return Some((Ok::<_, Infallible>(sse), s));
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// The person behind the session as they stand now (role and groups re-read), or `None` when the
/// session ended (signed out, here or everywhere), expired, or the account was disabled.
async fn still_signed_in(state: &AppState, session: &Session) -> Option<User> {
    let id = session.id()?;
    // Signing out deletes the record; this session's copy in memory would not know.
    state.store.session_store().load(&id).await.ok()??;
    signed_in(state, session).await.ok()?
}

/// A comment line this often keeps proxies (and the portal's stall guard) from closing a quiet
/// stream.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Whether `user` may hear of a challenge: theirs to confirm, or theirs to review.
fn hears(state: &AppState, user: &User, audience: &Audience) -> bool {
    let ids = &state.identities;
    if ids
        .authority(&user.username, &user.groups, &audience.subject)
        .is_some()
    {
        return true;
    }
    if !allows(user.role, Permission::ReviewEscalations) {
        return false;
    }
    let mapped = ids.groups_of(&user.username);
    user.role == Role::Admin
        || audience
            .rule_groups
            .iter()
            .flatten()
            .any(|g| user.groups.contains(g) || mapped.contains(g))
}
