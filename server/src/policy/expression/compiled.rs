//! Guardrail conditions compiled to a tree the engine evaluates over the request as it was parsed.
//!
//! The `cel` interpreter resolves every function by name, boxes every value and keeps a map of
//! variables per comprehension step: ~20 µs for one library condition on a Helm-sized Deployment.
//! Most guardrails use a small part of CEL (field selection, optional chains, comparisons,
//! boolean logic, `in`, `size`, a few string functions, the comprehension macros), and that part
//! is compiled here once, at load, to [`Program`]: variables become slots, functions become
//! variants, values borrow the request's JSON and are never boxed.
//!
//! The interpreter stays the meaning. A [`Program`] answers only when its answer is certain to be
//! the interpreter's: anything unusual — an error of any kind (a missing field, a wrong type, an
//! exhausted budget), numbers of different kinds compared, a part of `request` it does not
//! model — makes it give up ([`Bail`]), and the caller evaluates the expression with the
//! interpreter, which gives the same answer or the precise error. An expression using anything
//! outside the subset is not compiled at all. `compiled::tests` checks the two agree on every
//! library condition and every review fixture, and on expressions written to probe the edges.

use std::rc::Rc;

use cel::common::ast::{CallExpr, EntryExpr, Expr, LiteralValue};
use cel::IdedExpr;
use serde_json::{Map, Value as J};

use crate::admission::{AdmissionRequest, GroupVersionKind, GroupVersionResource, UserInfo};

use super::COST_BUDGET;

/// What a compiled evaluation may spend before it hands over: a quarter of the interpreter's
/// budget, as the compiled program charges only loops, comparisons, matches and literals, the
/// interpreter a little more, so near the limit the interpreter decides.
const BUDGET: u64 = COST_BUDGET / 4;

/// Comprehension variables live in slots; nesting is at most
/// [`super::MAX_COMPREHENSION_NESTING`], each level using two (the item and the accumulator).
const SLOTS: usize = 2 * super::MAX_COMPREHENSION_NESTING;

/// A condition compiled from its parsed (not yet instrumented) tree.
#[derive(Debug)]
pub(super) struct Program {
    root: Node,
}

/// The answer is not certain here: ask the interpreter.
#[derive(Debug)]
pub(super) struct Bail;

type Out<'a> = Result<V<'a>, Bail>;

#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(Box<str>),
    Object,
    OldObject,
    Request,
    Slot(usize),
    Select(Box<Node>, Box<str>),
    Has(Box<Node>, Box<str>),
    /// `x.?a.?b`: an optional (allocated) where nothing fused it with `orValue`.
    OptSelect(Box<Node>, Box<str>),
    /// `x.?a.?b.orValue(d)`, walked without building optionals.
    OrValue {
        base: Box<Node>,
        path: Vec<Box<str>>,
        default: Box<Node>,
    },
    /// `.orValue(d)` on any other optional.
    OptOrValue(Box<Node>, Box<Node>),
    Index(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    NotStrictlyFalse(Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Eq(Box<Node>, Box<Node>),
    Ne(Box<Node>, Box<Node>),
    Cmp(Box<Node>, Box<Node>, fn(std::cmp::Ordering) -> bool),
    In(Box<Node>, Box<Node>),
    AddInt(Box<Node>, Box<Node>),
    Size(Box<Node>),
    StartsWith(Box<Node>, Box<Node>),
    EndsWith(Box<Node>, Box<Node>),
    Contains(Box<Node>, Box<Node>),
    Matches(Box<Node>, Box<regex::Regex>),
    List(Vec<Node>),
    /// A list literal of constants (`[]`, `['CHOWN', 'KILL']`), built once, viewed like JSON.
    Constants(Vec<J>),
    Map(Vec<(Box<str>, Node)>),
    /// `{}`.
    EmptyMap,
    /// `@result + [e]` in a map or filter step: appended in place.
    Append(usize, Box<Node>),
    Loop(Box<Loop>),
}

#[derive(Debug)]
struct Loop {
    range: Node,
    item: usize,
    accu: usize,
    init: Node,
    condition: Node,
    step: Node,
    result: Node,
    /// What one iteration costs, as the interpreter's budget counts it.
    weight: u64,
}

/// A value during evaluation: the request's JSON borrowed, or what the expression built.
#[derive(Debug, Clone)]
enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(&'a str),
    JList(&'a [J]),
    JMap(&'a Map<String, J>),
    List(Rc<Vec<V<'a>>>),
    Map(Rc<Vec<(&'a str, V<'a>)>>),
    Strings(&'a [String]),
    Opt(Option<Rc<V<'a>>>),
    Request(Part<'a>),
    /// The interpreter fails here for certain (a missing key, a field of a non-map, an index out
    /// of range). Kept as a value because `||`, `&&` and the macros absorb errors as CEL does;
    /// one that reaches the top hands over, and the interpreter says what it was.
    Error,
}

/// The parts of `request` modelled without serialising it.
#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    Root(&'a AdmissionRequest),
    Kind(&'a GroupVersionKind),
    Resource(&'a GroupVersionResource),
    User(&'a UserInfo),
}

impl Program {
    /// Compile `e`, or `None` when it uses anything outside the subset.
    pub(super) fn compile(e: &IdedExpr) -> Option<Self> {
        let root = Compiler {
            scope: Vec::new(),
            depth: 0,
        }
        .node(e)?;
        Some(Self { root })
    }

    /// The condition's value for `request`, when it is a certain boolean.
    pub(super) fn eval_bool(&self, request: &AdmissionRequest) -> Option<bool> {
        let mut cx = Cx::new(request);
        match cx.eval(&self.root) {
            Ok(V::Bool(b)) => Some(b),
            _ => None,
        }
    }

    /// The expression's value for `request`, when it is a certain string.
    pub(super) fn eval_string(&self, request: &AdmissionRequest) -> Option<String> {
        let mut cx = Cx::new(request);
        match cx.eval(&self.root) {
            Ok(V::Str(s)) => Some(s.to_owned()),
            _ => None,
        }
    }
}

struct Compiler {
    /// Comprehension variables in scope, innermost last, with their slots.
    scope: Vec<(String, usize)>,
    /// Comprehensions around the node being compiled: the next one takes this level's slots.
    depth: usize,
}

fn boxed(n: Node) -> Box<Node> {
    Box::new(n)
}

impl Compiler {
    fn node(&mut self, e: &IdedExpr) -> Option<Node> {
        Some(match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Null => Node::Null,
                LiteralValue::Boolean(b) => Node::Bool(*b.inner()),
                LiteralValue::Int(i) => Node::Int(*i.inner()),
                LiteralValue::UInt(u) => Node::Uint(*u.inner()),
                LiteralValue::Double(d) => Node::Double(*d.inner()),
                LiteralValue::String(s) => Node::Str(s.inner().into()),
                LiteralValue::Bytes(_) => return None,
            },
            Expr::Ident(name) => {
                if let Some((_, slot)) = self.scope.iter().rev().find(|(n, _)| n == name) {
                    Node::Slot(*slot)
                } else {
                    match name.as_str() {
                        "object" => Node::Object,
                        "oldObject" => Node::OldObject,
                        "request" => Node::Request,
                        _ => return None,
                    }
                }
            }
            Expr::Select(s) => {
                let operand = boxed(self.node(&s.operand)?);
                let field = s.field.as_str().into();
                if s.test {
                    Node::Has(operand, field)
                } else {
                    Node::Select(operand, field)
                }
            }
            Expr::List(l) => {
                if !l.optional_indices.is_empty() {
                    return None;
                }
                let items: Vec<Node> = l
                    .elements
                    .iter()
                    .map(|e| self.node(e))
                    .collect::<Option<_>>()?;
                match items.iter().map(constant).collect::<Option<Vec<J>>>() {
                    Some(constants) => Node::Constants(constants),
                    None => Node::List(items),
                }
            }
            Expr::Map(m) if m.entries.is_empty() => Node::EmptyMap,
            Expr::Map(m) => Node::Map(
                m.entries
                    .iter()
                    .map(|entry| match &entry.expr {
                        EntryExpr::MapEntry(me) if !me.optional => match &me.key.expr {
                            Expr::Literal(LiteralValue::String(k)) => {
                                Some((k.inner().into(), self.node(&me.value)?))
                            }
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
                    .filter(|entries| distinct_keys(entries))?,
            ),
            Expr::Comprehension(c) => {
                if c.iter_var2.is_some() {
                    return None;
                }
                let level = self.depth;
                if level >= SLOTS / 2 {
                    return None;
                }
                let (item, accu) = (2 * level, 2 * level + 1);
                let range = self.node(&c.iter_range)?;
                let init = self.node(&c.accu_init)?;
                let before = self.scope.len();
                self.depth += 1;
                self.scope.push((c.iter_var.clone(), item));
                self.scope.push((c.accu_var.clone(), accu));
                let body = (|| {
                    let condition = self.node(&c.loop_cond)?;
                    let step = self.step(&c.loop_step, accu)?;
                    Some((condition, step))
                })();
                // The result sees the accumulator, not the item.
                self.scope.truncate(before);
                self.scope.push((c.accu_var.clone(), accu));
                let result = body.and_then(|body| Some((body, self.node(&c.result)?)));
                self.scope.truncate(before);
                self.depth -= 1;
                let ((condition, step), result) = result?;
                let weight =
                    super::count_nodes(&c.loop_cond) + super::count_nodes(&c.loop_step) + 1;
                Node::Loop(Box::new(Loop {
                    range,
                    item,
                    accu,
                    init,
                    condition,
                    step,
                    result,
                    weight,
                }))
            }
            Expr::Call(c) => self.call(c)?,
            Expr::Unspecified | Expr::Struct(_) => return None,
        })
    }

    /// A loop step; `@result + [e]` (map, filter) appends in place instead of copying the list.
    fn step(&mut self, e: &IdedExpr, accu: usize) -> Option<Node> {
        if let Expr::Call(c) = &e.expr {
            let appends = |c: &CallExpr| {
                c.func_name == "_+_"
                    && c.target.is_none()
                    && matches!(&c.args[..], [a, b]
                        if matches!(&a.expr, Expr::Ident(n) if self.slot(n) == Some(accu))
                        && matches!(&b.expr, Expr::List(l) if l.elements.len() == 1 && l.optional_indices.is_empty()))
            };
            if appends(c) {
                let Expr::List(l) = &c.args[1].expr else {
                    return None;
                };
                return Some(Node::Append(accu, boxed(self.node(&l.elements[0])?)));
            }
            // filter: `p ? @result + [x] : @result`
            if c.func_name == "_?_:_" && c.target.is_none() && c.args.len() == 3 {
                if let Expr::Call(inner) = &c.args[1].expr {
                    if appends(inner) {
                        return Some(Node::Cond(
                            boxed(self.node(&c.args[0])?),
                            boxed(self.step(&c.args[1], accu)?),
                            boxed(self.node(&c.args[2])?),
                        ));
                    }
                }
            }
        }
        self.node(e)
    }

    fn slot(&self, name: &str) -> Option<usize> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
    }

    fn call(&mut self, c: &CallExpr) -> Option<Node> {
        let name = c.func_name.as_str();
        if let Some(target) = c.target.as_deref() {
            // `x.?a.?b.orValue(d)`: walk the chain without optionals.
            if name == "orValue" && c.args.len() == 1 {
                let default = boxed(self.node(&c.args[0])?);
                let mut path = Vec::new();
                let mut at = target;
                while let Some((operand, field)) = opt_select(at) {
                    path.push(field.into());
                    at = operand;
                }
                if path.is_empty() {
                    return Some(Node::OptOrValue(boxed(self.node(target)?), default));
                }
                path.reverse();
                return Some(Node::OrValue {
                    base: boxed(self.node(at)?),
                    path,
                    default,
                });
            }
            let this = boxed(self.node(target)?);
            let mut arg = |i: usize| self.node(&c.args[i]).map(boxed);
            return Some(match (name, c.args.len()) {
                ("size", 0) => Node::Size(this),
                ("startsWith", 1) => Node::StartsWith(this, arg(0)?),
                ("endsWith", 1) => Node::EndsWith(this, arg(0)?),
                ("contains", 1) => Node::Contains(this, arg(0)?),
                ("matches", 1) => match &c.args[0].expr {
                    Expr::Literal(LiteralValue::String(p)) => {
                        // The interpreter's limits; a pattern it refuses is left to it.
                        let re = regex::RegexBuilder::new(p.inner())
                            .size_limit(super::functions::REGEX_SIZE_LIMIT)
                            .build()
                            .ok()?;
                        Node::Matches(this, Box::new(re))
                    }
                    _ => return None,
                },
                _ => return None,
            });
        }
        let mut arg = |i: usize| self.node(&c.args[i]).map(boxed);
        Some(match (name, c.args.len()) {
            ("_&&_", 2) => Node::And(arg(0)?, arg(1)?),
            ("_||_", 2) => Node::Or(arg(0)?, arg(1)?),
            ("!_", 1) => Node::Not(arg(0)?),
            ("@not_strictly_false", 1) => Node::NotStrictlyFalse(arg(0)?),
            ("_?_:_", 3) => Node::Cond(arg(0)?, arg(1)?, arg(2)?),
            ("_==_", 2) => Node::Eq(arg(0)?, arg(1)?),
            ("_!=_", 2) => Node::Ne(arg(0)?, arg(1)?),
            ("_<_", 2) => Node::Cmp(arg(0)?, arg(1)?, |o| o.is_lt()),
            ("_<=_", 2) => Node::Cmp(arg(0)?, arg(1)?, |o| o.is_le()),
            ("_>_", 2) => Node::Cmp(arg(0)?, arg(1)?, |o| o.is_gt()),
            ("_>=_", 2) => Node::Cmp(arg(0)?, arg(1)?, |o| o.is_ge()),
            ("@in", 2) => Node::In(arg(0)?, arg(1)?),
            // exists_one counts with `+ 1`; other sums are left to the interpreter.
            ("_+_", 2) if matches!(c.args[1].expr, Expr::Literal(LiteralValue::Int(_))) => {
                Node::AddInt(arg(0)?, arg(1)?)
            }
            ("_[_]", 2) => Node::Index(arg(0)?, arg(1)?),
            ("_?._", 2) => match &c.args[1].expr {
                Expr::Literal(LiteralValue::String(f)) => {
                    Node::OptSelect(arg(0)?, f.inner().into())
                }
                _ => return None,
            },
            ("size", 1) => Node::Size(arg(0)?),
            _ => return None,
        })
    }
}

/// A literal as the JSON whose view ([`json`]) is the same value. Unsigned literals are not: a
/// view makes `int` of every integer that fits.
fn constant(n: &Node) -> Option<J> {
    Some(match n {
        Node::Null => J::Null,
        Node::Bool(b) => J::Bool(*b),
        Node::Int(i) => J::from(*i),
        Node::Double(d) if d.fract() != 0.0 => J::from(*d),
        Node::Str(s) => J::String(s.to_string()),
        _ => return None,
    })
}

/// The view of `{}`.
static EMPTY_MAP: std::sync::LazyLock<Map<String, J>> = std::sync::LazyLock::new(Map::new);

/// `operand.?field` as the parser writes it.
fn opt_select(e: &IdedExpr) -> Option<(&IdedExpr, &str)> {
    match &e.expr {
        Expr::Call(c) if c.func_name == "_?._" && c.target.is_none() && c.args.len() == 2 => {
            match &c.args[1].expr {
                Expr::Literal(LiteralValue::String(f)) => Some((&c.args[0], f.inner())),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A map literal repeating a key is an error for the interpreter.
fn distinct_keys(entries: &[(Box<str>, Node)]) -> bool {
    entries
        .iter()
        .enumerate()
        .all(|(i, (k, _))| entries[..i].iter().all(|(o, _)| o != k))
}

/// One evaluation: the variables, the slots and the budget left.
struct Cx<'a> {
    request: &'a AdmissionRequest,
    slots: [V<'a>; SLOTS],
    budget: u64,
}

fn json(v: &J) -> V<'_> {
    match v {
        J::Null => V::Null,
        J::Bool(b) => V::Bool(*b),
        // As the interpreter's views: int when it fits, then uint, then double.
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => V::Int(i),
            (None, Some(u)) => V::Uint(u),
            _ => V::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => V::Str(s),
        J::Array(a) => V::JList(a),
        J::Object(m) => V::JMap(m),
    }
}

impl From<bool> for V<'_> {
    fn from(b: bool) -> Self {
        V::Bool(b)
    }
}

impl<'a> V<'a> {
    /// What `.?field` selects from: an optional's value (`None` for `optional.none()`), or the
    /// value itself. `request`'s parts are left to the interpreter.
    fn optional_target(self) -> Result<Option<V<'a>>, Bail> {
        match self {
            V::Opt(v) => Ok(v.map(|v| (*v).clone())),
            V::Request(_) => Err(Bail),
            v => Ok(Some(v)),
        }
    }

    /// The value at `field` of a map; `None` when it is not there; `Bail` for a non-map.
    fn field(&self, field: &str) -> Result<Option<V<'a>>, Bail> {
        match self {
            V::JMap(m) => Ok(m.get(field).map(json)),
            V::Map(m) => Ok(m.iter().find(|(k, _)| *k == field).map(|(_, v)| v.clone())),
            V::Request(part) => part.field(field).map(Some),
            _ => Err(Bail),
        }
    }

    fn bool(&self) -> Result<bool, Bail> {
        match self {
            V::Bool(b) => Ok(*b),
            _ => Err(Bail),
        }
    }

    fn str(&self) -> Result<&'a str, Bail> {
        match self {
            V::Str(s) => Ok(s),
            _ => Err(Bail),
        }
    }

    /// The elements of a list, or the keys of a map, as a comprehension walks them.
    fn items(&self) -> Result<Items<'_, 'a>, Bail> {
        Ok(match self {
            V::JList(l) => Items::Json(l.iter()),
            V::List(l) => Items::Built(l.iter()),
            V::Strings(s) => Items::Strings(s.iter()),
            V::JMap(m) => Items::JsonKeys(m.keys()),
            V::Map(m) => Items::Keys(m.iter()),
            _ => return Err(Bail),
        })
    }

    fn len(&self) -> Result<usize, Bail> {
        Ok(match self {
            V::JList(l) => l.len(),
            V::List(l) => l.len(),
            V::Strings(s) => s.len(),
            V::JMap(m) => m.len(),
            V::Map(m) => m.len(),
            _ => return Err(Bail),
        })
    }
}

enum Items<'i, 'a> {
    Json(std::slice::Iter<'a, J>),
    Built(std::slice::Iter<'i, V<'a>>),
    Strings(std::slice::Iter<'a, String>),
    JsonKeys(serde_json::map::Keys<'a>),
    Keys(std::slice::Iter<'i, (&'a str, V<'a>)>),
}

impl<'a> Iterator for Items<'_, 'a> {
    type Item = V<'a>;

    fn next(&mut self) -> Option<V<'a>> {
        match self {
            Items::Json(i) => i.next().map(json),
            Items::Built(i) => i.next().cloned(),
            Items::Strings(i) => i.next().map(|s| V::Str(s)),
            Items::JsonKeys(i) => i.next().map(|k| V::Str(k)),
            Items::Keys(i) => i.next().map(|(k, _)| V::Str(k)),
        }
    }
}

impl<'a> Part<'a> {
    /// A field of `request` as `Inputs` spells it; anything not modelled is left to the
    /// interpreter.
    fn field(self, field: &str) -> Result<V<'a>, Bail> {
        Ok(match (self, field) {
            (Part::Root(r), "uid") => V::Str(&r.uid),
            (Part::Root(r), "kind") => V::Request(Part::Kind(&r.kind)),
            (Part::Root(r), "resource") => V::Request(Part::Resource(&r.resource)),
            (Part::Root(r), "subResource") => V::Str(&r.sub_resource),
            (Part::Root(r), "name") => V::Str(&r.name),
            (Part::Root(r), "namespace") => V::Str(&r.namespace),
            (Part::Root(r), "operation") => V::Str(r.operation.as_str()),
            (Part::Root(r), "userInfo") => V::Request(Part::User(&r.user_info)),
            (Part::Root(r), "dryRun") => V::Bool(r.dry_run),
            (Part::Kind(k), "group") => V::Str(&k.group),
            (Part::Kind(k), "version") => V::Str(&k.version),
            (Part::Kind(k), "kind") => V::Str(&k.kind),
            (Part::Resource(k), "group") => V::Str(&k.group),
            (Part::Resource(k), "version") => V::Str(&k.version),
            (Part::Resource(k), "resource") => V::Str(&k.resource),
            (Part::User(u), "username") => V::Str(&u.username),
            (Part::User(u), "uid") => V::Str(&u.uid),
            (Part::User(u), "groups") => V::Strings(&u.groups),
            _ => return Err(Bail),
        })
    }
}

/// CEL equality where it is certain: same kinds, lists and maps element by element, and `false`
/// across kinds. Numbers of different kinds and anything opaque are left to the interpreter.
fn equal(a: &V<'_>, b: &V<'_>) -> Result<bool, Bail> {
    use V::*;
    Ok(match (a, b) {
        (Null, Null) => true,
        (Bool(x), Bool(y)) => x == y,
        (Int(x), Int(y)) => x == y,
        (Uint(x), Uint(y)) => x == y,
        (Double(x), Double(y)) => x == y,
        (Str(x), Str(y)) => x == y,
        (Int(_) | Uint(_) | Double(_), Int(_) | Uint(_) | Double(_)) => return Err(Bail),
        (Opt(_) | Request(_), _) | (_, Opt(_) | Request(_)) => return Err(Bail),
        (JList(_) | List(_) | Strings(_), JList(_) | List(_) | Strings(_)) => {
            if a.len()? != b.len()? {
                return Ok(false);
            }
            for (x, y) in a.items()?.zip(b.items()?) {
                if !equal(&x, &y)? {
                    return Ok(false);
                }
            }
            true
        }
        (JMap(_) | Map(_), JMap(_) | Map(_)) => {
            if a.len()? != b.len()? {
                return Ok(false);
            }
            for key in a.items()? {
                let key = key.str()?;
                let (Some(x), Some(y)) = (a.field(key)?, b.field(key)?) else {
                    return Ok(false);
                };
                if !equal(&x, &y)? {
                    return Ok(false);
                }
            }
            true
        }
        _ => false,
    })
}

fn compare(a: &V<'_>, b: &V<'_>) -> Result<std::cmp::Ordering, Bail> {
    use V::*;
    match (a, b) {
        (Int(x), Int(y)) => Ok(x.cmp(y)),
        (Uint(x), Uint(y)) => Ok(x.cmp(y)),
        (Double(x), Double(y)) => x.partial_cmp(y).ok_or(Bail),
        (Str(x), Str(y)) => Ok(x.cmp(y)),
        _ => Err(Bail),
    }
}

impl<'a> Cx<'a> {
    fn new(request: &'a AdmissionRequest) -> Self {
        Self {
            request,
            slots: std::array::from_fn(|_| V::Null),
            budget: BUDGET,
        }
    }

    /// Spend `units`; out of budget, the interpreter decides (and fails as it must).
    fn charge(&mut self, units: u64) -> Result<(), Bail> {
        self.budget = self.budget.checked_sub(units).ok_or(Bail)?;
        Ok(())
    }

    /// Charge a comparison as the interpreter would at most: one unit per element compared.
    fn compared(&mut self, a: V<'a>, b: V<'a>) -> Result<bool, Bail> {
        let size = |v: &V<'_>| v.len().unwrap_or(1) as u64;
        self.charge(1 + size(&a).min(size(&b)))?;
        equal(&a, &b)
    }

    fn eval(&mut self, n: &'a Node) -> Out<'a> {
        // The operand's value, or the error it certainly is, passed on as the interpreter would.
        macro_rules! value {
            ($node:expr) => {{
                let v = self.eval($node)?;
                if let V::Error = v {
                    return Ok(V::Error);
                }
                v
            }};
        }
        Ok(match n {
            Node::Null => V::Null,
            Node::Bool(b) => V::Bool(*b),
            Node::Int(i) => V::Int(*i),
            Node::Uint(u) => V::Uint(*u),
            Node::Double(d) => V::Double(*d),
            Node::Str(s) => V::Str(s),
            Node::Object => self.request.object.as_ref().map_or(V::Null, json),
            Node::OldObject => self.request.old_object.as_ref().map_or(V::Null, json),
            Node::Request => V::Request(Part::Root(self.request)),
            Node::Slot(s) => self.slots[*s].clone(),
            Node::Select(operand, field) => match value!(operand) {
                V::Request(part) => part.field(field)?,
                V::Opt(_) => return Err(Bail),
                v => v.field(field).ok().flatten().unwrap_or(V::Error),
            },
            Node::Has(operand, field) => match self.eval(operand)? {
                v @ (V::JMap(_) | V::Map(_)) => v.field(field)?.is_some(),
                _ => return Err(Bail),
            }
            .into(),
            Node::OptSelect(operand, field) => match value!(operand).optional_target()? {
                None => V::Opt(None),
                Some(target) => V::Opt(target.field(field).ok().flatten().map(Rc::new)),
            },
            Node::OrValue {
                base,
                path,
                default,
            } => {
                let Some(mut at) = value!(base).optional_target()? else {
                    return self.eval(default);
                };
                for field in path {
                    if matches!(at, V::Request(_) | V::Opt(_) | V::Error) {
                        return Err(Bail);
                    }
                    // A missing key, or a target that is not a map, is `optional.none()`.
                    match at.field(field) {
                        Ok(Some(v)) => at = v,
                        _ => return self.eval(default),
                    }
                }
                at
            }
            Node::OptOrValue(optional, default) => match value!(optional) {
                V::Opt(Some(v)) => (*v).clone(),
                V::Opt(None) => self.eval(default)?,
                _ => return Err(Bail),
            },
            Node::Index(operand, index) => {
                let target = value!(operand);
                let index = value!(index);
                let at = |i: i64, len: usize| usize::try_from(i).ok().filter(|i| *i < len);
                match (target, index) {
                    (V::JList(l), V::Int(i)) => at(i, l.len()).map_or(V::Error, |i| json(&l[i])),
                    (V::List(l), V::Int(i)) => at(i, l.len()).map_or(V::Error, |i| l[i].clone()),
                    (m @ (V::JMap(_) | V::Map(_)), V::Str(k)) => m.field(k)?.unwrap_or(V::Error),
                    _ => return Err(Bail),
                }
            }
            // CEL's commutative `&&` and `||`: an error on one side gives way to a deciding
            // value on the other.
            Node::And(a, b) => match self.eval(a)? {
                V::Bool(false) => V::Bool(false),
                V::Bool(true) => match self.eval(b)? {
                    v @ (V::Bool(_) | V::Error) => v,
                    _ => return Err(Bail),
                },
                V::Error => match self.eval(b)? {
                    V::Bool(false) => V::Bool(false),
                    V::Bool(true) | V::Error => V::Error,
                    _ => return Err(Bail),
                },
                _ => return Err(Bail),
            },
            Node::Or(a, b) => match self.eval(a)? {
                V::Bool(true) => V::Bool(true),
                V::Bool(false) => match self.eval(b)? {
                    v @ (V::Bool(_) | V::Error) => v,
                    _ => return Err(Bail),
                },
                V::Error => match self.eval(b)? {
                    V::Bool(true) => V::Bool(true),
                    V::Bool(false) | V::Error => V::Error,
                    _ => return Err(Bail),
                },
                _ => return Err(Bail),
            },
            Node::Not(a) => V::Bool(!value!(a).bool()?),
            Node::NotStrictlyFalse(a) => match self.eval(a)? {
                V::Bool(b) => V::Bool(b),
                V::Error => V::Bool(true),
                _ => return Err(Bail),
            },
            Node::Cond(c, t, e) => {
                if value!(c).bool()? {
                    self.eval(t)?
                } else {
                    self.eval(e)?
                }
            }
            Node::Eq(a, b) => {
                let (a, b) = (value!(a), value!(b));
                V::Bool(self.compared(a, b)?)
            }
            Node::Ne(a, b) => {
                let (a, b) = (value!(a), value!(b));
                V::Bool(!self.compared(a, b)?)
            }
            Node::Cmp(a, b, holds) => {
                let (a, b) = (value!(a), value!(b));
                V::Bool(holds(compare(&a, &b)?))
            }
            Node::In(a, b) => {
                let needle = value!(a);
                let haystack = value!(b);
                match haystack {
                    V::JMap(_) | V::Map(_) => haystack.field(needle.str()?)?.is_some(),
                    _ => {
                        let mut found = false;
                        for item in haystack.items()? {
                            if self.compared(needle.clone(), item)? {
                                found = true;
                                break;
                            }
                        }
                        found
                    }
                }
                .into()
            }
            Node::AddInt(a, b) => match (value!(a), value!(b)) {
                (V::Int(x), V::Int(y)) => V::Int(x.checked_add(y).ok_or(Bail)?),
                _ => return Err(Bail),
            },
            Node::Size(a) => {
                let v = value!(a);
                let n = match v {
                    V::Str(s) => s.chars().count(),
                    _ => v.len()?,
                };
                V::Int(i64::try_from(n).map_err(|_| Bail)?)
            }
            Node::StartsWith(a, b) => {
                let (a, b) = (value!(a), value!(b));
                V::Bool(a.str()?.starts_with(b.str()?))
            }
            Node::EndsWith(a, b) => {
                let (a, b) = (value!(a), value!(b));
                V::Bool(a.str()?.ends_with(b.str()?))
            }
            Node::Contains(a, b) => {
                let (a, b) = (value!(a), value!(b));
                V::Bool(a.str()?.contains(b.str()?))
            }
            Node::Matches(a, re) => {
                let text = value!(a).str()?;
                self.charge(text.len() as u64 + 1)?;
                V::Bool(re.is_match(text))
            }
            Node::List(items) => {
                let mut list = Vec::with_capacity(items.len());
                for i in items {
                    let v = value!(i);
                    self.charge(1 + if let V::Str(s) = v { s.len() as u64 } else { 0 })?;
                    list.push(v);
                }
                V::List(Rc::new(list))
            }
            Node::Constants(items) => {
                self.charge(1 + items.len() as u64)?;
                V::JList(items)
            }
            Node::EmptyMap => V::JMap(&EMPTY_MAP),
            Node::Map(entries) => {
                let mut map = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    map.push((&**k, value!(v)));
                }
                V::Map(Rc::new(map))
            }
            Node::Append(accu, element) => {
                let item = value!(element);
                let mut list = match std::mem::replace(&mut self.slots[*accu], V::Null) {
                    V::List(l) => l,
                    // map and filter start from the literal `[]`.
                    V::JList(l) => Rc::new(l.iter().map(json).collect()),
                    V::Error => return Ok(V::Error),
                    _ => return Err(Bail),
                };
                Rc::make_mut(&mut list).push(item);
                V::List(list)
            }
            Node::Loop(l) => self.run(l)?,
        })
    }

    fn run(&mut self, l: &'a Loop) -> Out<'a> {
        let range = self.eval(&l.range)?;
        if let V::Error = range {
            return Ok(V::Error);
        }
        // The interpreter's `@budget`: (items + 1) × the body's weight, before the loop runs.
        self.charge((range.len()? as u64 + 1).saturating_mul(l.weight))?;
        let init = self.eval(&l.init)?;
        let saved = std::mem::replace(&mut self.slots[l.accu], init);
        let saved_item = std::mem::replace(&mut self.slots[l.item], V::Null);
        let outcome = (|| {
            for item in range.items()? {
                if !self.eval(&l.condition)?.bool()? {
                    break;
                }
                self.slots[l.item] = item;
                let next = self.eval(&l.step)?;
                self.slots[l.accu] = next;
            }
            self.eval(&l.result)
        })();
        self.slots[l.accu] = saved;
        self.slots[l.item] = saved_item;
        outcome
    }
}

#[cfg(test)]
mod tests;
