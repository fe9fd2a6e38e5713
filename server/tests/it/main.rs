//! Black-box integration tests for the `server` crate, compiled into one test binary (`cargo test -p server --test it`).
//!
//! The storage suite runs on SQLite and on PostgreSQL (`postgres://postgres@127.0.0.1:5432`, or
//! `COUNTERSIGN_TEST_POSTGRES_URL`); an unreachable PostgreSQL fails the tests unless
//! `COUNTERSIGN_SKIP_POSTGRES=1` is set.

mod admission_path;
mod approvals;
mod assets;
mod audit_chain;
mod authenticators;
mod cel_conformance;
mod challenge_cache;
mod cli;
mod cluster;
mod grant_cache;
mod guardrail_reload;
mod guardrail_versions;
mod passkeys;
mod portal;
mod portal_approvals;
mod portal_pages;
mod portal_security;
mod security_accounts;
mod security_add_passkey;
mod security_bounds;
mod security_challenge_page;
mod security_namespace_labels;
mod security_oidc_stale;
mod security_portal_hardening;
mod security_ratelimit;
mod security_redirect;
mod security_serve;
mod security_usernames;
mod security_webhook;
mod security_webhook_config;
mod soft_key;
mod storage;
mod store_down;
mod support;
mod traffic;
mod webhook;
mod webhook_input;
