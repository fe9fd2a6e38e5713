//! The Kubernetes CEL libraries guardrails use beyond the standard and strings libraries
//! (`url`, `quantity`, `ip`, `cidr`, lists, regex, sets), and the internal `@budget`, `@charge`,
//! `@replace`, `@matches` and `@copy` the compiler routes expressions through. The list, regex and
//! set functions charge the budget themselves: one unit per list element, the bytes of the strings
//! they compare or scan, what they build (copies counted deeply), and the product of the sizes for
//! the `sets` functions.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::IpAddr;

use cel::common::types::Kind;
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelString, CelUInt, DYN_TYPE, INT_TYPE,
    LIST_TYPE,
};
use cel::common::value::{CowVal, Val};

use super::json::deep_equals;
use cel::{DeclarationError, Env, ExecutionError};

use super::MAX_STRING_BYTES;

thread_local! {
    static BUDGET: Cell<u64> = const { Cell::new(super::COST_BUDGET) };
}

/// Start an evaluation with `units` to spend.
pub(super) fn reset_budget(units: u64) {
    BUDGET.with(|b| b.set(units));
}

fn charge(units: u64) -> Result<(), ExecutionError> {
    BUDGET.with(|b| match b.get().checked_sub(units) {
        Some(left) => {
            b.set(left);
            Ok(())
        }
        None => {
            b.set(0);
            Err(ExecutionError::function_error(
                "@budget",
                format!(
                    "cost budget exceeded (at most {} units per evaluation): the expression does too much work for this request",
                    super::COST_BUDGET
                ),
            ))
        }
    })
}

fn size_of(v: &dyn Val) -> u64 {
    if let Some(s) = v.downcast_ref::<CelString>() {
        return s.inner().len() as u64;
    }
    v.as_sizer()
        .map(|s| u64::try_from(*s.size().inner()).unwrap_or(0))
        .unwrap_or(1)
}

/// `@budget(range, weight)`: charge a comprehension before it runs, hand the range back.
fn budget<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let mut args = args.into_iter();
    let range = args
        .next()
        .ok_or_else(ExecutionError::missing_argument_or_target)?;
    let weight = args
        .next()
        .and_then(|w| w.downcast_ref::<CelInt>().map(|i| *i.inner()))
        .and_then(|w| u64::try_from(w).ok())
        .unwrap_or(1);
    charge((size_of(range.as_ref()) + 1).saturating_mul(weight))?;
    Ok(range)
}

/// `@charge(value)`: charge what a growing call built.
fn charge_value<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = args
        .into_iter()
        .next()
        .ok_or_else(ExecutionError::missing_argument_or_target)?;
    charge(size_of(value.as_ref()))?;
    Ok(value)
}

/// `@copy(value)`: charge for the deep copy a list or map literal makes of one element.
fn copy_value<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = args
        .into_iter()
        .next()
        .ok_or_else(ExecutionError::missing_argument_or_target)?;
    charge_copy(value.as_ref())?;
    Ok(value)
}

/// `@eq(a, b)`: `a == b` across list and map representations (see `json`), charged for the
/// elements it may compare.
fn equal<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    compared(args).map(|same| CowVal::owned(CelBool::from(same)))
}

/// `@ne(a, b)`: `a != b`, the negation of [`equal`].
fn not_equal<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    compared(args).map(|same| CowVal::owned(CelBool::from(!same)))
}

/// `@contains(x, list)`: `x in list` with [`deep_equals`], for list literals that hold lists or
/// maps; charged one unit per element it may compare.
fn contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [needle, list] = args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let items = list_arg("@in", list.as_ref())?;
    let found = items.iter().any(|i| deep_equals(*i, needle.as_ref()));
    Ok(CowVal::owned(CelBool::from(found)))
}

fn compared(args: Vec<CowVal<'_, '_>>) -> Result<bool, ExecutionError> {
    let [a, b] = args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let (a, b) = (a.as_ref(), b.as_ref());
    // Comparing stops at the shorter side (a size mismatch is found first).
    charge(size_of(a).min(size_of(b)))?;
    Ok(deep_equals(a, b))
}

fn replace_checked(
    this: &str,
    from: &str,
    to: &str,
    limit: Option<usize>,
) -> Result<String, ExecutionError> {
    let occurrences = if from.is_empty() {
        this.chars().count() + 1
    } else {
        this.matches(from).count()
    };
    let occurrences = limit.map_or(occurrences, |n| n.min(occurrences));
    let grown = this
        .len()
        .saturating_add(occurrences.saturating_mul(to.len().saturating_sub(from.len())));
    if grown > MAX_STRING_BYTES {
        return Err(ExecutionError::function_error(
            "@replace",
            format!("replace would build a string of {grown} bytes (at most {MAX_STRING_BYTES})"),
        ));
    }
    charge(grown as u64)?;
    Ok(match limit {
        None => this.replace(from, to),
        Some(n) => this.replacen(from, to, n),
    })
}

fn replace(
    this: &CelString<'_>,
    from: &CelString<'_>,
    to: &CelString<'_>,
) -> Result<CelString<'static>, ExecutionError> {
    replace_checked(this, from, to, None).map(Into::into)
}

fn replace_n(
    this: &CelString<'_>,
    from: &CelString<'_>,
    to: &CelString<'_>,
    n: &CelInt,
) -> Result<CelString<'static>, ExecutionError> {
    // As in cel-go: a negative count replaces all, zero none.
    let limit = usize::try_from(*n.inner()).ok();
    replace_checked(this, from, to, limit).map(Into::into)
}

/// Compiled patterns of the last few `matches` calls on this thread: a comprehension calling
/// `matches` per item compiles its pattern once.
const REGEX_CACHE: usize = 16;
/// Largest compiled pattern allowed (the regex crate guarantees linear-time matching).
pub(super) const REGEX_SIZE_LIMIT: usize = 1 << 20;

thread_local! {
    static REGEXES: std::cell::RefCell<Vec<(String, regex::Regex)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `f` with `pattern` compiled, from the cache when it is there. Compiling costs ten units per
/// pattern byte; patterns over the size limit are refused.
fn with_regex<T>(
    function: &str,
    pattern: &str,
    f: impl FnOnce(&regex::Regex) -> Result<T, ExecutionError>,
) -> Result<T, ExecutionError> {
    REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, re)) = cache.iter().find(|(p, _)| p.as_str() == pattern) {
            return f(re);
        }
        charge((pattern.len() as u64 + 1) * 10)?;
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| fail(function, format!("invalid pattern: {e}")))?;
        let result = f(&re);
        if cache.len() >= REGEX_CACHE {
            cache.remove(0);
        }
        cache.push((pattern.to_owned(), re));
        result
    })
}

/// `@matches(string, pattern)`: `matches` with a cache, a size limit and a cost (compiling costs
/// ten units per pattern byte, matching one per haystack byte).
fn matches(this: &CelString<'_>, pattern: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    charge(this.len() as u64 + 1)?;
    with_regex("matches", pattern, |re| Ok(re.is_match(this).into()))
}

/// `<string>.find(pattern)`: the first match, or the empty string (Kubernetes regex library).
fn find(
    this: &CelString<'_>,
    pattern: &CelString<'_>,
) -> Result<CelString<'static>, ExecutionError> {
    charge(this.len() as u64 + 1)?;
    with_regex("find", pattern, |re| {
        let found = re.find(this).map_or("", |m| m.as_str());
        charge(found.len() as u64)?;
        Ok(found.to_owned().into())
    })
}

fn find_all_limited(
    this: &str,
    pattern: &str,
    limit: Option<usize>,
) -> Result<CelList<'static>, ExecutionError> {
    charge(this.len() as u64 + 1)?;
    with_regex("findAll", pattern, |re| {
        let mut found: Vec<Box<dyn Val>> = Vec::new();
        for m in re.find_iter(this) {
            if limit.is_some_and(|n| found.len() >= n) {
                break;
            }
            // Each match is a new string and a list slot: charge what is built.
            charge(m.len() as u64 + 1)?;
            found.push(Box::new(CelString::from(m.as_str().to_owned())));
        }
        Ok(CelList::from(found))
    })
}

/// `<string>.findAll(pattern)`: every non-overlapping match.
fn find_all(
    this: &CelString<'_>,
    pattern: &CelString<'_>,
) -> Result<CelList<'static>, ExecutionError> {
    find_all_limited(this, pattern, None)
}

/// `<string>.findAll(pattern, limit)`: at most `limit` matches; a negative limit means all.
fn find_all_n(
    this: &CelString<'_>,
    pattern: &CelString<'_>,
    limit: &CelInt,
) -> Result<CelList<'static>, ExecutionError> {
    find_all_limited(this, pattern, usize::try_from(*limit.inner()).ok())
}

// ---------------------------------------------------------------- lists and sets

/// The elements of a list argument, after charging one unit per element (plus one). Any list
/// will do: one the expression built, or a view of the request's JSON.
fn list_arg<'a, 'v>(
    function: &str,
    v: &'a (dyn Val + 'v),
) -> Result<Items<'a, 'v>, ExecutionError> {
    if v.get_type().kind() != Kind::List {
        return Err(fail(
            function,
            format!("expects a list, not {}", v.get_type().name()),
        ));
    }
    charged_elements(v)
}

/// The elements of list `v`, charged for before they are gathered: an evaluation out of budget
/// keeps going through the rest of an `all` or `exists` loop (its errors are deferred), so
/// nothing may cost more than O(1) before it charges.
fn charged_elements<'a, 'v>(v: &'a (dyn Val + 'v)) -> Result<Items<'a, 'v>, ExecutionError> {
    charge(size_of(v).saturating_add(1))?;
    let mut items = Vec::new();
    if let Some(list) = v.as_iterable() {
        let mut iter = list.iter();
        while let Some(item) = iter.next() {
            items.push(item);
        }
    }
    Ok(items)
}

/// Charge for looking at an element: its bytes for a string, one unit otherwise.
fn charge_item(v: &dyn Val) -> Result<(), ExecutionError> {
    match v.downcast_ref::<CelString>() {
        Some(s) => charge(s.len() as u64),
        None => Ok(()),
    }
}

/// Order two elements as the Kubernetes lists library does: both of the same comparable type.
fn compare_items(function: &str, a: &dyn Val, b: &dyn Val) -> Result<Ordering, ExecutionError> {
    if a.get_type().name() != b.get_type().name() {
        return Err(fail(
            function,
            format!(
                "cannot compare {} with {}",
                a.get_type().name(),
                b.get_type().name()
            ),
        ));
    }
    charge_item(a)?;
    a.as_comparer()
        .ok_or_else(|| {
            fail(
                function,
                format!("{} is not comparable", a.get_type().name()),
            )
        })?
        .compare(b)
}

fn receiver_and_args<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
) -> Result<(CowVal<'b, 'v>, Vec<CowVal<'b, 'v>>), ExecutionError> {
    let mut args = args.into_iter();
    let first = args
        .next()
        .ok_or_else(|| fail(function, "missing receiver"))?;
    Ok((first, args.collect()))
}

/// `<list>.isSorted()`.
fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, _) = receiver_and_args("isSorted", args)?;
    let items = list_arg("isSorted", list.as_ref())?;
    for pair in items.windows(2) {
        if compare_items("isSorted", pair[0], pair[1])? == Ordering::Greater {
            return Ok(CowVal::owned(CelBool::from(false)));
        }
    }
    Ok(CowVal::owned(CelBool::from(true)))
}

fn extreme<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
    keep: Ordering,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, _) = receiver_and_args(function, args)?;
    let items = list_arg(function, list.as_ref())?;
    let mut best = *items
        .first()
        .ok_or_else(|| fail(function, format!("{function}() of an empty list")))?;
    for item in &items[1..] {
        if compare_items(function, *item, best)? == keep {
            best = *item;
        }
    }
    charge_item(best)?;
    Ok(CowVal::Owned(best.clone_as_boxed()))
}

/// `<list>.min()`: an error on an empty list.
fn list_min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme("min", args, Ordering::Less)
}

/// `<list>.max()`: an error on an empty list.
fn list_max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme("max", args, Ordering::Greater)
}

/// `<list>.sum()` of ints, uints or doubles; `0` for an empty list.
fn list_sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, _) = receiver_and_args("sum", args)?;
    let items = list_arg("sum", list.as_ref())?;
    let Some(first) = items.first() else {
        return Ok(CowVal::owned(CelInt::from(0)));
    };
    let mixed = || {
        fail(
            "sum",
            "the list must hold only ints, only uints or only doubles",
        )
    };
    let overflow = || fail("sum", "integer overflow");
    if first.downcast_ref::<CelInt>().is_some() {
        let mut total: i64 = 0;
        for item in items {
            let i = item.downcast_ref::<CelInt>().ok_or_else(mixed)?;
            total = total.checked_add(*i.inner()).ok_or_else(overflow)?;
        }
        Ok(CowVal::owned(CelInt::from(total)))
    } else if first.downcast_ref::<CelUInt>().is_some() {
        let mut total: u64 = 0;
        for item in items {
            let u = item.downcast_ref::<CelUInt>().ok_or_else(mixed)?;
            total = total.checked_add(*u.inner()).ok_or_else(overflow)?;
        }
        Ok(CowVal::owned(CelUInt::from(total)))
    } else if first.downcast_ref::<CelDouble>().is_some() {
        let mut total: f64 = 0.0;
        for item in items {
            total += *item.downcast_ref::<CelDouble>().ok_or_else(mixed)?.inner();
        }
        Ok(CowVal::owned(CelDouble::from(total)))
    } else {
        Err(fail(
            "sum",
            format!("cannot sum {} values", first.get_type().name()),
        ))
    }
}

fn position<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
    last: bool,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, rest) = receiver_and_args(function, args)?;
    let items = list_arg(function, list.as_ref())?;
    let needle = rest
        .first()
        .ok_or_else(ExecutionError::missing_argument_or_target)?;
    let needle = needle.as_ref();
    let hit = |item: &dyn Val| charge_item(needle).map(|()| deep_equals(item, needle));
    let mut found = None;
    if last {
        for (i, item) in items.iter().enumerate().rev() {
            if hit(*item)? {
                found = Some(i);
                break;
            }
        }
    } else {
        for (i, item) in items.iter().enumerate() {
            if hit(*item)? {
                found = Some(i);
                break;
            }
        }
    }
    let index = found.map_or(-1, |i| i64::try_from(i).unwrap_or(i64::MAX));
    Ok(CowVal::owned(CelInt::from(index)))
}

/// `<list>.indexOf(x)`: the first index of an element equal to `x`, or -1.
fn list_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    position("indexOf", args, false)
}

/// `<list>.lastIndexOf(x)`: the last index of an element equal to `x`, or -1.
fn list_last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    position("lastIndexOf", args, true)
}

/// Charge for copying `v` into a new list: one unit per value it holds, at any depth, plus the
/// bytes of its strings. Copies of CEL's own lists and maps are deep (a map element is cloned with
/// everything under it), so charging only the top-level length would let a list of a few huge
/// objects be copied for free. A view of the request's JSON copies as one pointer: one unit.
fn charge_copy(v: &dyn Val) -> Result<(), ExecutionError> {
    charge(1)?;
    if let Some(s) = v.downcast_ref::<CelString>() {
        return charge(s.len() as u64);
    }
    if let Some(list) = v.downcast_ref::<CelList>() {
        return list
            .inner()
            .iter()
            .try_for_each(|i| charge_copy(i.as_ref()));
    }
    if let Some(map) = v.downcast_ref::<CelMap>() {
        return map
            .inner()
            .values()
            .try_for_each(|i| charge_copy(i.as_ref()));
    }
    Ok(())
}

/// A new list of copies of `items`, charged for with [`charge_copy`].
fn copied<'b, 'v>(items: &[&(dyn Val + 'v)]) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let mut out: Vec<Box<dyn Val + 'v>> = Vec::with_capacity(items.len());
    for item in items {
        charge_copy(*item)?;
        out.push(item.clone_as_boxed());
    }
    Ok(CowVal::owned(CelList::from(out)))
}

fn int_arg(function: &str, v: Option<&CowVal<'_, '_>>) -> Result<i64, ExecutionError> {
    v.and_then(|v| v.downcast_ref::<CelInt>().map(|i| *i.inner()))
        .ok_or_else(|| fail(function, "expects an int argument"))
}

/// `<list>.slice(start, end)`: the elements from `start` up to, not including, `end`. Negative
/// indexes, `start > end` and `end` past the list are errors, as in cel-go's lists library.
fn list_slice<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, rest) = receiver_and_args("slice", args)?;
    let items = list_arg("slice", list.as_ref())?;
    let start = int_arg("slice", rest.first())?;
    let end = int_arg("slice", rest.get(1))?;
    let invalid = |why: String| fail("slice", format!("cannot slice({start}, {end}), {why}"));
    if start < 0 || end < 0 {
        return Err(invalid("negative indexes not supported".into()));
    }
    if start > end {
        return Err(invalid(
            "start index must be less than or equal to end index".into(),
        ));
    }
    let (from, to) = (
        usize::try_from(start).unwrap_or(usize::MAX),
        usize::try_from(end).unwrap_or(usize::MAX),
    );
    let kept = items
        .get(from..to)
        .ok_or_else(|| invalid(format!("list is length {}", items.len())))?;
    copied(kept)
}

/// Splice the elements of nested lists into `out`, `depth` levels deep; maps stay whole.
fn flatten_into<'a, 'v>(
    items: &[&'a (dyn Val + 'v)],
    depth: u64,
    out: &mut Vec<&'a (dyn Val + 'v)>,
) -> Result<(), ExecutionError> {
    for item in items {
        charge(1)?;
        if depth > 0 && item.get_type().kind() == Kind::List {
            flatten_into(&charged_elements(*item)?, depth - 1, out)?;
        } else {
            out.push(*item);
        }
    }
    Ok(())
}

fn flatten_to<'b, 'v>(list: &CowVal<'b, 'v>, depth: i64) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let depth = u64::try_from(depth).map_err(|_| fail("flatten", "level must be non-negative"))?;
    let items = list_arg("flatten", list.as_ref())?;
    let mut flat = Vec::new();
    flatten_into(&items, depth, &mut flat)?;
    copied(&flat)
}

/// `<list>.flatten()`: one level of nested lists spliced in.
fn list_flatten<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, _) = receiver_and_args("flatten", args)?;
    flatten_to(&list, 1)
}

/// `<list>.flatten(depth)`: `depth` levels of nested lists spliced in; a negative depth is an
/// error.
fn list_flatten_depth<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, rest) = receiver_and_args("flatten", args)?;
    let depth = int_arg("flatten", rest.first())?;
    flatten_to(&list, depth)
}

/// `<list>.distinct()`: the first of each group of equal elements, in order. Equality is CEL's,
/// so `1`, `1u` and `1.0` are one element, as in cel-go.
fn list_distinct<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, _) = receiver_and_args("distinct", args)?;
    let items = list_arg("distinct", list.as_ref())?;
    let mut unique: Vec<&(dyn Val + 'v)> = Vec::new();
    for item in items {
        // Elements have no hash: each is compared with every distinct one kept so far.
        charge(unique.len() as u64)?;
        charge_item(item)?;
        if !unique.iter().any(|seen| deep_equals(item, *seen)) {
            unique.push(item);
        }
    }
    copied(&unique)
}

/// `<list>.reverse()`.
fn list_reverse<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, _) = receiver_and_args("reverse", args)?;
    let mut items = list_arg("reverse", list.as_ref())?;
    items.reverse();
    copied(&items)
}

/// `<list>.sort()`: ascending. The elements must all have one comparable type (int, uint, double,
/// bool, string, bytes, duration, timestamp); anything else, or a NaN, is an error, as in cel-go.
fn list_sort<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, _) = receiver_and_args("sort", args)?;
    let items = list_arg("sort", list.as_ref())?;
    let order = sorted_order("sort", &items)?;
    copied(&order.iter().map(|&i| items[i]).collect::<Vec<_>>())
}

/// `<list>.@sortByAssociatedKeys(keys)`, what `sortBy` expands to: the elements in the order of
/// their keys (the same rules as `sort`; equal keys keep their order).
fn sort_by_keys<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (list, rest) = receiver_and_args("sortBy", args)?;
    let keys = rest
        .first()
        .ok_or_else(|| fail("sortBy", "expects the keys"))?;
    let items = list_arg("sortBy", list.as_ref())?;
    let keys = list_arg("sortBy", keys.as_ref())?;
    if keys.len() != items.len() {
        return Err(fail("sortBy", "one key per element is needed"));
    }
    let order = sorted_order("sortBy", &keys)?;
    copied(&order.iter().map(|&i| items[i]).collect::<Vec<_>>())
}

/// The indexes of `keys` in ascending order of the keys (stable), charged about n·log2(n).
fn sorted_order(function: &str, keys: &[&dyn Val]) -> Result<Vec<usize>, ExecutionError> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let Some(first) = keys.first().copied() else {
        return Ok(order);
    };
    if first.as_comparer().is_none() {
        return Err(fail(function, "list elements must be comparable"));
    }
    // Comparing every element with the first up front keeps the ordering total: the standard
    // sort may panic on one that is not, which mixed types or a NaN would give.
    for item in keys {
        if item.get_type().name() != first.get_type().name() {
            return Err(fail(function, "list elements must have the same type"));
        }
        compare_items(function, *item, first)?;
    }
    // About n·log2(n) comparisons; the bytes of strings were charged once by the pass above
    // (comparing strings mostly reads their prefixes).
    let n = keys.len() as u64;
    let passes = u64::from(u64::BITS - n.leading_zeros());
    charge(n.saturating_mul(passes))?;
    let mut error = None;
    order.sort_by(|&a, &b| {
        keys[a]
            .as_comparer()
            .map_or(Ok(Ordering::Equal), |c| c.compare(keys[b]))
            .unwrap_or_else(|e| {
                error.get_or_insert(e);
                Ordering::Equal
            })
    });
    match error {
        Some(e) => Err(fail(function, e.to_string())),
        None => Ok(order),
    }
}

/// `lists.range(n)`: the ints `0` to `n - 1`. Charged before anything is allocated, so a huge `n`
/// runs out of budget instead of memory; a negative `n` is an error, as in cel-go.
fn lists_range<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let n = int_arg("lists.range", args.first())?;
    let len = u64::try_from(n)
        .map_err(|_| fail("lists.range", format!("size must be non-negative, got {n}")))?;
    charge(len.saturating_add(1))?;
    let items: Vec<Box<dyn Val + 'v>> = (0..n)
        .map(|i| Box::new(CelInt::from(i)) as Box<dyn Val + 'v>)
        .collect();
    Ok(CowVal::owned(CelList::from(items)))
}

/// The elements of a list.
type Items<'a, 'v> = Vec<&'a (dyn Val + 'v)>;

/// The two lists of a `sets.*` call, after charging for comparing every pair.
fn two_lists<'a, 'v>(
    function: &str,
    args: &'a [CowVal<'_, 'v>],
) -> Result<(Items<'a, 'v>, Items<'a, 'v>), ExecutionError> {
    let [a, b] = args else {
        return Err(fail(function, "expects two lists"));
    };
    let a = list_arg(function, a.as_ref())?;
    let b = list_arg(function, b.as_ref())?;
    // Elements have no hash: every pair may be compared.
    charge((a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1))?;
    Ok((a, b))
}

fn all_in(needles: &[&dyn Val], haystack: &[&dyn Val]) -> bool {
    needles
        .iter()
        .all(|n| haystack.iter().any(|h| deep_equals(*h, *n)))
}

/// `sets.contains(a, b)`: every element of `b` is in `a`.
fn sets_contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = two_lists("sets.contains", &args)?;
    Ok(CowVal::owned(CelBool::from(all_in(&b, &a))))
}

/// `sets.equivalent(a, b)`: the same elements, ignoring order and duplicates.
fn sets_equivalent<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = two_lists("sets.equivalent", &args)?;
    charge((a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1))?;
    Ok(CowVal::owned(CelBool::from(
        all_in(&a, &b) && all_in(&b, &a),
    )))
}

/// `sets.intersects(a, b)`: at least one element in common.
fn sets_intersects<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = two_lists("sets.intersects", &args)?;
    let any = a.iter().any(|x| b.iter().any(|y| deep_equals(*y, *x)));
    Ok(CowVal::owned(CelBool::from(any)))
}

fn fail(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

// ---------------------------------------------------------------- url

/// `url(string)`: an absolute URI or an absolute path, as Kubernetes' URL library takes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Url {
    scheme: String,
    host: String,
    hostname: String,
    port: String,
    path: String,
    query: Vec<(String, String)>,
}

opaque_type!(Url, URL_TYPE, "kubernetes.URL");

impl Url {
    fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with('/') {
            let parsed = url::Url::parse("http://relative.invalid")
                .and_then(|base| base.join(text))
                .map_err(|e| format!("`{text}` is not a URL: {e}"))?;
            return Ok(Self {
                scheme: String::new(),
                host: String::new(),
                hostname: String::new(),
                port: String::new(),
                path: parsed.path().to_owned(),
                query: parsed.query_pairs().into_owned().collect(),
            });
        }
        let parsed = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
        let host_str = parsed.host_str().unwrap_or_default();
        let port = parsed.port().map(|p| p.to_string()).unwrap_or_default();
        let host = if port.is_empty() {
            host_str.to_owned()
        } else {
            format!("{host_str}:{port}")
        };
        Ok(Self {
            scheme: parsed.scheme().to_owned(),
            hostname: host_str
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            host,
            port,
            // Go keeps an absent path empty where the url crate writes `/`.
            path: if has_path(text) {
                parsed.path().to_owned()
            } else {
                String::new()
            },
            query: parsed.query_pairs().into_owned().collect(),
        })
    }
}

/// Whether an absolute URL has a path after its authority.
fn has_path(text: &str) -> bool {
    match text.split_once("://") {
        Some((_, rest)) => rest
            .find(['/', '?', '#'])
            .is_some_and(|i| rest[i..].starts_with('/')),
        None => true,
    }
}

fn url(text: &CelString<'_>) -> Result<Url, ExecutionError> {
    Url::parse(text).map_err(|m| fail("url", m))
}

fn is_url(text: &CelString<'_>) -> CelBool {
    Url::parse(text).is_ok().into()
}

fn get_scheme(this: &Url) -> CelString<'static> {
    this.scheme.clone().into()
}

fn get_host(this: &Url) -> CelString<'static> {
    this.host.clone().into()
}

fn get_hostname(this: &Url) -> CelString<'static> {
    this.hostname.clone().into()
}

fn get_port(this: &Url) -> CelString<'static> {
    this.port.clone().into()
}

fn get_escaped_path(this: &Url) -> CelString<'static> {
    this.path.clone().into()
}

fn get_query(this: &Url) -> CelMap<'static> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in &this.query {
        match grouped.iter_mut().find(|(key, _)| key == k) {
            Some((_, values)) => values.push(v.clone()),
            None => grouped.push((k.clone(), vec![v.clone()])),
        }
    }
    let map: HashMap<CelMapKey<'static>, Box<dyn Val>> = grouped
        .into_iter()
        .map(|(k, values)| {
            let list: Vec<Box<dyn Val>> = values
                .into_iter()
                .map(|v| Box::new(CelString::from(v)) as Box<dyn Val>)
                .collect();
            (
                CelMapKey::from(k),
                Box::new(CelList::from(list)) as Box<dyn Val>,
            )
        })
        .collect();
    CelMap::from(map)
}

// ---------------------------------------------------------------- quantity

/// `quantity(string)`: a Kubernetes resource quantity, held exactly in nano-units.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Quantity {
    nanos: i128,
}

opaque_type!(Quantity, QUANTITY_TYPE, "kubernetes.Quantity");

const NANOS: i128 = 1_000_000_000;

/// Whether `text` matches `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`, the shape Kubernetes
/// checks before it reads the suffix.
fn quantity_shaped(text: &str) -> bool {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let number = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let suffix = body[number..].trim_start_matches(|c: char| "eEinumkKMGTP".contains(c));
    let exponent = suffix.strip_prefix(['+', '-']).unwrap_or(suffix);
    number > 0 && exponent.bytes().all(|b| b.is_ascii_digit())
}

impl Quantity {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            if quantity_shaped(text) {
                format!("`{text}`: unable to parse quantity's suffix")
            } else {
                format!("`{text}`: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (e.g. 500m, 2, 1.5Gi, 1e3)")
            }
        };
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(bad());
        }
        if whole.len() + fraction.len() > 30 {
            return Err(format!("`{text}` has too many digits"));
        }
        let mut mantissa: i128 = 0;
        for d in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa * 10 + i128::from(d - b'0');
        }
        let scale = fraction.len() as i32;
        // (power of ten, power of two) the suffix multiplies by.
        let (ten, two): (i32, u32) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            s if s.starts_with(['e', 'E']) => {
                let exponent: i32 = s[1..].parse().map_err(|_| bad())?;
                if !(-30..=30).contains(&exponent) {
                    return Err(format!("`{text}`: exponent out of range"));
                }
                (exponent, 0)
            }
            _ => return Err(bad()),
        };
        let too_big = || format!("`{text}` is out of range");
        let mut nanos = mantissa.checked_mul(1i128 << two).ok_or_else(too_big)?;
        let exponent = ten + 9 - scale;
        if exponent >= 0 {
            nanos = nanos
                .checked_mul(10i128.checked_pow(exponent as u32).ok_or_else(too_big)?)
                .ok_or_else(too_big)?;
        } else {
            let divisor = 10i128.checked_pow((-exponent) as u32).ok_or_else(too_big)?;
            // Kubernetes rounds fractions of the smallest unit up.
            nanos = (nanos + divisor - 1) / divisor;
        }
        Ok(Self {
            nanos: if negative { -nanos } else { nanos },
        })
    }
}

fn quantity(text: &CelString<'_>) -> Result<Quantity, ExecutionError> {
    Quantity::parse(text).map_err(|m| fail("quantity", m))
}

fn is_quantity(text: &CelString<'_>) -> CelBool {
    Quantity::parse(text).is_ok().into()
}

fn ordering(o: Ordering) -> i64 {
    match o {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}

fn compare_to(this: &Quantity, other: &Quantity) -> CelInt {
    ordering(this.nanos.cmp(&other.nanos)).into()
}

fn is_greater_than(this: &Quantity, other: &Quantity) -> CelBool {
    (this.nanos > other.nanos).into()
}

fn is_less_than(this: &Quantity, other: &Quantity) -> CelBool {
    (this.nanos < other.nanos).into()
}

fn as_integer(this: &Quantity) -> Result<CelInt, ExecutionError> {
    if this.nanos % NANOS != 0 {
        return Err(fail("asInteger", "the quantity has a fractional part"));
    }
    i64::try_from(this.nanos / NANOS)
        .map(CelInt::from)
        .map_err(|_| fail("asInteger", "the quantity does not fit in an int"))
}

fn is_integer(this: &Quantity) -> CelBool {
    (this.nanos % NANOS == 0 && i64::try_from(this.nanos / NANOS).is_ok()).into()
}

fn as_approximate_float(this: &Quantity) -> CelDouble {
    (this.nanos as f64 / NANOS as f64).into()
}

fn sign(this: &Quantity) -> CelInt {
    ordering(this.nanos.cmp(&0)).into()
}

fn add_quantity(this: &Quantity, other: &Quantity) -> Result<Quantity, ExecutionError> {
    this.nanos
        .checked_add(other.nanos)
        .map(|nanos| Quantity { nanos })
        .ok_or_else(|| fail("add", "quantity overflow"))
}

fn add_int(this: &Quantity, other: &CelInt) -> Result<Quantity, ExecutionError> {
    add_quantity(
        this,
        &Quantity {
            nanos: i128::from(*other.inner()) * NANOS,
        },
    )
}

fn sub_quantity(this: &Quantity, other: &Quantity) -> Result<Quantity, ExecutionError> {
    this.nanos
        .checked_sub(other.nanos)
        .map(|nanos| Quantity { nanos })
        .ok_or_else(|| fail("sub", "quantity overflow"))
}

fn sub_int(this: &Quantity, other: &CelInt) -> Result<Quantity, ExecutionError> {
    sub_quantity(
        this,
        &Quantity {
            nanos: i128::from(*other.inner()) * NANOS,
        },
    )
}

// ---------------------------------------------------------------- ip and cidr

/// `ip(string)`: an IPv4 or IPv6 address (no zone, no IPv4-mapped IPv6, as in Kubernetes).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ip(IpAddr);

opaque_type!(Ip, IP_TYPE, "net.IP");

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    let addr: IpAddr = text
        .parse()
        .map_err(|_| format!("IP Address {text:?} parse error during conversion from string"))?;
    if let IpAddr::V6(v6) = addr {
        if v6.to_ipv4_mapped().is_some() {
            return Err(format!(
                "`{text}`: IPv4-mapped IPv6 addresses are not allowed"
            ));
        }
    }
    Ok(addr)
}

/// `ip.isCanonical(string)`: whether the address is written as Kubernetes writes it back
/// (IPv6 in lower case, its longest run of zeros compressed).
fn is_canonical(text: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let addr = parse_ip(text).map_err(|m| fail("ip.isCanonical", m))?;
    Ok((addr.to_string() == text.inner()).into())
}

fn ip(text: &CelString<'_>) -> Result<Ip, ExecutionError> {
    parse_ip(text).map(Ip).map_err(|m| fail("ip", m))
}

fn is_ip(text: &CelString<'_>) -> CelBool {
    parse_ip(text).is_ok().into()
}

fn ip_string(this: &Ip) -> CelString<'static> {
    this.0.to_string().into()
}

fn family(this: &Ip) -> CelInt {
    CelInt::from(if this.0.is_ipv4() { 4 } else { 6 })
}

fn is_unspecified(this: &Ip) -> CelBool {
    this.0.is_unspecified().into()
}

fn is_loopback(this: &Ip) -> CelBool {
    this.0.is_loopback().into()
}

fn link_local_unicast(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn link_local_multicast(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.octets()[0] == 0xff && (v6.octets()[1] & 0x0f) == 0x02,
    }
}

fn is_link_local_unicast(this: &Ip) -> CelBool {
    link_local_unicast(&this.0).into()
}

fn is_link_local_multicast(this: &Ip) -> CelBool {
    link_local_multicast(&this.0).into()
}

fn is_global_unicast(this: &Ip) -> CelBool {
    let a = &this.0;
    let broadcast = matches!(a, IpAddr::V4(v4) if v4.is_broadcast());
    (!a.is_unspecified()
        && !a.is_loopback()
        && !a.is_multicast()
        && !link_local_unicast(a)
        && !broadcast)
        .into()
}

/// `cidr(string)`: an address and prefix length, as written.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

opaque_type!(Cidr, CIDR_TYPE, "net.CIDR");

impl Cidr {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("network address parse error during conversion from string: `{text}` is not a CIDR (e.g. 10.0.0.0/8)")
        };
        let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
        let addr = parse_ip(addr).map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    fn masked(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    fn contains(&self, addr: &IpAddr) -> bool {
        let other = Cidr {
            addr: *addr,
            prefix: self.prefix,
        };
        self.addr.is_ipv4() == addr.is_ipv4() && other.masked() == self.masked()
    }
}

fn cidr(text: &CelString<'_>) -> Result<Cidr, ExecutionError> {
    Cidr::parse(text).map_err(|m| fail("cidr", m))
}

fn is_cidr(text: &CelString<'_>) -> CelBool {
    Cidr::parse(text).is_ok().into()
}

fn cidr_string(this: &Cidr) -> CelString<'static> {
    format!("{}/{}", this.addr, this.prefix).into()
}

fn contains_ip(this: &Cidr, other: &Ip) -> CelBool {
    this.contains(&other.0).into()
}

fn contains_ip_text(this: &Cidr, other: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let addr = parse_ip(other).map_err(|m| fail("containsIP", m))?;
    Ok(this.contains(&addr).into())
}

fn contains_cidr(this: &Cidr, other: &Cidr) -> CelBool {
    (other.prefix >= this.prefix && this.contains(&other.addr)).into()
}

fn contains_cidr_text(this: &Cidr, other: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let other = Cidr::parse(other).map_err(|m| fail("containsCIDR", m))?;
    Ok(contains_cidr(this, &other))
}

fn cidr_ip(this: &Cidr) -> Ip {
    Ip(this.addr)
}

fn cidr_masked(this: &Cidr) -> Cidr {
    Cidr {
        addr: this.masked(),
        prefix: this.prefix,
    }
}

fn prefix_length(this: &Cidr) -> CelInt {
    CelInt::from(i64::from(this.prefix))
}

/// Declare every function of this module on `env`.
pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload(
        "@budget",
        "@budget(dyn,int)",
        vec![DYN_TYPE, INT_TYPE],
        budget,
    )?;
    env.add_overload("@charge", "@charge(dyn)", vec![DYN_TYPE], charge_value)?;
    env.add_overload("@copy", "@copy(dyn)", vec![DYN_TYPE], copy_value)?;
    env.add_overload("@eq", "@eq(dyn,dyn)", vec![DYN_TYPE, DYN_TYPE], equal)?;
    env.add_overload("@ne", "@ne(dyn,dyn)", vec![DYN_TYPE, DYN_TYPE], not_equal)?;
    env.add_overload(
        "@contains",
        "@contains(dyn,list)",
        vec![DYN_TYPE, LIST_TYPE],
        contains,
    )?;
    cel::add_overload!(env, fn replace: (CelString, CelString, CelString) -> Result<CelString>,
        name = "@replace")?;
    cel::add_overload!(env, fn replace_n: (CelString, CelString, CelString, CelInt) -> Result<CelString>,
        name = "@replace")?;

    cel::add_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>,
        name = "@matches")?;
    cel::add_member_overload!(env, fn find: (CelString, CelString) -> Result<CelString>)?;
    cel::add_member_overload!(env, fn find_all: (CelString, CelString) -> Result<CelList>,
        name = "findAll")?;
    cel::add_member_overload!(env, fn find_all_n: (CelString, CelString, CelInt) -> Result<CelList>,
        name = "findAll")?;

    env.add_member_overload("isSorted", "list.isSorted()", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list.sum()", LIST_TYPE, vec![], list_sum)?;
    env.add_member_overload("min", "list.min()", LIST_TYPE, vec![], list_min)?;
    env.add_member_overload("max", "list.max()", LIST_TYPE, vec![], list_max)?;
    env.add_member_overload(
        "indexOf",
        "list.indexOf(dyn)",
        LIST_TYPE,
        vec![DYN_TYPE],
        list_index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list.lastIndexOf(dyn)",
        LIST_TYPE,
        vec![DYN_TYPE],
        list_last_index_of,
    )?;
    env.add_member_overload(
        "slice",
        "list.slice(int,int)",
        LIST_TYPE,
        vec![INT_TYPE, INT_TYPE],
        list_slice,
    )?;
    env.add_member_overload("flatten", "list.flatten()", LIST_TYPE, vec![], list_flatten)?;
    env.add_member_overload(
        "flatten",
        "list.flatten(int)",
        LIST_TYPE,
        vec![INT_TYPE],
        list_flatten_depth,
    )?;
    env.add_member_overload(
        "distinct",
        "list.distinct()",
        LIST_TYPE,
        vec![],
        list_distinct,
    )?;
    env.add_member_overload("reverse", "list.reverse()", LIST_TYPE, vec![], list_reverse)?;
    env.add_member_overload("sort", "list.sort()", LIST_TYPE, vec![], list_sort)?;
    env.add_member_overload(
        super::sort_by::SORT_BY_KEYS,
        "list.@sortByAssociatedKeys(list)",
        LIST_TYPE,
        vec![LIST_TYPE],
        sort_by_keys,
    )?;
    env.add_overload(
        "lists.range",
        "lists.range(int)",
        vec![INT_TYPE],
        lists_range,
    )?;
    let two = || vec![LIST_TYPE, LIST_TYPE];
    env.add_overload(
        "sets.contains",
        "sets.contains(list,list)",
        two(),
        sets_contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "sets.equivalent(list,list)",
        two(),
        sets_equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "sets.intersects(list,list)",
        two(),
        sets_intersects,
    )?;

    cel::add_overload!(env, fn url: (CelString) -> Result<Url>)?;
    cel::add_overload!(env, fn is_url: (CelString) -> CelBool, name = "isURL")?;
    cel::add_member_overload!(env, fn get_scheme: (Url) -> CelString)?;
    cel::add_member_overload!(env, fn get_host: (Url) -> CelString)?;
    cel::add_member_overload!(env, fn get_hostname: (Url) -> CelString)?;
    cel::add_member_overload!(env, fn get_port: (Url) -> CelString)?;
    cel::add_member_overload!(env, fn get_escaped_path: (Url) -> CelString)?;
    cel::add_member_overload!(env, fn get_query: (Url) -> CelMap)?;

    cel::add_overload!(env, fn quantity: (CelString) -> Result<Quantity>)?;
    cel::add_overload!(env, fn is_quantity: (CelString) -> CelBool)?;
    cel::add_member_overload!(env, fn compare_to: (Quantity, Quantity) -> CelInt)?;
    cel::add_member_overload!(env, fn is_greater_than: (Quantity, Quantity) -> CelBool)?;
    cel::add_member_overload!(env, fn is_less_than: (Quantity, Quantity) -> CelBool)?;
    cel::add_member_overload!(env, fn as_integer: (Quantity) -> Result<CelInt>)?;
    cel::add_member_overload!(env, fn is_integer: (Quantity) -> CelBool)?;
    cel::add_member_overload!(env, fn as_approximate_float: (Quantity) -> CelDouble)?;
    cel::add_member_overload!(env, fn sign: (Quantity) -> CelInt)?;
    cel::add_member_overload!(env, fn add_quantity: (Quantity, Quantity) -> Result<Quantity>,
        name = "add")?;
    cel::add_member_overload!(env, fn add_int: (Quantity, CelInt) -> Result<Quantity>,
        name = "add")?;
    cel::add_member_overload!(env, fn sub_quantity: (Quantity, Quantity) -> Result<Quantity>,
        name = "sub")?;
    cel::add_member_overload!(env, fn sub_int: (Quantity, CelInt) -> Result<Quantity>,
        name = "sub")?;

    cel::add_overload!(env, fn ip: (CelString) -> Result<Ip>)?;
    cel::add_overload!(env, fn is_ip: (CelString) -> CelBool, name = "isIP")?;
    cel::add_overload!(env, fn ip_string: (Ip) -> CelString, name = "string")?;
    cel::add_member_overload!(env, fn family: (Ip) -> CelInt)?;
    cel::add_member_overload!(env, fn is_unspecified: (Ip) -> CelBool)?;
    cel::add_member_overload!(env, fn is_loopback: (Ip) -> CelBool)?;
    cel::add_member_overload!(env, fn is_link_local_unicast: (Ip) -> CelBool)?;
    cel::add_member_overload!(env, fn is_link_local_multicast: (Ip) -> CelBool)?;
    cel::add_member_overload!(env, fn is_global_unicast: (Ip) -> CelBool)?;

    cel::add_overload!(env, fn cidr: (CelString) -> Result<Cidr>)?;
    cel::add_overload!(env, fn is_cidr: (CelString) -> CelBool, name = "isCIDR")?;
    cel::add_overload!(env, fn cidr_string: (Cidr) -> CelString, name = "string")?;
    cel::add_member_overload!(env, fn contains_ip: (Cidr, Ip) -> CelBool, name = "containsIP")?;
    cel::add_member_overload!(env, fn contains_ip_text: (Cidr, CelString) -> Result<CelBool>,
        name = "containsIP")?;
    cel::add_member_overload!(env, fn contains_cidr: (Cidr, Cidr) -> CelBool, name = "containsCIDR")?;
    cel::add_member_overload!(env, fn contains_cidr_text: (Cidr, CelString) -> Result<CelBool>,
        name = "containsCIDR")?;
    cel::add_member_overload!(env, fn cidr_ip: (Cidr) -> Ip, name = "ip")?;
    cel::add_member_overload!(env, fn cidr_masked: (Cidr) -> Cidr, name = "masked")?;
    cel::add_member_overload!(env, fn prefix_length: (Cidr) -> CelInt)?;
    cel::add_overload!(env, fn is_canonical: (CelString) -> Result<CelBool>,
        name = "ip.isCanonical")?;
    // Type names, for `type(x) == net.IP`.
    for t in [&URL_TYPE, &QUANTITY_TYPE, &IP_TYPE, &CIDR_TYPE] {
        env.add_type(t.to_owned())?;
    }
    super::formats::register(env)?;
    Ok(())
}
