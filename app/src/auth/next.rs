//! Where the browser goes after signing in. The one rule for every sign-in path (passkey,
//! identity provider, on the server and in the browser): `next` is resolved as a URL against the
//! portal's origin, the way a browser would, and kept only when it is a path on that origin.
//! Anything else — another host, `/\evil.com`, a tab or newline a browser would drop — goes home.

use url::Url;

/// Where to go when `next` is refused.
pub const HOME: &str = "/";

/// An origin to resolve against where the portal's own is not known (the browser); a path that
/// stays on one origin stays on every origin.
pub const ANY_ORIGIN: &str = "https://portal.invalid";

/// Longest `next` kept.
const MAX_LEN: usize = 2048;

/// `next` as a same-origin path (with query and fragment), or [`HOME`].
pub fn after_sign_in(next: Option<&str>, origin: &str) -> String {
    next.and_then(|n| same_origin_path(n, origin))
        .unwrap_or_else(|| HOME.to_owned())
}

/// `next` resolved against `origin`, if it is a path there.
pub fn same_origin_path(next: &str, origin: &str) -> Option<String> {
    // Refuse rather than repair what browsers strip or reinterpret (tab, newline, backslash).
    if next.len() > MAX_LEN
        || !next.starts_with('/')
        || next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let base = Url::parse(origin).ok()?;
    let resolved = base.join(next).ok()?;
    if resolved.origin() != base.origin()
        || !resolved.username().is_empty()
        || resolved.password().is_some()
    {
        return None;
    }
    let mut path = resolved.path().to_owned();
    if let Some(q) = resolved.query() {
        path.push('?');
        path.push_str(q);
    }
    if let Some(f) = resolved.fragment() {
        path.push('#');
        path.push_str(f);
    }
    // What we hand back must itself resolve to the same place (no `//host` after normalising).
    if path.starts_with("//") || base.join(&path).ok()? != resolved {
        return None;
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "https://countersign.example.com";

    #[test]
    fn finding_12_keeps_paths_on_the_portal() {
        for (next, want) in [
            ("/", "/"),
            ("/c/ABCD2345", "/c/ABCD2345"),
            ("/account?tab=keys#passkeys", "/account?tab=keys#passkeys"),
            ("/a/../c/X", "/c/X"),
        ] {
            assert_eq!(after_sign_in(Some(next), ORIGIN), want, "{next:?}");
        }
    }

    #[test]
    fn finding_12_refuses_every_way_off_the_portal() {
        for next in [
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/\r\n/evil.com",
            "\t//evil.com",
            " //evil.com",
            "/%09/evil.com/../..//evil.com\t",
            "https://evil.com/",
            "http:evil.com",
            "javascript:alert(1)",
            "evil.com",
            "//user@evil.com",
            "/.//evil.com",
            "///evil.com",
            "",
        ] {
            let got = after_sign_in(Some(next), ORIGIN);
            assert_eq!(got, HOME, "{next:?} gave {got:?}");
        }
        assert_eq!(after_sign_in(None, ORIGIN), HOME);
        assert_eq!(
            after_sign_in(Some(&format!("/{}", "a".repeat(4096))), ORIGIN),
            HOME
        );
    }

    #[test]
    fn finding_12_percent_encoded_controls_stay_a_harmless_path() {
        // Encoded, a tab is a path segment on the portal (the URL decoder gives the raw tab, which
        // is refused above); either way the browser stays here.
        let got = after_sign_in(Some("/%09/evil.com"), ORIGIN);
        assert!(got == HOME || got.starts_with("/%09"), "{got}");
        assert_eq!(
            Url::parse(ORIGIN)
                .and_then(|b| b.join(&got))
                .map(|u| u.host_str().map(str::to_owned)),
            Ok(Some("countersign.example.com".to_owned()))
        );
    }

    #[test]
    fn finding_12_any_origin_agrees_with_the_real_one() {
        for next in ["/c/ABCD2345", "//evil.com", "/\\evil.com", "/ok?x=1"] {
            assert_eq!(
                after_sign_in(Some(next), ORIGIN),
                after_sign_in(Some(next), ANY_ORIGIN)
            );
        }
    }
}
