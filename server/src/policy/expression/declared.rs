//! Which functions an expression may call, and with how many arguments: checked when a guardrail
//! loads (`policy check`, start-up, the editor), so a typo or a wrong argument count is an error
//! there rather than a failure at evaluation that blocks every request the guardrail matches.
//!
//! The `cel` crate keeps its function table to itself, so this is our own copy of what the
//! environment declares: the CEL standard library, the strings extension, and the Kubernetes
//! libraries in `functions.rs`. The conformance suite (`server/tests/cel_conformance/`) calls them
//! through the checker and the interpreter both, so the two cannot drift apart unnoticed.

/// Functions called as `f(x, ...)`, with the argument counts they take. Names with a dot are
/// namespaced (`sets.contains(a, b)`).
const GLOBAL: &[(&str, &[usize])] = &[
    ("bool", &[1]),
    ("bytes", &[1]),
    ("double", &[1]),
    ("duration", &[1]),
    ("dyn", &[1]),
    ("int", &[1]),
    ("matches", &[2]),
    ("size", &[1]),
    ("string", &[1]),
    ("timestamp", &[1]),
    ("type", &[1]),
    ("uint", &[1]),
    ("optional.none", &[0]),
    ("optional.of", &[1]),
    ("optional.ofNonZeroValue", &[1]),
    ("strings.quote", &[1]),
    ("lists.range", &[1]),
    ("sets.contains", &[2]),
    ("sets.equivalent", &[2]),
    ("sets.intersects", &[2]),
    ("url", &[1]),
    ("isURL", &[1]),
    ("quantity", &[1]),
    ("isQuantity", &[1]),
    ("ip", &[1]),
    ("isIP", &[1]),
    ("cidr", &[1]),
    ("isCIDR", &[1]),
    ("ip.isCanonical", &[1]),
    ("format.named", &[1]),
    ("format.dns1123Label", &[0]),
    ("format.dns1123Subdomain", &[0]),
    ("format.dns1035Label", &[0]),
    ("format.qualifiedName", &[0]),
    ("format.dns1123LabelPrefix", &[0]),
    ("format.dns1123SubdomainPrefix", &[0]),
    ("format.dns1035LabelPrefix", &[0]),
    ("format.labelValue", &[0]),
    ("format.uri", &[0]),
    ("format.uuid", &[0]),
    ("format.byte", &[0]),
    ("format.date", &[0]),
    ("format.datetime", &[0]),
];

/// Functions called on a receiver, `x.f(...)`, with the argument counts they take (the receiver
/// not counted).
const MEMBER: &[(&str, &[usize])] = &[
    // Standard library.
    ("contains", &[1]),
    ("endsWith", &[1]),
    ("matches", &[1]),
    ("size", &[0]),
    ("startsWith", &[1]),
    // Timestamps and durations (with an optional time zone for timestamps).
    ("getDate", &[0, 1]),
    ("getDayOfMonth", &[0, 1]),
    ("getDayOfWeek", &[0, 1]),
    ("getDayOfYear", &[0, 1]),
    ("getFullYear", &[0, 1]),
    ("getHours", &[0, 1]),
    ("getMilliseconds", &[0, 1]),
    ("getMinutes", &[0, 1]),
    ("getMonth", &[0, 1]),
    ("getSeconds", &[0, 1]),
    // Optional values.
    ("hasValue", &[0]),
    ("or", &[1]),
    ("orValue", &[1]),
    ("value", &[0]),
    // Strings extension.
    ("charAt", &[1]),
    ("format", &[1]),
    ("indexOf", &[1, 2]),
    ("join", &[0, 1]),
    ("lastIndexOf", &[1, 2]),
    ("lowerAscii", &[0]),
    ("replace", &[2, 3]),
    ("reverse", &[0]),
    ("split", &[1, 2]),
    ("substring", &[1, 2]),
    ("trim", &[0]),
    ("upperAscii", &[0]),
    // Kubernetes lists.
    ("distinct", &[0]),
    ("flatten", &[0, 1]),
    ("isSorted", &[0]),
    ("max", &[0]),
    ("min", &[0]),
    ("slice", &[2]),
    ("sort", &[0]),
    ("sortBy", &[2]),
    ("sum", &[0]),
    // Kubernetes regex.
    ("find", &[1]),
    ("findAll", &[1, 2]),
    // Kubernetes URLs.
    ("getEscapedPath", &[0]),
    ("getHost", &[0]),
    ("getHostname", &[0]),
    ("getPort", &[0]),
    ("getQuery", &[0]),
    ("getScheme", &[0]),
    // Kubernetes quantities.
    ("add", &[1]),
    ("asApproximateFloat", &[0]),
    ("asInteger", &[0]),
    ("compareTo", &[1]),
    ("isGreaterThan", &[1]),
    ("isInteger", &[0]),
    ("isLessThan", &[1]),
    ("sign", &[0]),
    ("sub", &[1]),
    // Kubernetes IP addresses and CIDRs.
    ("containsCIDR", &[1]),
    ("containsIP", &[1]),
    ("family", &[0]),
    ("ip", &[0]),
    ("isGlobalUnicast", &[0]),
    ("isLinkLocalMulticast", &[0]),
    ("isLinkLocalUnicast", &[0]),
    ("isLoopback", &[0]),
    ("isUnspecified", &[0]),
    ("masked", &[0]),
    ("prefixLength", &[0]),
    // Kubernetes formats.
    ("validate", &[1]),
];

/// Namespaces whose functions are written `namespace.f(...)`.
pub(super) const NAMESPACES: [&str; 6] = ["optional", "strings", "lists", "sets", "format", "ip"];

/// Whether a call of `name` with `args` arguments is declared, as a member call (`member`) or a
/// global one; the error says what is wrong in cel-go's words, so people find it explained.
pub(super) fn check_call(name: &str, member: bool, args: usize) -> Result<(), String> {
    let (table, other, style) = if member {
        (MEMBER, GLOBAL, "a method")
    } else {
        (GLOBAL, MEMBER, "a function")
    };
    match table.iter().find(|(n, _)| *n == name) {
        Some((_, arities)) if arities.contains(&args) => Ok(()),
        Some((_, arities)) => Err(format!(
            "found no matching overload for '{name}' applied to {args} argument{}; it takes {}",
            if args == 1 { "" } else { "s" },
            counts(arities)
        )),
        None if other.iter().any(|(n, _)| *n == name) => Err(format!(
            "found no matching overload for '{name}': it is not {style} here ({})",
            if member {
                format!("write {name}(x) rather than x.{name}()")
            } else {
                format!("write x.{name}() rather than {name}(x)")
            }
        )),
        None => Err(format!("undeclared reference to '{name}'")),
    }
}

/// `1 argument`, `0 or 1 arguments`.
fn counts(arities: &[usize]) -> String {
    let words: Vec<String> = arities.iter().map(usize::to_string).collect();
    let plural = arities.last().is_some_and(|n| *n != 1) || arities.len() > 1;
    format!(
        "{} argument{}",
        words.join(" or "),
        if plural { "s" } else { "" }
    )
}
