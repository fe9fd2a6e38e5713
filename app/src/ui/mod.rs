//! The portal's components: every page is built from these, so pages look and behave alike and the
//! design system (colour roles in `style/tailwind.css`) lives in one place.

mod badge;
mod buttons;
mod card;
mod dialog;
mod diff;
mod feedback;
mod field;
mod header;
mod table;
pub mod time;

pub use badge::{Badge, StandingBadge, Tone};
pub use buttons::{DANGER, DANGER_SMALL, GHOST, INPUT, PRIMARY, SECONDARY, SECONDARY_SMALL};
pub use card::Card;
pub use dialog::{ConfirmDialog, Dialog};
pub use diff::{Diff, DiffBlock};
pub use feedback::{error_text, Alert, EmptyState, ErrorState, Loading, Toast};
pub use field::Field;
pub use header::PageHeader;
pub use table::{Cell, DataTable, ROW};
pub use time::{utc, utc_clock, RelativeTime};

/// Focus ring shared by every interactive element.
pub const FOCUS: &str = "focus:outline-none focus-visible:ring-2 focus-visible:ring-ring focus-visible:ring-offset-2 focus-visible:ring-offset-canvas";

/// Inline link.
pub const LINK: &str = "font-medium text-link underline underline-offset-2 hover:no-underline focus:outline-none focus-visible:ring-2 focus-visible:ring-ring rounded-sm";

/// A title as part of a sentence: "Change Deployment api" → "change Deployment api".
pub fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A grant's uses left, in words.
pub fn uses_left(uses_left: Option<i64>) -> String {
    match uses_left {
        None => "Unlimited until it expires".to_owned(),
        Some(0) => "None left".to_owned(),
        Some(1) => "1 use left".to_owned(),
        Some(n) => format!("{n} uses left"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_in_words() {
        assert_eq!(uses_left(Some(1)), "1 use left");
        assert_eq!(uses_left(Some(0)), "None left");
        assert_eq!(uses_left(None), "Unlimited until it expires");
    }
}
