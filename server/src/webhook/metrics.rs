//! Prometheus counters for the webhook, kept in atomics so the hot path never locks.

use std::sync::atomic::{AtomicU64, Ordering};

/// Webhook counters.
#[derive(Debug, Default)]
pub struct Metrics {
    allowed: AtomicU64,
    denied: AtomicU64,
    challenged: AtomicU64,
    granted: AtomicU64,
    bad_requests: AtomicU64,
    store_failures: AtomicU64,
    micros_total: AtomicU64,
    grants_rejected: AtomicU64,
    challenges_limited: AtomicU64,
    notifications_sent: AtomicU64,
    notifications_failed: AtomicU64,
    elevations_tampered: AtomicU64,
    audit_dropped: AtomicU64,
    live_audience_reads: AtomicU64,
}

/// How a review ended, for counting.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// Admitted without a grant.
    Allowed,
    /// Refused by a deny guardrail.
    Denied,
    /// Refused with a challenge link.
    Challenged,
    /// Admitted with a grant.
    Granted,
    /// Body refused with 400.
    BadRequest,
}

impl Outcome {
    /// As logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Challenged => "challenged",
            Outcome::Granted => "granted",
            Outcome::BadRequest => "bad_request",
        }
    }
}

impl Metrics {
    /// Count one review and its duration.
    pub fn record(&self, outcome: Outcome, micros: u64) {
        let counter = match outcome {
            Outcome::Allowed => &self.allowed,
            Outcome::Denied => &self.denied,
            Outcome::Challenged => &self.challenged,
            Outcome::Granted => &self.granted,
            Outcome::BadRequest => &self.bad_requests,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.micros_total.fetch_add(micros, Ordering::Relaxed);
    }

    /// Count a store failure seen by the webhook.
    pub fn store_failure(&self) {
        self.store_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a stored grant whose token did not vouch for it.
    pub fn grant_rejected(&self) {
        self.grants_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a challenge or approval refused because its seal did not hold (a database write).
    pub fn elevation_tampered(&self) {
        self.elevations_tampered.fetch_add(1, Ordering::Relaxed);
    }

    /// Elevation steps refused for a broken seal so far.
    pub fn elevations_tampered(&self) -> u64 {
        self.elevations_tampered.load(Ordering::Relaxed)
    }

    /// Count one store read of a challenge's audience for live updates.
    pub fn live_audience_read(&self) {
        self.live_audience_reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Store reads for live updates so far.
    pub fn live_audience_reads(&self) -> u64 {
        self.live_audience_reads.load(Ordering::Relaxed)
    }

    /// Count audit events the webhook's queue could not write (full, or the store failing).
    pub fn audit_dropped(&self, events: u64) {
        self.audit_dropped.fetch_add(events, Ordering::Relaxed);
    }

    /// Count a review denied because its subject (or everyone) holds too many open challenges.
    pub fn challenge_limited(&self) {
        self.challenges_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a notification delivered (`true`) or given up on after its retries (`false`).
    pub fn notification(&self, delivered: bool) {
        let counter = if delivered {
            &self.notifications_sent
        } else {
            &self.notifications_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        out.push_str(
            "# HELP countersign_admission_reviews_total Admission reviews answered, by outcome.\n",
        );
        out.push_str("# TYPE countersign_admission_reviews_total counter\n");
        for (label, c) in [
            ("allowed", &self.allowed),
            ("denied", &self.denied),
            ("challenged", &self.challenged),
            ("granted", &self.granted),
            ("bad_request", &self.bad_requests),
        ] {
            out.push_str(&format!(
                "countersign_admission_reviews_total{{outcome=\"{label}\"}} {}\n",
                get(c)
            ));
        }
        out.push_str(
            "# HELP countersign_admission_review_seconds_total Time spent answering reviews.\n",
        );
        out.push_str("# TYPE countersign_admission_review_seconds_total counter\n");
        out.push_str(&format!(
            "countersign_admission_review_seconds_total {:.6}\n",
            get(&self.micros_total) as f64 / 1e6
        ));
        out.push_str("# HELP countersign_store_failures_total Store errors or timeouts seen while deciding.\n");
        out.push_str("# TYPE countersign_store_failures_total counter\n");
        out.push_str(&format!(
            "countersign_store_failures_total {}\n",
            get(&self.store_failures)
        ));
        for (name, help, c) in [
            (
                "countersign_grants_rejected_total",
                "Stored grants not honoured because their signed token does not vouch for the row.",
                &self.grants_rejected,
            ),
            (
                "countersign_elevations_tampered_total",
                "Challenges or approvals refused because their stored state no longer matches its seal.",
                &self.elevations_tampered,
            ),
            (
                "countersign_live_audience_reads_total",
                "Store reads deciding who hears of a changed elevation (one per challenge per process, whatever the number of open pages).",
                &self.live_audience_reads,
            ),
            (
                "countersign_audit_dropped_total",
                "Audit events the webhook could not write (queue full or store failing); each is also recorded by an audit.dropped event.",
                &self.audit_dropped,
            ),
            (
                "countersign_challenges_limited_total",
                "Reviews denied without a new challenge because open-challenge limits were reached.",
                &self.challenges_limited,
            ),
            (
                "countersign_notifications_sent_total",
                "Approval notifications a receiver accepted.",
                &self.notifications_sent,
            ),
            (
                "countersign_notifications_failed_total",
                "Approval notifications given up on after every retry.",
                &self.notifications_failed,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                get(c)
            ));
        }
        out
    }
}
