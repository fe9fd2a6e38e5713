//! Notifications that carry a link only: each challenge that waits for approvers, and each
//! decision, posted to the configured receivers (a Slack-compatible incoming webhook, or a generic
//! JSON body). Nobody approves from chat: the link leads to the portal, where they step up.
//!
//! Delivery runs beside the portal and the webhook, never in their way: events are read off the
//! elevation bus, each post is retried with backoff, and a receiver that keeps failing is counted
//! in the metrics and recorded in the audit log.

mod message;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::audit::AuditEvent;
use crate::elevation::ElevationEvent;
use crate::store::AnyStore;
use crate::webhook::metrics::Metrics;

pub use message::{generic_body, slack_body, Notice};

/// What a receiver understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Slack's incoming-webhook JSON (`text` and `blocks`), which Mattermost and others accept.
    Slack,
    /// A flat JSON object with every field, for anything else.
    Generic,
}

/// One place notifications go.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Where to post.
    pub url: url::Url,
    /// The body it wants.
    pub format: Format,
}

/// How often a post is tried, and the wait before the first retry (doubled each time).
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all.
    pub attempts: u32,
    /// Wait before the second attempt.
    pub first_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_wait: Duration::from_secs(1),
        }
    }
}

/// Sends notices for elevation events.
pub struct Notifier {
    receivers: Vec<Receiver>,
    store: Arc<dyn AnyStore>,
    metrics: Arc<Metrics>,
    public_url: String,
    client: reqwest::Client,
    retry: Retry,
}

impl Notifier {
    /// A notifier for `receivers`; links point at `public_url`.
    pub fn new(
        receivers: Vec<Receiver>,
        store: Arc<dyn AnyStore>,
        metrics: Arc<Metrics>,
        public_url: &url::Url,
        retry: Retry,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            receivers,
            store,
            metrics,
            public_url: public_url.as_str().trim_end_matches('/').to_owned(),
            client,
            retry,
        }
    }

    /// Read events off the bus until it closes, posting a notice for each that concerns people.
    pub async fn run(
        self: Arc<Self>,
        mut events: tokio::sync::broadcast::Receiver<ElevationEvent>,
    ) {
        loop {
            match events.recv().await {
                // Another replica's change: that replica posts its notice (one per event), and a
                // relayed payload is not trusted to say what happened.
                Ok(event) if event.relayed => {}
                Ok(event) => {
                    let this = self.clone();
                    tokio::spawn(async move { this.notify(&event).await });
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "notifications fell behind; some events were not sent"
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Post the notice for one event to every receiver (a no-op for events nobody is told of).
    pub async fn notify(&self, event: &ElevationEvent) {
        let challenge = match self.store.challenge(&event.code).await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, code = %event.code, "notification skipped: challenge unreadable");
                return;
            }
        };
        // Step-up guardrails need nobody else: only approvals are announced.
        let Some(notice) = Notice::of(event, &challenge, &self.public_url) else {
            return;
        };
        let posts = self.receivers.iter().map(|r| self.deliver(r, &notice));
        futures_util::future::join_all(posts).await;
    }

    async fn deliver(&self, receiver: &Receiver, notice: &Notice) {
        let body = match receiver.format {
            Format::Slack => slack_body(notice),
            Format::Generic => generic_body(notice),
        };
        let mut wait = self.retry.first_wait;
        let mut last_error = String::new();
        for attempt in 1..=self.retry.attempts {
            match self
                .client
                .post(receiver.url.clone())
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    self.metrics.notification(true);
                    return;
                }
                Ok(r) => last_error = format!("HTTP {}", r.status()),
                Err(e) => last_error = e.without_url().to_string(),
            }
            if attempt < self.retry.attempts {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        self.metrics.notification(false);
        // The receiver's address can hold a secret token (Slack's does): only its host is kept.
        let host = receiver.url.host_str().unwrap_or_default().to_owned();
        tracing::warn!(%host, error = %last_error, code = %notice.code, "notification failed after every retry");
        let event = AuditEvent::new(
            "notification.failed",
            "countersign",
            &notice.code,
            serde_json::json!({
                "receiver": host, "event": notice.event, "error": last_error,
                "attempts": self.retry.attempts,
            }),
        );
        if let Err(e) = self.store.append_audit(&event).await {
            tracing::error!(error = %e, "audit append failed for a failed notification");
        }
    }
}
