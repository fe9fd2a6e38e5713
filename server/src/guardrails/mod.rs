//! Where the guardrails in force come from, and how a new version replaces the old one on every
//! replica: files reloaded when they change (GitOps), or sealed versions in the store.

pub mod anchor;
pub mod cli;
pub mod compare;
pub mod files;
pub mod listing;
pub mod routing;
pub mod simulate;
pub mod store_mode;
pub mod versions;
