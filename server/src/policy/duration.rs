use std::fmt;

/// A duration written as in Kubernetes and Go (`90s`, `5m`, `1h30m`), parsed when a policy loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicyDuration(u64);

impl PolicyDuration {
    /// Seconds in this duration.
    pub fn seconds(self) -> u64 {
        self.0
    }

    /// A duration of whole minutes.
    pub const fn minutes(m: u64) -> Self {
        Self(m * 60)
    }

    /// Parse `1h30m`, `15m`, `45s`, `2d`; at least one component, no sign, no fractions.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty duration".into());
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for ch in text.chars() {
            if ch.is_ascii_digit() {
                digits.push(ch);
                continue;
            }
            let unit = match ch {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => {
                    return Err(format!(
                        "`{text}` is not a duration (use s, m, h or d, e.g. 15m)"
                    ))
                }
            };
            let n: u64 = digits.parse().map_err(|_| {
                format!("`{text}` is not a duration (a number must precede `{ch}`)")
            })?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("`{text}` is too long"))?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(format!("`{text}` has no unit (use s, m, h or d, e.g. 15m)"));
        }
        Ok(Self(total))
    }
}

impl fmt::Display for PolicyDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, (self.0 % 3600) / 60, self.0 % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || self.0 == 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(PolicyDuration::parse("15m").unwrap().seconds(), 900);
        assert_eq!(PolicyDuration::parse("1h30m").unwrap().seconds(), 5400);
        assert_eq!(PolicyDuration::parse("45s").unwrap().seconds(), 45);
        assert_eq!(PolicyDuration::parse("1h30m").unwrap().to_string(), "1h30m");
    }

    #[test]
    fn refuses_nonsense() {
        assert!(PolicyDuration::parse("").is_err());
        assert!(PolicyDuration::parse("15").is_err());
        assert!(PolicyDuration::parse("m").is_err());
        assert!(PolicyDuration::parse("5 minutes").is_err());
        assert!(PolicyDuration::parse("99999999999999999999d").is_err());
    }
}
