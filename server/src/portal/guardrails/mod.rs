//! The guardrails pages' server side: the guardrails in force as the list shows them. The first of
//! the portal's feature folders (`app/src/guardrails/` is the page).

use std::collections::HashMap;

use app::backend::PortalError;
use app::model::{GuardrailChange, GuardrailRow, GuardrailSource, GuardrailsAccess};
use tower_sessions::Session;

use super::backend::{authorized, unavailable};
use crate::clock;
use crate::guardrails::listing::last_changes;
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
    match authorized(state, session, Permission::ViewGuardrails).await {
        Ok(_) => {}
        Err(PortalError::Unauthenticated) => return Ok(GuardrailsAccess::SignInRequired),
        Err(PortalError::Forbidden(_)) => return Ok(GuardrailsAccess::Forbidden),
        Err(e) => return Err(e),
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
