//! The request's JSON as CEL values, without building or copying them.
//!
//! `object` and `oldObject` are borrowed as they were parsed: a container is a view of its JSON
//! ([`JsonList`], [`JsonMap`]) that makes the value of an element or field only when an expression
//! reaches it, and copying a view (into a list literal like `[object.spec]`, or as a
//! comprehension's variable) copies one pointer, not the tree under it. Scalars are the built-in
//! CEL values, borrowing their strings.
//!
//! CEL's own lists and maps only ever equal their own kind, so a view compared with a list or map
//! built by the expression would be unequal whatever they hold. Equality goes through
//! [`deep_equals`] instead: the views use it, and the compiler routes `==` and `!=` through it
//! (`@eq`, `@ne`) unless one side is a scalar literal, and `in` over a list literal that holds
//! lists or maps (`@contains`).

use std::fmt;
use std::sync::{Arc, OnceLock};

use cel::common::traits::{self, Adder, Container, Indexer, Iterable, Sizer, Zeroer};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelNull, CelString, CelUInt, Kind, Type, LIST_TYPE,
    MAP_TYPE,
};
use cel::common::value::{CowVal, Val};
use cel::ExecutionError;
use serde_json::Value as J;

/// A JSON value as a CEL value. Integers that fit are `int`, as Kubernetes does for `integer`
/// fields; larger ones `uint`, fractions `double`.
pub(super) fn value<'v>(v: &'v J) -> Box<dyn Val + 'v> {
    match v {
        J::Null => Box::new(CelNull),
        J::Bool(b) => Box::new(CelBool::from(*b)),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        J::String(s) => Box::new(CelString::from(s.as_str())),
        J::Array(items) => Box::new(JsonList::new(items)),
        J::Object(map) => Box::new(JsonMap::new(map)),
    }
}

/// CEL equality that holds across list and map representations: two lists with equal elements in
/// order, two maps with the same keys and equal values, or what the values' own `equals` says.
pub(super) fn deep_equals(a: &dyn Val, b: &dyn Val) -> bool {
    match (a.get_type().kind(), b.get_type().kind()) {
        (Kind::List, Kind::List) => {
            let (Some(x), Some(y)) = (a.as_iterable(), b.as_iterable()) else {
                return false;
            };
            if size(a) != size(b) {
                return false;
            }
            let (mut x, mut y) = (x.iter(), y.iter());
            loop {
                match (x.next(), y.next()) {
                    (Some(i), Some(j)) if deep_equals(i, j) => {}
                    (None, None) => return true,
                    _ => return false,
                }
            }
        }
        (Kind::Map, Kind::Map) => {
            let (Some(keys), Some(mine), Some(theirs)) =
                (a.as_iterable(), a.as_indexer(), b.as_indexer())
            else {
                return false;
            };
            if size(a) != size(b) {
                return false;
            }
            let mut keys = keys.iter();
            while let Some(key) = keys.next() {
                let equal = match (mine.get(key), theirs.get(key)) {
                    (Ok(x), Ok(y)) => deep_equals(x.as_ref(), y.as_ref()),
                    _ => false,
                };
                if !equal {
                    return false;
                }
            }
            true
        }
        // A list or map equals nothing else (and asking a view would come straight back here).
        (Kind::List | Kind::Map, _) | (_, Kind::List | Kind::Map) => false,
        _ => a.equals(b) || b.equals(a),
    }
}

fn size(v: &dyn Val) -> Option<i64> {
    v.as_sizer().map(|s| *s.size().inner())
}

/// The capabilities both views share: `in`, `[i]` and `.f`, iteration, `size()`, zero value, and
/// equality through [`deep_equals`].
macro_rules! container_capabilities {
    () => {
        fn as_container(&self) -> Option<&dyn Container> {
            Some(self)
        }

        fn as_indexer<'b, 'w>(&'b self) -> Option<&'b (dyn Indexer + 'w)>
        where
            Self: 'w,
        {
            Some(self)
        }

        fn into_indexer<'w>(self: Box<Self>) -> Option<Box<dyn Indexer + 'w>>
        where
            Self: 'w,
        {
            Some(self)
        }

        fn as_iterable<'b, 'w>(&'b self) -> Option<&'b (dyn Iterable + 'w)>
        where
            Self: 'w,
        {
            Some(self)
        }

        fn as_sizer(&self) -> Option<&dyn Sizer> {
            Some(self)
        }

        fn as_zeroer(&self) -> Option<&dyn Zeroer> {
            Some(self)
        }

        fn equals(&self, other: &dyn Val) -> bool {
            deep_equals(self, other)
        }
    };
}

/// Iterates over values held in a slice of boxes.
struct Boxes<'b, 'v>(std::slice::Iter<'b, Box<dyn Val + 'v>>);

impl<'b, 'v: 'w, 'w> traits::Iterator<'b, 'w> for Boxes<'b, 'v> {
    fn next(&mut self) -> Option<&'b (dyn Val + 'w)> {
        self.0.next().map(|v| v.as_ref() as &(dyn Val + 'w))
    }
}

/// A JSON array, viewed.
pub(super) struct JsonList<'v> {
    items: &'v [J],
    /// The elements as values, made the first time the list is iterated.
    values: OnceLock<Vec<Box<dyn Val + 'v>>>,
}

impl<'v> JsonList<'v> {
    fn new(items: &'v [J]) -> Self {
        Self {
            items,
            values: OnceLock::new(),
        }
    }

    fn values(&self) -> &[Box<dyn Val + 'v>] {
        self.values
            .get_or_init(|| self.items.iter().map(value).collect())
    }

    fn position(&self, idx: &dyn Val) -> Result<usize, ExecutionError> {
        let out_of_bounds = |i: i64| ExecutionError::IndexOutOfBounds(i.into());
        let i = if let Some(i) = idx.downcast_ref::<CelInt>() {
            *i.inner()
        } else if let Some(u) = idx.downcast_ref::<CelUInt>() {
            i64::try_from(*u.inner()).unwrap_or(i64::MAX)
        } else if let Some(d) = idx.downcast_ref::<CelDouble>() {
            let d = *d.inner();
            // Whole doubles index like an int, fractional ones do not index.
            if d.fract() != 0.0 || !d.is_finite() {
                return Err(ExecutionError::UnsupportedIndex(
                    cel::Value::Float(d),
                    cel::Value::Null,
                ));
            }
            d as i64
        } else {
            return Err(ExecutionError::UnexpectedType {
                got: idx.get_type().name().to_owned(),
                want: "int|uint|double".to_owned(),
            });
        };
        usize::try_from(i)
            .ok()
            .filter(|i| *i < self.items.len())
            .ok_or_else(|| out_of_bounds(i))
    }
}

impl fmt::Debug for JsonList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.items).finish()
    }
}

impl<'v> Val for JsonList<'v> {
    fn get_type(&self) -> &Type {
        <Self as Val>::cel_type()
    }

    fn cel_type() -> &'static Type {
        &LIST_TYPE
    }

    fn as_adder<'b, 'w>(&'b self) -> Option<&'b (dyn Adder + 'w)>
    where
        Self: 'w,
    {
        Some(self)
    }

    container_capabilities!();

    fn clone_as_boxed<'w>(&self) -> Box<dyn Val + 'w>
    where
        Self: 'w,
    {
        Box::new(JsonList::new(self.items))
    }
}

impl<'v> Adder for JsonList<'v> {
    fn add<'b, 'w>(&'b self, rhs: &(dyn Val + 'w)) -> Result<CowVal<'b, 'w>, ExecutionError>
    where
        Self: 'w,
    {
        let mut rhs = rhs
            .as_iterable()
            .ok_or_else(|| {
                ExecutionError::UnsupportedBinaryOperator(
                    "add",
                    cel::Value::Null,
                    cel::Value::try_from(rhs).unwrap_or(cel::Value::Null),
                )
            })?
            .iter();
        let mut list: Vec<Box<dyn Val + 'w>> = self.items.iter().map(value).collect();
        while let Some(other) = rhs.next() {
            list.push(other.clone_as_boxed());
        }
        Ok(CowVal::owned(CelList::from(list)))
    }
}

impl Container for JsonList<'_> {
    fn contains(&self, needle: &dyn Val) -> Result<bool, ExecutionError> {
        Ok(self
            .values()
            .iter()
            .any(|i| deep_equals(i.as_ref(), needle)))
    }
}

impl<'v> Indexer for JsonList<'v> {
    fn get<'b, 'w>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'w>, ExecutionError>
    where
        Self: 'w,
    {
        let i = self.position(idx)?;
        Ok(CowVal::Owned(value(&self.items[i])))
    }

    fn steal<'w>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'w>, ExecutionError>
    where
        Self: 'w,
    {
        let i = self.position(idx)?;
        Ok(value(&self.items[i]))
    }
}

impl<'v> Iterable for JsonList<'v> {
    fn iter<'b, 'w>(&'b self) -> Box<dyn traits::Iterator<'b, 'w> + 'b>
    where
        Self: 'w,
    {
        Box::new(Boxes(self.values().iter()))
    }
}

impl Sizer for JsonList<'_> {
    fn size(&self) -> CelInt {
        i64::try_from(self.items.len()).unwrap_or(i64::MAX).into()
    }
}

impl Zeroer for JsonList<'_> {
    fn is_zero_value(&self) -> bool {
        self.items.is_empty()
    }
}

/// A JSON object, viewed.
pub(super) struct JsonMap<'v> {
    map: &'v serde_json::Map<String, J>,
    /// The keys as values, made the first time the map is iterated.
    keys: OnceLock<Vec<Box<dyn Val + 'v>>>,
}

impl<'v> JsonMap<'v> {
    fn new(map: &'v serde_json::Map<String, J>) -> Self {
        Self {
            map,
            keys: OnceLock::new(),
        }
    }

    /// The value under `key`, or why there is none (as CEL's own maps say it).
    fn find(&self, key: &dyn Val) -> Result<&'v J, ExecutionError> {
        if let Some(k) = key.downcast_ref::<CelString>() {
            return self
                .map
                .get(k.inner())
                .ok_or_else(|| ExecutionError::NoSuchKey(Arc::new(k.inner().to_owned())));
        }
        // JSON keys are strings: any other key CEL can look up is simply absent.
        let other = if let Some(i) = key.downcast_ref::<CelInt>() {
            i.inner().to_string()
        } else if let Some(u) = key.downcast_ref::<CelUInt>() {
            u.inner().to_string()
        } else if let Some(b) = key.downcast_ref::<CelBool>() {
            b.inner().to_string()
        } else if let Some(d) = key.downcast_ref::<CelDouble>() {
            d.inner().to_string()
        } else {
            return Err(ExecutionError::UnexpectedType {
                got: key.get_type().name().to_owned(),
                want: "map key".to_owned(),
            });
        };
        Err(ExecutionError::NoSuchKey(Arc::new(other)))
    }
}

impl fmt::Debug for JsonMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.map).finish()
    }
}

impl<'v> Val for JsonMap<'v> {
    fn get_type(&self) -> &Type {
        <Self as Val>::cel_type()
    }

    fn cel_type() -> &'static Type {
        &MAP_TYPE
    }

    container_capabilities!();

    fn clone_as_boxed<'w>(&self) -> Box<dyn Val + 'w>
    where
        Self: 'w,
    {
        Box::new(JsonMap::new(self.map))
    }
}

impl Container for JsonMap<'_> {
    fn contains(&self, key: &dyn Val) -> Result<bool, ExecutionError> {
        match self.find(key) {
            Ok(_) => Ok(true),
            Err(ExecutionError::NoSuchKey(_)) => Ok(false),
            Err(_) => Err(ExecutionError::UnsupportedKeyType(cel::Value::Null)),
        }
    }
}

impl<'v> Indexer for JsonMap<'v> {
    fn get<'b, 'w>(&'b self, key: &dyn Val) -> Result<CowVal<'b, 'w>, ExecutionError>
    where
        Self: 'w,
    {
        self.find(key).map(|v| CowVal::Owned(value(v)))
    }

    fn steal<'w>(self: Box<Self>, key: &dyn Val) -> Result<Box<dyn Val + 'w>, ExecutionError>
    where
        Self: 'w,
    {
        self.find(key).map(value)
    }
}

impl<'v> Iterable for JsonMap<'v> {
    fn iter<'b, 'w>(&'b self) -> Box<dyn traits::Iterator<'b, 'w> + 'b>
    where
        Self: 'w,
    {
        let keys = self.keys.get_or_init(|| {
            self.map
                .keys()
                .map(|k| Box::new(CelString::from(k.as_str())) as Box<dyn Val + 'v>)
                .collect()
        });
        Box::new(Boxes(keys.iter()))
    }
}

impl Sizer for JsonMap<'_> {
    fn size(&self) -> CelInt {
        i64::try_from(self.map.len()).unwrap_or(i64::MAX).into()
    }
}

impl Zeroer for JsonMap<'_> {
    fn is_zero_value(&self) -> bool {
        self.map.is_empty()
    }
}
