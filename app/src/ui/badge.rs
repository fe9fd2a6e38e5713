use leptos::prelude::*;

use crate::model::Standing;

/// What a badge or notice means, as a colour role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Done, allowed.
    Ok,
    /// Waiting, needs attention.
    Warn,
    /// Refused, revoked, failed.
    Bad,
    /// For information.
    Info,
    /// Over, nothing to do.
    Neutral,
}

impl Tone {
    /// Classes for a badge of this tone.
    pub fn badge(self) -> &'static str {
        match self {
            Tone::Ok => "bg-ok-soft text-ok ring-ok-line",
            Tone::Warn => "bg-warn-soft text-warn ring-warn-line",
            Tone::Bad => "bg-bad-soft text-bad ring-bad-line",
            Tone::Info => "bg-info-soft text-info ring-info-line",
            Tone::Neutral => "bg-sunken text-fg-soft ring-line-strong",
        }
    }

    /// Classes for a notice panel of this tone.
    pub fn panel(self) -> &'static str {
        match self {
            Tone::Ok => "border-ok-line bg-ok-soft text-ok",
            Tone::Warn => "border-warn-line bg-warn-soft text-warn",
            Tone::Bad => "border-bad-line bg-bad-soft text-bad",
            Tone::Info => "border-info-line bg-info-soft text-info",
            Tone::Neutral => "border-line bg-sunken text-fg-soft",
        }
    }
}

/// The tone of a request's standing.
pub fn standing_tone(s: Standing) -> Tone {
    match s {
        Standing::Waiting | Standing::AwaitingApproval => Tone::Warn,
        Standing::Granted => Tone::Ok,
        Standing::Revoked | Standing::Rejected => Tone::Bad,
        Standing::Withdrawn => Tone::Neutral,
        Standing::Used | Standing::GrantExpired | Standing::Lapsed => Tone::Neutral,
    }
}

/// A small rounded label.
#[component]
pub fn Badge(tone: Tone, #[prop(into)] label: String) -> impl IntoView {
    view! {
        <span class=format!("inline-flex shrink-0 items-center whitespace-nowrap rounded-full px-2.5 py-0.5 text-xs font-semibold ring-1 ring-inset {}", tone.badge())>
            {label}
        </span>
    }
}

/// Where a request stands, as a badge.
#[component]
pub fn StandingBadge(standing: Standing) -> impl IntoView {
    view! {
        <span data-standing=standing.as_str() class=format!("inline-flex shrink-0 items-center gap-1.5 whitespace-nowrap rounded-full px-2.5 py-0.5 text-xs font-semibold ring-1 ring-inset {}", standing_tone(standing).badge())>
            <span aria-hidden="true" class="h-1.5 w-1.5 rounded-full bg-current"></span>
            {standing.label()}
        </span>
    }
}
