//! The guardrails pages' server side: the guardrails in force as the list shows them. The first of
//! the portal's feature folders (`app/src/guardrails/` is the page).

use std::collections::HashMap;

use app::backend::PortalError;
use app::model::{
    Comparison, DiffLine, GuardrailChange, GuardrailDifference, GuardrailRow, GuardrailSource,
    GuardrailsAccess, VersionRow, VersionsAccess,
};
use tower_sessions::Session;

use super::backend::{authorized, unavailable};
use crate::clock;
use crate::guardrails::compare::compare;
use crate::guardrails::listing::last_changes;
use crate::guardrails::versions::GuardrailVersion;
use crate::identity::authz::Permission;
use crate::policy::Mode;
use crate::state::AppState;

/// Versions read to date each guardrail's last change (older changes show as this far back).
const HISTORY: i64 = 200;

const DAY: i64 = 24 * 60 * 60;

/// The guardrails in force, with the version that last changed each (store mode) and how often
/// each tripped in the last day and week.
pub(in crate::portal) async fn list(
    state: &AppState,
    session: &Session,
) -> Result<GuardrailsAccess, PortalError> {
    match may_read(state, session).await? {
        Some(Refusal::SignIn) => return Ok(GuardrailsAccess::SignInRequired),
        Some(Refusal::Forbidden) => return Ok(GuardrailsAccess::Forbidden),
        None => {}
    }
    let snapshot = state.guardrails.load();
    let now = clock::now();
    let trips = |rows: Vec<(String, i64)>| rows.into_iter().collect::<HashMap<_, _>>();
    let day = trips(
        state
            .store
            .guardrail_trips(now - DAY)
            .await
            .map_err(unavailable)?,
    );
    let week = trips(
        state
            .store
            .guardrail_trips(now - 7 * DAY)
            .await
            .map_err(unavailable)?,
    );
    let (source, changes) = match &state.guardrail_files {
        Some(path) => (
            GuardrailSource::Files {
                path: path.display().to_string(),
            },
            HashMap::new(),
        ),
        None => {
            let versions = state
                .store
                .guardrail_versions(HISTORY)
                .await
                .map_err(unavailable)?;
            (GuardrailSource::Store, last_changes(&versions))
        }
    };
    let list = snapshot
        .guardrails()
        .iter()
        .map(|g| {
            let name = g.name.to_string();
            GuardrailRow {
                description: g.description.clone(),
                mode: match g.mode {
                    Mode::Enforce => "enforce",
                    Mode::DryRun => "dryRun",
                }
                .to_owned(),
                action: g.action.kind.as_str().to_owned(),
                changed: changes.get(&name).map(|c| GuardrailChange {
                    number: c.number,
                    at: c.at,
                    author: c.author.clone(),
                    reason: c.reason.clone(),
                }),
                trips_day: day.get(&name).copied().unwrap_or(0),
                trips_week: week.get(&name).copied().unwrap_or(0),
                name,
            }
        })
        .collect();
    Ok(GuardrailsAccess::Guardrails {
        list,
        version: snapshot.version().to_owned(),
        source,
    })
}

/// Why a reader is turned away (the pages say it in their own words).
enum Refusal {
    SignIn,
    Forbidden,
}

async fn may_read(state: &AppState, session: &Session) -> Result<Option<Refusal>, PortalError> {
    match authorized(state, session, Permission::ViewGuardrails).await {
        Ok(_) => Ok(None),
        Err(PortalError::Unauthenticated) => Ok(Some(Refusal::SignIn)),
        Err(PortalError::Forbidden(_)) => Ok(Some(Refusal::Forbidden)),
        Err(e) => Err(e),
    }
}

/// Versions listed on the versions page.
const LISTED: i64 = 100;

fn row(v: &GuardrailVersion) -> VersionRow {
    VersionRow {
        number: v.number,
        at: v.created_at,
        author: v.author.clone(),
        reason: v.reason.clone(),
    }
}

/// The saved versions, newest first, and `from` and `to` compared when asked (either order).
pub(in crate::portal) async fn versions(
    state: &AppState,
    session: &Session,
    asked: Option<(i64, i64)>,
) -> Result<VersionsAccess, PortalError> {
    match may_read(state, session).await? {
        Some(Refusal::SignIn) => return Ok(VersionsAccess::SignInRequired),
        Some(Refusal::Forbidden) => return Ok(VersionsAccess::Forbidden),
        None => {}
    }
    if state.guardrail_files.is_some() {
        return Ok(VersionsAccess::Files);
    }
    let list = state
        .store
        .guardrail_versions(LISTED)
        .await
        .map_err(unavailable)?;
    let comparison = match asked {
        Some((a, b)) if a != b => {
            let (a, b) = (a.min(b), a.max(b));
            let (from, to) = (
                state
                    .store
                    .guardrail_version(a)
                    .await
                    .map_err(unavailable)?,
                state
                    .store
                    .guardrail_version(b)
                    .await
                    .map_err(unavailable)?,
            );
            match (from, to) {
                (Some(from), Some(to)) => {
                    let differences = compare(&from, &to)
                        .map_err(|e| PortalError::Invalid(format!("cannot compare: {e}")))?
                        .into_iter()
                        .map(|d| GuardrailDifference {
                            name: d.name,
                            kind: d.kind.to_owned(),
                            lines: d
                                .lines
                                .into_iter()
                                .map(|(sign, text)| DiffLine { sign, text })
                                .collect(),
                        })
                        .collect();
                    Some(Comparison {
                        from: row(&from),
                        to: row(&to),
                        differences,
                    })
                }
                _ => None,
            }
        }
        _ => None,
    };
    Ok(VersionsAccess::Versions {
        list: list.iter().map(row).collect(),
        comparison,
    })
}
