//! Bounds on open challenges. Whoever reaches the webhook can make them (a forged review names any
//! user), and each keeps the whole object, so the store must not grow with the requests.

/// What open challenges hold, for one person and for everyone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChallengeUsage {
    /// Open challenges of the person.
    pub subject_open: i64,
    /// Bytes their stored bodies take.
    pub subject_bytes: i64,
    /// Bytes the stored bodies of every open challenge take.
    pub total_bytes: i64,
}

/// The limits; past any of them a guarded request is denied without a new challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeLimits {
    /// Open challenges one Kubernetes username may have.
    pub open_per_subject: i64,
    /// Bytes the open challenges of one username may take.
    pub bytes_per_subject: i64,
    /// Bytes all open challenges may take.
    pub bytes_total: i64,
}

impl Default for ChallengeLimits {
    fn default() -> Self {
        Self {
            open_per_subject: 20,
            bytes_per_subject: 32 << 20,
            bytes_total: 512 << 20,
        }
    }
}

/// Which limit a new challenge would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitReached {
    /// Too many open challenges for this username.
    #[error("{0} challenges are already open for this user")]
    SubjectCount(i64),
    /// Their open challenges hold too many bytes.
    #[error("the open challenges of this user already hold {0} MiB")]
    SubjectBytes(i64),
    /// All open challenges hold too many bytes.
    #[error("open challenges already hold {0} MiB in total")]
    TotalBytes(i64),
}

impl ChallengeLimits {
    /// Whether a new challenge of `new_bytes` fits next to `usage`.
    pub fn check(&self, usage: &ChallengeUsage, new_bytes: i64) -> Result<(), LimitReached> {
        if usage.subject_open >= self.open_per_subject {
            return Err(LimitReached::SubjectCount(usage.subject_open));
        }
        if usage.subject_bytes + new_bytes > self.bytes_per_subject {
            return Err(LimitReached::SubjectBytes(usage.subject_bytes >> 20));
        }
        if usage.total_bytes + new_bytes > self.bytes_total {
            return Err(LimitReached::TotalBytes(usage.total_bytes >> 20));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_checked() {
        let limits = ChallengeLimits {
            open_per_subject: 2,
            bytes_per_subject: 100,
            bytes_total: 1000,
        };
        let usage = |subject_open, subject_bytes, total_bytes| ChallengeUsage {
            subject_open,
            subject_bytes,
            total_bytes,
        };
        assert_eq!(limits.check(&usage(1, 50, 500), 50), Ok(()));
        assert_eq!(
            limits.check(&usage(2, 10, 10), 1),
            Err(LimitReached::SubjectCount(2))
        );
        assert!(matches!(
            limits.check(&usage(1, 60, 60), 41),
            Err(LimitReached::SubjectBytes(_))
        ));
        assert!(matches!(
            limits.check(&usage(0, 0, 990), 11),
            Err(LimitReached::TotalBytes(_))
        ));
    }
}
