//! The Kubernetes format library: `format.dns1123Label()` and the other named formats,
//! `format.named(name)` (an optional), and `<format>.validate(value)`, which gives
//! `optional.none()` for a valid value or `optional.of([messages])` with the API server's own
//! messages (k8s.io/apimachinery's validation functions).

use base64::Engine as _;
use cel::common::types::{CelList, CelOptional, CelString, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

/// A named format, as `format.<name>()` gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Format(&'static str);

opaque_type!(Format, FORMAT_TYPE, "kubernetes.NamedFormat");

/// The formats Kubernetes names (`ConstantFormats` in its format library).
pub(super) const NAMES: [&str; 13] = [
    "dns1123Label",
    "dns1123Subdomain",
    "dns1035Label",
    "qualifiedName",
    "dns1123LabelPrefix",
    "dns1123SubdomainPrefix",
    "dns1035LabelPrefix",
    "labelValue",
    "uri",
    "uuid",
    "byte",
    "date",
    "datetime",
];

impl Format {
    /// What is wrong with `value` in this format; empty when it is valid.
    fn validate(self, value: &str) -> Vec<String> {
        match self.0 {
            "dns1123Label" => dns1123_label(value),
            "dns1123Subdomain" => dns1123_subdomain(value),
            "dns1035Label" => dns1035_label(value),
            "qualifiedName" => qualified_name(value),
            "dns1123LabelPrefix" => dns1123_label(&mask_trailing_dash(value)),
            "dns1123SubdomainPrefix" => dns1123_subdomain(&mask_trailing_dash(value)),
            "dns1035LabelPrefix" => dns1035_label(&mask_trailing_dash(value)),
            "labelValue" => label_value(value),
            "uri" => one_if(!is_request_uri(value), || {
                format!("parse {value:?}: invalid URI for request")
            }),
            "uuid" => one_if(!is_uuid(value), || "does not match the UUID format".into()),
            "byte" => one_if(
                base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .is_err(),
                || "invalid base64".into(),
            ),
            "date" => one_if(!is_date(value), || "invalid date".into()),
            "datetime" => one_if(!is_datetime(value), || "invalid datetime".into()),
            _ => Vec::new(),
        }
    }
}

fn one_if(wrong: bool, message: impl FnOnce() -> String) -> Vec<String> {
    if wrong {
        vec![message()]
    } else {
        Vec::new()
    }
}

/// A generate-name prefix may end in `-`: validated as if its last two characters were `a`, as
/// apimachinery's `maskTrailingDash` does.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let cut = name.len() - 2;
        match name.get(..cut) {
            Some(head) => format!("{head}a"),
            None => name.to_owned(),
        }
    } else {
        name.to_owned()
    }
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// apimachinery's `RegexError`: the message, its examples and the pattern.
fn regex_error(message: &str, pattern: &str, examples: &[&str]) -> String {
    let mut out = format!("{message} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{example}', "));
    }
    out.push_str(&format!("regex used for validation is '{pattern}')"));
    out
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, or with `first` for the first character.
fn is_label(s: &str, first: fn(char) -> bool) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(first)
        && s.chars().last().is_some_and(lower_alnum)
        && s.chars().all(|c| lower_alnum(c) || c == '-')
}

const DNS1123_LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";

fn dns1123_label(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len_error(63));
    }
    if !is_label(value, lower_alnum) {
        errors.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL,
            &["my-name", "123-abc"],
        ));
    }
    errors
}

fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push(max_len_error(253));
    }
    if !value.split('.').all(|part| is_label(part, lower_alnum)) {
        errors.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            &["example.com"],
        ));
    }
    errors
}

fn dns1035_label(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len_error(63));
    }
    if !is_label(value, |c| c.is_ascii_lowercase()) {
        errors.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    errors
}

const QUALIFIED_NAME: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MESSAGE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_qualified_part(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn qualified_name(value: &str) -> Vec<String> {
    let example = || {
        regex_error(
            QUALIFIED_NAME_MESSAGE,
            QUALIFIED_NAME,
            &["MyName", "my.name", "123-abc"],
        )
    };
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                errors.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                example()
            )]
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errors.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_part(name) {
        errors.push(format!("name part {}", example()));
    }
    errors
}

fn label_value(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len_error(63));
    }
    if !(value.is_empty() || is_qualified_part(value)) {
        errors.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            &format!("({QUALIFIED_NAME})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// Go's `url.ParseRequestURI`: an absolute URI, or an absolute path.
fn is_request_uri(value: &str) -> bool {
    if value.starts_with('/') {
        return !value.contains(char::is_whitespace);
    }
    url::Url::parse(value).is_ok()
}

/// `(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$`.
fn is_uuid(value: &str) -> bool {
    let mut rest = value;
    for (i, len) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix('-').unwrap_or(rest);
        }
        let Some(group) = rest.get(..len) else {
            return false;
        };
        if !group.chars().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
        rest = &rest[len..];
    }
    rest.is_empty()
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `2006-01-02`, a day that exists.
fn is_date(value: &str) -> bool {
    let mut parts = value.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(y), Some(m), Some(d)) = (digits(y, 4), digits(m, 2), digits(d, 2)) else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// RFC 3339 date-times, and the shorter ISO 8601 forms Kubernetes' `strfmt` also takes: a date,
/// `T`, `15:04` with optional seconds and fraction, and an optional `Z` or `±07:00` zone.
fn is_datetime(value: &str) -> bool {
    let Some((date, time)) = value.split_once(['T', 't']) else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    let (clock, zone) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let zone_ok = match zone {
        "" | "Z" | "z" => true,
        z => {
            let offset = &z[1..];
            let (h, m) = offset
                .split_once(':')
                .unwrap_or_else(|| offset.split_at(offset.len().min(2)));
            digits(h, 2).is_some_and(|h| h < 24) && digits(m, 2).is_some_and(|m| m < 60)
        }
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let fraction_ok = !clock.is_empty()
        && (fraction.is_empty() && !time[clock.len()..].starts_with('.')
            || fraction.bytes().all(|b| b.is_ascii_digit()) && !fraction.is_empty());
    let mut hms = clock.split(':');
    let (Some(h), Some(m), s, None) = (hms.next(), hms.next(), hms.next(), hms.next()) else {
        return false;
    };
    let seconds_ok = match s {
        Some(s) => digits(s, 2).is_some_and(|s| s <= 60),
        None => fraction.is_empty(),
    };
    zone_ok
        && fraction_ok
        && seconds_ok
        && digits(h, 2).is_some_and(|h| h < 24)
        && digits(m, 2).is_some_and(|m| m < 60)
}

/// `format.named(name)`: the format, or `optional.none()` for a name Kubernetes does not have.
fn named<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let name = args
        .first()
        .and_then(|a| a.downcast_ref::<CelString>())
        .ok_or_else(|| ExecutionError::function_error("format.named", "expects a string"))?;
    Ok(CowVal::owned(
        match NAMES.iter().find(|n| **n == name.inner()) {
            Some(n) => CelOptional::of(Box::new(Format(n))),
            None => CelOptional::none(),
        },
    ))
}

/// `<format>.validate(value)`: `optional.none()`, or `optional.of` the messages.
fn validate<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let bad = || ExecutionError::function_error("validate", "expects a format and a string");
    let format = args
        .first()
        .and_then(|a| a.downcast_ref::<Format>())
        .copied()
        .ok_or_else(bad)?;
    let value = args
        .get(1)
        .and_then(|a| a.downcast_ref::<CelString>())
        .ok_or_else(bad)?;
    let errors = format.validate(value.inner());
    if errors.is_empty() {
        return Ok(CowVal::owned(CelOptional::none()));
    }
    let list: Vec<Box<dyn Val + 'v>> = errors
        .into_iter()
        .map(|e| Box::new(CelString::from(e)) as Box<dyn Val + 'v>)
        .collect();
    Ok(CowVal::owned(CelOptional::of(Box::new(CelList::from(
        list,
    )))))
}

macro_rules! constructors {
    ($($f:ident => $name:literal),* $(,)?) => {
        fn register_constructors(env: &mut Env) -> Result<(), DeclarationError> {
            $(
                fn $f<'b, 'v>(_: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
                    Ok(CowVal::owned(Format($name)))
                }
                env.add_overload(concat!("format.", $name), concat!("format.", $name, "()"), vec![], $f)?;
            )*
            Ok(())
        }
    };
}

constructors! {
    dns1123_label_format => "dns1123Label",
    dns1123_subdomain_format => "dns1123Subdomain",
    dns1035_label_format => "dns1035Label",
    qualified_name_format => "qualifiedName",
    dns1123_label_prefix_format => "dns1123LabelPrefix",
    dns1123_subdomain_prefix_format => "dns1123SubdomainPrefix",
    dns1035_label_prefix_format => "dns1035LabelPrefix",
    label_value_format => "labelValue",
    uri_format => "uri",
    uuid_format => "uuid",
    byte_format => "byte",
    date_format => "date",
    datetime_format => "datetime",
}

/// Declare the library on `env`.
pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    register_constructors(env)?;
    env.add_overload(
        "format.named",
        "format.named(string)",
        vec![STRING_TYPE],
        named,
    )?;
    env.add_member_overload(
        "validate",
        "format.validate(string)",
        FORMAT_TYPE.to_owned(),
        vec![STRING_TYPE],
        validate,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_validate_as_the_api_server_does() {
        assert!(dns1123_label("my-name").is_empty());
        assert_eq!(dns1123_label(&"a".repeat(64)).len(), 1);
        assert!(dns1123_label_prefix_ok("my-prefix-"));
        assert!(!dns1123_label_prefix_ok("-"));
        assert!(qualified_name("example.com/MyName").is_empty());
        assert_eq!(
            qualified_name("/x"),
            vec!["prefix part must be non-empty".to_owned()]
        );
        assert!(qualified_name("a/b/c")[0].starts_with("a qualified name must consist"));
        assert!(label_value("").is_empty() && !label_value("-x").is_empty());
        assert!(is_uuid("123E4567e89b12d3a456426614174000") && !is_uuid("123e4567-e89b"));
        assert!(is_date("2024-02-29") && !is_date("2023-02-29") && !is_date("2023-1-01"));
        for ok in [
            "2021-01-01T00:00:00Z",
            "2021-01-01T00:00:00.123+02:00",
            "2021-01-01T00:00",
            "2021-01-01t23:59:60z",
        ] {
            assert!(is_datetime(ok), "{ok}");
        }
        for bad in [
            "2021-01-01",
            "2021-01-01T24:00:00Z",
            "2021-01-01T00:00:00.Z",
            "2021-01-01T00:00:00+2",
        ] {
            assert!(!is_datetime(bad), "{bad}");
        }
    }

    fn dns1123_label_prefix_ok(value: &str) -> bool {
        Format("dns1123LabelPrefix").validate(value).is_empty()
    }
}
