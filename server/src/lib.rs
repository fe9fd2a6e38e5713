//! Countersign: step-up authentication behind Kubernetes guardrails.
//!
//! Domain modules (`policy`, `engine`, `admission`, `challenges`, `grants`, `audit`) do no I/O;
//! `store` holds the data, `webhook` and `portal` are the two HTTP faces, `serve` wires them.
// Leptos views nest deeply in types; the portal's pages need more than the default 128.
#![recursion_limit = "512"]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::await_holding_lock
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admission;
pub mod audit;
pub mod body_deadline;
pub mod challenges;
pub mod clock;
pub mod cluster;
pub mod decisions;
pub mod elevation;
pub mod engine;
pub mod grants;
pub mod guardrails;
pub mod identity;
pub mod notify;
pub mod policy;
pub mod policy_cli;
pub mod portal;
pub mod private_files;
pub mod retention;
pub mod serve;
pub mod state;
pub mod store;
pub mod traffic;
pub mod webhook;
