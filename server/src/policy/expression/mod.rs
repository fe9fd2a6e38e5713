//! CEL for guardrail `condition` and `messageExpression`: compiled and checked once when a policy
//! loads, evaluated with the variables a ValidatingAdmissionPolicy has and a cost budget.
//!
//! Bounding evaluation. The `cel` crate has no cost or step limit of its own, so a hostile
//! expression is bounded in three layers:
//!
//! 1. At load: the source is at most [`MAX_SOURCE_LEN`] bytes, the parsed tree at most
//!    [`MAX_NODES`] nodes, and comprehensions (`all`, `exists`, `map`, `filter`, ...) nest at most
//!    [`MAX_COMPREHENSION_NESTING`] deep. Unknown variables are refused here too.
//! 2. At load the tree is rewritten: every comprehension's range goes through `@budget`, which
//!    charges `(items + 1) × (size of the loop body)` before the loop runs; results of the calls
//!    that can grow data (`+`, `join`, `split`, `format`, `replace`) go through `@charge`, which
//!    charges their size; `replace` is routed to `@replace`, which refuses to build a string larger
//!    than [`MAX_STRING_BYTES`] before allocating it; `matches` is routed to `@matches`, which caches
//!    compiled patterns, limits their size and charges for compiling and matching; the non-constant
//!    elements of list and map literals go through `@copy`, which charges for the deep copy the
//!    literal makes of them. `==`, `!=` (without a scalar literal side) and `in` over a list literal
//!    of lists or maps go to `@eq`, `@ne` and `@contains`, which compare views of the request's
//!    JSON with built values as CEL does (see `json`); `!x` becomes `x ? false : true`, which the
//!    interpreter evaluates without building an error first. `@` names cannot be written in CEL
//!    source. The Kubernetes list
//!    (including cel-go's `slice`, `flatten`, `distinct`, `reverse`, `sort`, `lists.range`), regex
//!    (`find`, `findAll`, sharing the pattern cache) and set functions are not rewritten: they charge
//!    for the elements and bytes they visit and build themselves.
//! 3. At run time each evaluation starts with [`COST_BUDGET`] units (a per-thread counter: the
//!    interpreter is synchronous). When it runs out the evaluation fails with
//!    "cost budget exceeded", which a condition treats as an error: fail closed.
//!
//! A panic inside the interpreter is caught and reported as an evaluation error as well. The tree is
//! at most [`MAX_DEPTH`] deep, and evaluation runs on a stack segment of its own when the calling
//! thread has too little left (`stacker`), so deep expressions cannot overflow a webhook thread.

/// A `'static` Rust type as an opaque CEL value of the type `$name` (`url`, `quantity`, `ip`,
/// `cidr`, named formats): equal when the Rust values are, and recoverable with `downcast_ref`.
/// Defined before the modules that use it.
macro_rules! opaque_type {
    ($ty:ident, $static:ident, $name:literal) => {
        static $static: ::cel::common::types::Type =
            ::cel::common::types::Type::new_unspecified_type($name);

        impl ::cel::common::value::Val for $ty {
            fn get_type(&self) -> &::cel::common::types::Type {
                &$static
            }
            fn cel_type() -> &'static ::cel::common::types::Type {
                &$static
            }
            fn equals(&self, other: &dyn ::cel::common::value::Val) -> bool {
                other.downcast_ref::<$ty>().is_some_and(|o| o == self)
            }
            fn clone_as_boxed<'v>(&self) -> Box<dyn ::cel::common::value::Val + 'v>
            where
                Self: 'v,
            {
                Box::new(self.clone())
            }
            fn as_any(&self) -> Option<&dyn ::std::any::Any> {
                Some(self)
            }
        }

        impl ::cel::common::value::StaticVal for $ty {}
    };
}

mod compiled;
mod declared;
mod formats;
mod functions;
mod json;
mod sort_by;
#[cfg(test)]
mod tests;

use std::cell::OnceCell;
use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedEntryExpr, LiteralValue};
use cel::common::types::{CelBool, CelInt, CelNull, CelString};
use cel::common::value::Val;
use cel::{Context, Env, ExecutionError, IdedExpr, Value};

use crate::admission::AdmissionRequest;

/// Longest expression source accepted, in bytes.
pub const MAX_SOURCE_LEN: usize = 8 * 1024;
/// Most nodes in a parsed expression (after macro expansion).
pub const MAX_NODES: usize = 2_000;
/// Deepest nesting of comprehensions (`a.all(x, x.b.exists(y, ...))` is 2).
pub const MAX_COMPREHENSION_NESTING: usize = 3;
/// Deepest parsed tree (after macro expansion): the interpreter recurses once per level, on the
/// webhook's own stack.
pub const MAX_DEPTH: usize = 64;
/// Stack an evaluation runs on (a fresh segment when the current thread has less than half left).
pub const EVAL_STACK: usize = 16 << 20;
/// Stack for the parser, which recurses once per operator of a chain like `a + b + c + ...`.
const PARSER_STACK: usize = 256 << 20;
/// Cost units one evaluation may spend (loop iterations weighted by body size, bytes built).
pub const COST_BUDGET: u64 = 1_000_000;
/// Largest string `replace` may build.
pub const MAX_STRING_BYTES: usize = 1 << 20;

/// The variables an expression may read, as in a ValidatingAdmissionPolicy.
pub const VARIABLES: [&str; 4] = ["object", "oldObject", "request", "namespaceObject"];

/// Names that are not variables but may stand as identifiers: type names and function namespaces.
const OTHER_IDENTS: [&str; 20] = [
    "bool",
    "bytes",
    "double",
    "int",
    "uint",
    "string",
    "list",
    "map",
    "null_type",
    "type",
    "optional",
    "strings",
    "sets",
    "lists",
    "dyn",
    "optional_type",
    "format",
    "ip",
    "net",
    "kubernetes",
];

static ENV: LazyLock<Result<Arc<Env>, String>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .map_err(|e| e.to_string())?;
    functions::register(&mut env).map_err(|e| e.to_string())?;
    env.add_macro(sort_by::sort_by())
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(env))
});

fn env() -> Result<&'static Arc<Env>, String> {
    ENV.as_ref()
        .map_err(|e| format!("CEL environment failed to build: {e}"))
}

/// A compiled, checked and budget-instrumented CEL expression.
#[derive(Clone)]
pub struct CelExpression {
    source: Arc<str>,
    expr: Arc<IdedExpr>,
    /// The same expression compiled, when it stays within `compiled`'s subset.
    compiled: Option<Arc<compiled::Program>>,
}

impl fmt::Debug for CelExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CelExpression").field(&self.source).finish()
    }
}

impl PartialEq for CelExpression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for CelExpression {}

impl CelExpression {
    /// Parse, check against the limits, and instrument `source`. The error names the position
    /// (`line:column`) when the parser gives one.
    pub fn compile(source: &str) -> Result<Self, String> {
        // The parser and the checks below recurse as deep as the source nests; run them where a
        // hostile 8 KiB expression cannot overflow the caller's stack.
        let owned = source.to_owned();
        std::thread::Builder::new()
            .name("cel-compile".into())
            .stack_size(PARSER_STACK)
            .spawn(move || Self::compile_here(&owned))
            .map_err(|e| format!("cannot start the CEL compiler: {e}"))?
            .join()
            .unwrap_or_else(|_| Err("the CEL parser failed on this expression".into()))
    }

    fn compile_here(source: &str) -> Result<Self, String> {
        if source.trim().is_empty() {
            return Err("the expression is empty".into());
        }
        if source.len() > MAX_SOURCE_LEN {
            return Err(format!(
                "the expression is {} bytes long; at most {MAX_SOURCE_LEN} are allowed",
                source.len()
            ));
        }
        let env = env()?;
        let program = env.compile(source).map_err(|errors| {
            errors
                .errors
                .iter()
                .map(|e| format!("at {}:{}: {}", e.pos.0, e.pos.1, e.msg))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let mut expr = program.expression().clone();
        let mut check = Check::default();
        check.walk(&expr, 0, 1, &mut Vec::new())?;
        if check.nodes > MAX_NODES {
            return Err(format!(
                "the expression has {} nodes after macro expansion; at most {MAX_NODES} are allowed",
                check.nodes
            ));
        }
        let compiled = compiled::Program::compile(&expr).map(Arc::new);
        let mut next_id = check.max_id + 1;
        instrument(&mut expr, &mut next_id);
        Ok(Self {
            source: source.into(),
            expr: Arc::new(expr),
            compiled,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression runs compiled (else only in the interpreter).
    pub fn is_compiled(&self) -> bool {
        self.compiled.is_some()
    }

    /// Evaluate to a boolean; anything else, or a failure, is an error message.
    pub fn eval_bool(&self, activation: &Activation<'_>) -> Result<bool, String> {
        if let Some(b) = self
            .compiled
            .as_ref()
            .and_then(|p| p.eval_bool(activation.request))
        {
            return Ok(b);
        }
        self.interpret_bool(activation)
    }

    /// [`Self::eval_bool`] in the interpreter alone: what the compiled program must agree with.
    fn interpret_bool(&self, activation: &Activation<'_>) -> Result<bool, String> {
        self.eval_with(activation, |v| {
            v.downcast_ref::<CelBool>()
                .map(|b| *b.inner())
                .ok_or_else(|| format!("evaluated to {}, not bool", v.get_type().name()))
        })
    }

    /// Evaluate to a string; anything else, or a failure, is an error message.
    pub fn eval_string(&self, activation: &Activation<'_>) -> Result<String, String> {
        if let Some(s) = self
            .compiled
            .as_ref()
            .and_then(|p| p.eval_string(activation.request))
        {
            return Ok(s);
        }
        self.eval_with(activation, |v| {
            v.downcast_ref::<CelString>()
                .map(|s| s.inner().to_owned())
                .ok_or_else(|| format!("evaluated to {}, not string", v.get_type().name()))
        })
    }

    /// Evaluate for the error alone, whatever the result's type (the conformance suite asks this
    /// of expressions Kubernetes expects to fail).
    pub fn evaluate(&self, activation: &Activation<'_>) -> Result<(), String> {
        self.eval_with(activation, |_| Ok(()))
    }

    /// Evaluate to a JSON-ish display of the result, for explanations.
    fn eval_with<T>(
        &self,
        activation: &Activation<'_>,
        convert: impl FnOnce(&dyn Val) -> Result<T, String>,
    ) -> Result<T, String> {
        let context = activation.context()?;
        let run = std::panic::AssertUnwindSafe(|| {
            functions::reset_budget(COST_BUDGET);
            match Value::resolve_val(&self.expr, context) {
                Ok(v) => convert(v.as_ref()),
                Err(e) => Err(describe(&e)),
            }
        });
        // The interpreter recurses once per level of the tree (up to MAX_DEPTH), with frames of
        // up to ~100 KiB in debug builds: make sure there is room, whatever thread we are on.
        stacker::maybe_grow(EVAL_STACK / 2, EVAL_STACK, || {
            std::panic::catch_unwind(run)
                .unwrap_or_else(|_| Err("the CEL interpreter failed on this expression".into()))
        })
    }
}

fn describe(error: &ExecutionError) -> String {
    match error {
        ExecutionError::FunctionError { function, message } if function.starts_with('@') => {
            message.clone()
        }
        other => other.to_string(),
    }
}

#[derive(Default)]
struct Check {
    nodes: usize,
    max_id: u64,
}

impl Check {
    /// Count nodes, measure comprehension nesting, refuse unknown identifiers.
    fn walk(
        &mut self,
        e: &IdedExpr,
        nesting: usize,
        depth: usize,
        scope: &mut Vec<String>,
    ) -> Result<(), String> {
        self.nodes += 1;
        if depth > MAX_DEPTH {
            return Err(format!(
                "the expression nests more than {MAX_DEPTH} levels deep; split it or use lists and comprehensions"
            ));
        }
        let d = depth + 1;
        self.max_id = self.max_id.max(e.id);
        if self.nodes > MAX_NODES {
            return Err(format!(
                "the expression has more than {MAX_NODES} nodes after macro expansion"
            ));
        }
        match &e.expr {
            Expr::Unspecified | Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => {
                if VARIABLES.contains(&name.as_str())
                    || OTHER_IDENTS.contains(&name.as_str())
                    || name.starts_with('@')
                    || scope.iter().any(|s| s == name)
                {
                    Ok(())
                } else {
                    Err(format!(
                        "undeclared reference to `{name}` (variables are {})",
                        VARIABLES.join(", ")
                    ))
                }
            }
            Expr::Select(s) => self.walk(&s.operand, nesting, d, scope),
            Expr::Call(c) => {
                declared_call(c, scope)?;
                if let Some(t) = &c.target {
                    self.walk(t, nesting, d, scope)?;
                }
                c.args
                    .iter()
                    .try_for_each(|a| self.walk(a, nesting, d, scope))
            }
            Expr::List(l) => l
                .elements
                .iter()
                .try_for_each(|a| self.walk(a, nesting, d, scope)),
            Expr::Map(m) => m.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(me) => {
                    self.walk(&me.key, nesting, d, scope)?;
                    self.walk(&me.value, nesting, d, scope)
                }
                EntryExpr::StructField(f) => self.walk(&f.value, nesting, d, scope),
            }),
            Expr::Struct(s) => s.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(me) => {
                    self.walk(&me.key, nesting, d, scope)?;
                    self.walk(&me.value, nesting, d, scope)
                }
                EntryExpr::StructField(f) => self.walk(&f.value, nesting, d, scope),
            }),
            Expr::Comprehension(c) => {
                let inner_nesting = nesting + 1;
                if inner_nesting > MAX_COMPREHENSION_NESTING {
                    return Err(format!(
                        "comprehensions (all, exists, map, filter, ...) nest more than {MAX_COMPREHENSION_NESTING} deep"
                    ));
                }
                self.walk(&c.iter_range, nesting, d, scope)?;
                self.walk(&c.accu_init, nesting, d, scope)?;
                let before = scope.len();
                scope.push(c.iter_var.clone());
                if let Some(v) = &c.iter_var2 {
                    scope.push(v.clone());
                }
                scope.push(c.accu_var.clone());
                let inner = self
                    .walk(&c.loop_cond, inner_nesting, d, scope)
                    .and_then(|()| self.walk(&c.loop_step, inner_nesting, d, scope))
                    .and_then(|()| self.walk(&c.result, inner_nesting, d, scope));
                scope.truncate(before);
                inner
            }
        }
    }
}

/// Refuse a call of a function the environment does not declare, or with the wrong number of
/// arguments (operators and the macros' own calls are the parser's and always declared).
fn declared_call(c: &CallExpr, scope: &[String]) -> Result<(), String> {
    let name = c.func_name.as_str();
    if name.starts_with(['_', '@', '!', '-']) {
        return Ok(());
    }
    let namespace = match c.target.as_deref().map(|t| &t.expr) {
        Some(Expr::Ident(ns))
            if declared::NAMESPACES.contains(&ns.as_str()) && !scope.contains(ns) =>
        {
            Some(ns.as_str())
        }
        _ => None,
    };
    match (namespace, &c.target) {
        (Some(ns), _) => declared::check_call(&format!("{ns}.{name}"), false, c.args.len()),
        (None, Some(_)) => declared::check_call(name, true, c.args.len()),
        (None, None) => declared::check_call(name, false, c.args.len()),
    }
}

fn count_nodes(e: &IdedExpr) -> u64 {
    let children: u64 = match &e.expr {
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) => 0,
        Expr::Select(s) => count_nodes(&s.operand),
        Expr::Call(c) => {
            c.target.as_deref().map_or(0, count_nodes) + c.args.iter().map(count_nodes).sum::<u64>()
        }
        Expr::List(l) => l.elements.iter().map(count_nodes).sum(),
        Expr::Map(m) => m.entries.iter().map(entry_nodes).sum(),
        Expr::Struct(s) => s.entries.iter().map(entry_nodes).sum(),
        Expr::Comprehension(c) => {
            count_nodes(&c.iter_range)
                + count_nodes(&c.accu_init)
                + count_nodes(&c.loop_cond)
                + count_nodes(&c.loop_step)
                + count_nodes(&c.result)
        }
    };
    children + 1
}

fn entry_nodes(entry: &IdedEntryExpr) -> u64 {
    match &entry.expr {
        EntryExpr::MapEntry(me) => count_nodes(&me.key) + count_nodes(&me.value),
        EntryExpr::StructField(f) => count_nodes(&f.value),
    }
}

/// Calls whose result may be much larger than their inputs.
const GROWING_CALLS: [&str; 5] = ["_+_", "join", "split", "format", "@replace"];

fn wrap(e: &mut IdedExpr, func: &str, extra: Vec<IdedExpr>, next_id: &mut u64) {
    let inner = std::mem::take(e);
    let mut args = vec![inner];
    args.extend(extra);
    *e = IdedExpr {
        id: bump(next_id),
        expr: Expr::Call(CallExpr {
            func_name: func.to_owned(),
            target: None,
            args,
        }),
    };
}

fn bump(next_id: &mut u64) -> u64 {
    let id = *next_id;
    *next_id += 1;
    id
}

/// Map and struct literals hold the same entry kinds.
fn instrument_entries(entries: &mut [IdedEntryExpr], next_id: &mut u64) {
    for entry in entries {
        match &mut entry.expr {
            EntryExpr::MapEntry(me) => {
                instrument(&mut me.key, next_id);
                instrument(&mut me.value, next_id);
                charge_copy(&mut me.key, next_id);
                charge_copy(&mut me.value, next_id);
            }
            EntryExpr::StructField(f) => {
                instrument(&mut f.value, next_id);
                charge_copy(&mut f.value, next_id);
            }
        }
    }
}

/// Building a list or map literal copies its elements deeply: `[object.items]` in a loop would
/// copy a large list per iteration for nothing, so non-constant elements go through `@copy`.
fn charge_copy(e: &mut IdedExpr, next_id: &mut u64) {
    if !matches!(e.expr, Expr::Literal(_)) {
        wrap(e, "@copy", Vec::new(), next_id);
    }
}

/// Route the tree through the budget functions (see the module documentation).
fn instrument(e: &mut IdedExpr, next_id: &mut u64) {
    match &mut e.expr {
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) => {}
        Expr::Select(s) => instrument(&mut s.operand, next_id),
        Expr::List(l) => l.elements.iter_mut().for_each(|a| {
            instrument(a, next_id);
            charge_copy(a, next_id);
        }),
        Expr::Map(m) => instrument_entries(&mut m.entries, next_id),
        Expr::Struct(s) => instrument_entries(&mut s.entries, next_id),
        Expr::Comprehension(c) => {
            let weight = count_nodes(&c.loop_cond) + count_nodes(&c.loop_step) + 1;
            instrument(&mut c.iter_range, next_id);
            instrument(&mut c.accu_init, next_id);
            instrument(&mut c.loop_cond, next_id);
            instrument(&mut c.loop_step, next_id);
            instrument(&mut c.result, next_id);
            let weight = IdedExpr {
                id: bump(next_id),
                expr: Expr::Literal(LiteralValue::Int(CelInt::from(
                    i64::try_from(weight).unwrap_or(i64::MAX),
                ))),
            };
            wrap(&mut c.iter_range, "@budget", vec![weight], next_id);
        }
        Expr::Call(c) => {
            // Decided on the call as written, before its arguments are wrapped.
            let in_nested_literal =
                c.func_name == "@in" && c.args.get(1).is_some_and(holds_literal_collections);
            if let Some(t) = c.target.as_deref_mut() {
                instrument(t, next_id);
            }
            c.args.iter_mut().for_each(|a| instrument(a, next_id));
            reroute(c, in_nested_literal, next_id);
            if c.func_name == "replace" || c.func_name == "matches" {
                if let Some(target) = c.target.take() {
                    c.args.insert(0, *target);
                }
                c.func_name = format!("@{}", c.func_name);
            }
            // `@result + [x]` is how map/filter accumulate: charging it would be quadratic, and
            // the comprehension's range is already charged.
            let accumulates = c
                .args
                .iter()
                .any(|a| matches!(&a.expr, Expr::Ident(n) if n.starts_with('@')));
            if GROWING_CALLS.contains(&c.func_name.as_str()) && !accumulates {
                wrap(e, "@charge", Vec::new(), next_id);
            }
        }
    }
}

/// Send the calls the interpreter gets wrong for views of the request's JSON, or slowly, to
/// equivalents (see the module documentation).
fn reroute(c: &mut CallExpr, in_nested_literal: bool, next_id: &mut u64) {
    match c.func_name.as_str() {
        // CEL's own lists compare their literal lists and maps with CEL's own only, so a view on
        // the left of `x in [[...], {...}]` would never be found.
        "@in" if in_nested_literal => "@contains".clone_into(&mut c.func_name),
        // The interpreter builds its "no such overload" error for `!` before it looks at the
        // operand, on every evaluation; `x ? false : true` fails on a non-bool just the same.
        "!_" if c.args.len() == 1 && c.target.is_none() => {
            let literal = |b: bool, next_id: &mut u64| IdedExpr {
                id: bump(next_id),
                expr: Expr::Literal(LiteralValue::Boolean(CelBool::from(b))),
            };
            "_?_:_".clone_into(&mut c.func_name);
            c.args.push(literal(false, next_id));
            c.args.push(literal(true, next_id));
        }
        // A view equals a list or map the expression built only through `deep_equals`; with a
        // scalar literal on either side the interpreter's own `==` is right, and cheaper.
        "_==_" | "_!=_" if !c.args.iter().any(|a| matches!(a.expr, Expr::Literal(_))) => {
            c.func_name = if c.func_name == "_==_" { "@eq" } else { "@ne" }.to_owned();
        }
        _ => {}
    }
}

/// A list literal holding list or map literals.
fn holds_literal_collections(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::List(l) => l
            .elements
            .iter()
            .any(|e| matches!(e.expr, Expr::List(_) | Expr::Map(_))),
        _ => false,
    }
}

/// The variables of one request, shared by every expression evaluated for it. Compiled programs
/// read the request directly; the interpreter's context is built the first time one needs it.
pub struct Activation<'v> {
    request: &'v AdmissionRequest,
    inputs: Source<'v>,
    context: OnceCell<Result<Context<'v, 'v>, String>>,
}

/// Where the interpreter's `request` and `namespaceObject` come from.
#[derive(Clone, Copy)]
enum Source<'v> {
    Ready(&'v Inputs),
    Deferred(&'v OnceCell<Inputs>, &'v dyn Fn() -> Inputs),
}

/// Owned parts of the variables (`request`, `namespaceObject`) that the activation borrows.
pub struct Inputs {
    request: serde_json::Value,
    namespace: serde_json::Value,
}

impl Inputs {
    /// Gather `request` (without the objects) and the Namespace object (`null` when cluster-scoped
    /// or unknown).
    pub fn new(request: &AdmissionRequest, namespace: Option<serde_json::Value>) -> Self {
        let r = request;
        let json = serde_json::json!({
            "uid": r.uid,
            "kind": r.kind,
            "resource": r.resource,
            "subResource": r.sub_resource,
            "name": r.name,
            "namespace": r.namespace,
            "operation": r.operation.as_str(),
            "userInfo": r.user_info,
            "dryRun": r.dry_run,
            "options": r.options,
        });
        Self {
            request: json,
            namespace: namespace.unwrap_or(serde_json::Value::Null),
        }
    }
}

impl<'v> Activation<'v> {
    /// Bind `object`, `oldObject`, `request` and `namespaceObject`. Objects are borrowed, not
    /// copied. Kubernetes' nulls are kept: `oldObject` on CREATE and CONNECT, `object` on DELETE.
    pub fn new(request: &'v AdmissionRequest, inputs: &'v Inputs) -> Result<Self, String> {
        env()?;
        Ok(Self {
            request,
            inputs: Source::Ready(inputs),
            context: OnceCell::new(),
        })
    }

    /// As [`Activation::new`], with the inputs made by `make` only if the interpreter runs.
    pub fn deferred(
        request: &'v AdmissionRequest,
        inputs: &'v OnceCell<Inputs>,
        make: &'v dyn Fn() -> Inputs,
    ) -> Self {
        Self {
            request,
            inputs: Source::Deferred(inputs, make),
            context: OnceCell::new(),
        }
    }

    fn context(&self) -> Result<&Context<'v, 'v>, String> {
        self.context
            .get_or_init(|| {
                let inputs: &'v Inputs = match self.inputs {
                    Source::Ready(inputs) => inputs,
                    Source::Deferred(cell, make) => cell.get_or_init(make),
                };
                let request = self.request;
                let mut context = Context::with_env(Arc::clone(env()?));
                let null = || -> Box<dyn Val + 'v> { Box::new(CelNull) };
                context.add_variable_as_val(
                    "object",
                    request.object.as_ref().map_or_else(null, json::value),
                );
                context.add_variable_as_val(
                    "oldObject",
                    request.old_object.as_ref().map_or_else(null, json::value),
                );
                context.add_variable_as_val("request", json::value(&inputs.request));
                context.add_variable_as_val("namespaceObject", json::value(&inputs.namespace));
                Ok(context)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}
