//! The core's extraction: a small serde [`Deserializer`](de::Deserializer)
//! over a tree of [`serde_json::Value`]s, with no configuration framework.
//!
//! It converts as figment's `extract_lossy` did, so that Vault's strings fill
//! typed fields (Vault's CLI writes every value as a string):
//!
//! - a bool field takes `true`/`yes`/`1`/`on` and `false`/`no`/`0`/`off`
//!   (any case), and the numbers 0 and 1;
//! - a number field takes a string holding a number (trimmed): with a `.` a
//!   float, else an integer (`"5432"`, `"-3"`, `"1.5"`);
//! - `null` is `None` (and nothing else is), an enum takes a variant's name
//!   (`"debug"`), its index, or `{variant: value}`; objects fill structs and
//!   maps, arrays fill sequences and tuples. Nothing else is converted: a
//!   number does not fill a `String`.
//!
//! An error ([`Failure`]) carries the key path to the value at fault and the
//! kind of value found, never the value: serde's `invalid_type` and
//! `unknown_variant` hand the value over, and it is dropped here. Only a
//! custom message can still quote it; the load layer redacts that.
//!
//! Where serde buffers a value before deserializing it (`#[serde(flatten)]`,
//! internally tagged and untagged enums), the field sees serde's own
//! buffered form, not this deserializer: no lossy conversion happens there,
//! so a `u16` under `flatten` refuses `"5432"` (as it did under figment).
//! Nest such structs with `#[vault(nested)]` or a plain field instead, or
//! give the field a `deserialize_with` that parses the string.
//!
//! Uses serde and serde_json only.

use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer};
use serde::de::{self, DeserializeSeed, Expected, IntoDeserializer, Unexpected, Visitor};
use serde_json::{Map, Number, Value};

/// What did not fit, without the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A struct field found nowhere (its name).
    Missing(String),
    /// A value of another kind than the field takes.
    InvalidType {
        found: &'static str,
        expected: String,
    },
    /// A value of the right kind that the field rejects (out of range, say).
    InvalidValue {
        found: &'static str,
        expected: String,
    },
    /// A sequence of the wrong length.
    InvalidLength { len: usize, expected: String },
    /// A string naming no variant of an enum.
    UnknownVariant { expected: &'static [&'static str] },
    /// A key a `deny_unknown_fields` struct does not have (keys are not secret).
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    /// A field given twice.
    DuplicateField(&'static str),
    /// A custom deserializer's message (it may quote the value: redact it).
    Message(String),
}

/// A deserialization error: where (keys from the root, outermost first) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub(crate) path: Vec<String>,
    pub(crate) fault: Fault,
}

impl Failure {
    fn new(fault: Fault) -> Self {
        Failure {
            path: Vec::new(),
            fault,
        }
    }

    fn prefixed(mut self, key: &str) -> Self {
        self.path.insert(0, key.to_owned());
        self
    }

    /// The dotted key of the value at fault (of the struct, for a missing field).
    pub(crate) fn key(&self) -> String {
        self.path.join(".")
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at `{}`: {}", self.key(), self.fault.reason())
    }
}

impl std::error::Error for Failure {}

impl Fault {
    /// The reason as an [`Error::Invalid`](crate::Error::Invalid) says it (not for `Missing`).
    pub(crate) fn reason(&self) -> String {
        match self {
            Fault::Missing(name) => format!("missing field `{name}`"),
            Fault::InvalidType { found, expected } => format!("expected {expected}, found {found}"),
            Fault::InvalidValue { found, expected } => {
                format!("expected {expected}, found {found} that does not fit")
            }
            Fault::InvalidLength { len, expected } => {
                format!("expected {expected}, found {len} items")
            }
            Fault::UnknownVariant { expected } => {
                format!("expected one of {}", backticked(expected))
            }
            Fault::UnknownField { field, expected } => {
                format!(
                    "unknown field `{field}`, expected one of {}",
                    backticked(expected)
                )
            }
            Fault::DuplicateField(name) => format!("duplicate field `{name}`"),
            Fault::Message(msg) => msg.clone(),
        }
    }
}

fn backticked(names: &[&str]) -> String {
    if names.is_empty() {
        return "nothing".to_owned();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kind of a value, for messages: never the value.
pub(crate) fn kind_of(unexpected: &Unexpected<'_>) -> &'static str {
    match unexpected {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
        Unexpected::Float(_) => "a float",
        Unexpected::Char(_) => "a character",
        Unexpected::Str(_) => "a string",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit => "nothing",
        Unexpected::Option => "an option",
        Unexpected::NewtypeStruct => "a newtype struct",
        Unexpected::Seq => "a list",
        Unexpected::Map => "a map",
        Unexpected::Enum
        | Unexpected::UnitVariant
        | Unexpected::NewtypeVariant
        | Unexpected::TupleVariant
        | Unexpected::StructVariant => "an enum variant",
        Unexpected::Other(_) => "a value of another kind",
    }
}

impl de::Error for Failure {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Failure::new(Fault::Message(msg.to_string()))
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Failure::new(Fault::InvalidType {
            found: kind_of(&unexp),
            expected: exp.to_string(),
        })
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Failure::new(Fault::InvalidValue {
            found: kind_of(&unexp),
            expected: exp.to_string(),
        })
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        Failure::new(Fault::InvalidLength {
            len,
            expected: exp.to_string(),
        })
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Failure::new(Fault::UnknownVariant { expected })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Failure::new(Fault::UnknownField {
            field: field.to_owned(),
            expected,
        })
    }

    fn missing_field(field: &'static str) -> Self {
        Failure::new(Fault::Missing(field.to_owned()))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Failure::new(Fault::DuplicateField(field))
    }
}

/// Deserializes a `T` from `value`, lossily (see the module docs).
#[cfg(test)]
pub(crate) fn from_value<T: de::DeserializeOwned>(value: &Value) -> Result<T, Failure> {
    T::deserialize(ValueDe(value))
}

/// Deserializes a `T` from a whole tree (its root is a map).
pub(crate) fn from_tree<T: de::DeserializeOwned>(tree: &Map<String, Value>) -> Result<T, Failure> {
    T::deserialize(TreeDe(tree))
}

/// The root of a tree: a map.
struct TreeDe<'a>(&'a Map<String, Value>);

impl<'de> de::Deserializer<'de> for TreeDe<'de> {
    type Error = Failure;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Failure> {
        v.visit_map(MapDe::new(self.0))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Failure> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Failure> {
        v.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool u8 u16 u32 u64 u128 i8 i16 i32 i64 i128 f32 f64 char str string bytes
        byte_buf unit unit_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// A deserializer over one value of the tree.
struct ValueDe<'a>(&'a Value);

/// A number as a string holds it, the way figment read one.
enum Num {
    U(u128),
    I(i128),
    F(f64),
}

fn parse_num(s: &str) -> Option<Num> {
    let s = s.trim();
    if s.contains('.') {
        s.parse().ok().map(Num::F)
    } else if s.starts_with('-') {
        s.parse().ok().map(Num::I)
    } else {
        s.parse().ok().map(Num::U)
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    // Trimmed as numbers are: `echo true > file` leaves a newline.
    let s = s.trim();
    const TRUE: [&str; 4] = ["true", "yes", "1", "on"];
    const FALSE: [&str; 4] = ["false", "no", "0", "off"];
    if TRUE.iter().any(|t| t.eq_ignore_ascii_case(s)) {
        Some(true)
    } else if FALSE.iter().any(|f| f.eq_ignore_ascii_case(s)) {
        Some(false)
    } else {
        None
    }
}

fn visit_number<'de, V: Visitor<'de>>(n: &Number, v: V) -> Result<V::Value, Failure> {
    if let Some(u) = n.as_u64() {
        v.visit_u64(u)
    } else if let Some(i) = n.as_i64() {
        v.visit_i64(i)
    } else {
        v.visit_f64(n.as_f64().unwrap_or(f64::NAN))
    }
}

impl<'de> ValueDe<'de> {
    /// A number field: a string holding a number is that number.
    fn number<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Failure> {
        match self.0 {
            Value::String(s) => match parse_num(s) {
                Some(Num::U(u)) => match u64::try_from(u) {
                    Ok(u) => v.visit_u64(u),
                    Err(_) => v.visit_u128(u),
                },
                Some(Num::I(i)) => match i64::try_from(i) {
                    Ok(i) => v.visit_i64(i),
                    Err(_) => v.visit_i128(i),
                },
                Some(Num::F(f)) => v.visit_f64(f),
                None => de::Deserializer::deserialize_any(self, v),
            },
            _ => de::Deserializer::deserialize_any(self, v),
        }
    }
}

macro_rules! lossy_numbers {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Failure> {
                self.number(v)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = Failure;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Failure> {
        match self.0 {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Number(n) => visit_number(n, v),
            Value::String(s) => v.visit_borrowed_str(s),
            Value::Array(items) => v.visit_seq(SeqDe {
                items: items.iter().enumerate(),
            }),
            Value::Object(map) => v.visit_map(MapDe::new(map)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Failure> {
        let lossy = match self.0 {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(0), _) | (_, Some(0)) => Some(false),
                (Some(1), _) | (_, Some(1)) => Some(true),
                _ => None,
            },
            Value::String(s) => parse_bool(s),
            _ => None,
        };
        match lossy {
            Some(b) => v.visit_bool(b),
            None => self.deserialize_any(v),
        }
    }

    lossy_numbers! {
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Failure> {
        match self.0 {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Failure> {
        match self.0 {
            Value::String(s) => v.visit_enum(BorrowedStrDeserializer::new(s)),
            Value::Object(map) => v.visit_enum(MapAccessDeserializer::new(MapDe::new(map))),
            Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(index) => v.visit_enum(index.into_deserializer()),
                None => self.deserialize_any(v),
            },
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Failure> {
        v.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}

struct MapDe<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<(&'a str, &'a Value)>,
}

impl<'a> MapDe<'a> {
    fn new(map: &'a Map<String, Value>) -> Self {
        MapDe {
            iter: map.iter(),
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapDe<'de> {
    type Error = Failure;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Failure> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
            .map_err(|e: Failure| e.prefixed(key))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Failure> {
        match self.value.take() {
            Some((key, value)) => seed
                .deserialize(ValueDe(value))
                .map_err(|e| e.prefixed(key)),
            None => Err(de::Error::custom(
                "a map value was asked for before its key",
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct SeqDe<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'de> {
    type Error = Failure;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Failure> {
        let Some((i, item)) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(ValueDe(item))
            .map(Some)
            .map_err(|e| e.prefixed(&i.to_string()))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde::Deserialize;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Level {
        Debug,
        Info,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        rps: u32,
        ratio: f64,
    }

    #[derive(Debug, Deserialize)]
    struct All {
        port: u16,
        neg: i32,
        ratio: f64,
        on: bool,
        off: bool,
        one: bool,
        opt: Option<u16>,
        none: Option<String>,
        absent: Option<String>,
        secret: secrecy::SecretString,
        level: Level,
        level_by_index: Level,
        inner: Inner,
        list: Vec<u16>,
        map: BTreeMap<String, u8>,
        c: char,
    }

    #[test]
    fn strings_fill_typed_fields_as_figment_lossy_did() {
        let value = json!({
            "port": " 5432", "neg": "-3", "ratio": "1.5", "on": "YES", "off": "off",
            "one": 1, "opt": "7", "none": null, "secret": "s3cr3t", "level": "debug",
            "level_by_index": 1, "inner": {"rps": "50", "ratio": 2},
            "list": ["1", 2], "map": {"a": "3"}, "c": "x"
        });
        let all: All = from_value(&value).unwrap();
        assert_eq!((all.port, all.neg, all.ratio), (5432, -3, 1.5));
        assert!(all.on && !all.off && all.one);
        assert_eq!((all.opt, all.none, all.absent), (Some(7), None, None));
        use secrecy::ExposeSecret;
        assert_eq!(all.secret.expose_secret(), "s3cr3t");
        assert_eq!((all.level, all.level_by_index), (Level::Debug, Level::Info));
        assert_eq!(
            all.inner,
            Inner {
                rps: 50,
                ratio: 2.0
            }
        );
        assert_eq!(all.list, vec![1, 2]);
        assert_eq!(all.map.get("a"), Some(&3));
        assert_eq!(all.c, 'x');
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Db {
        port: u16,
        level: Option<Level>,
        list: Option<Vec<u8>>,
        user: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Root {
        db: Db,
    }

    fn failure(value: Value) -> Failure {
        from_value::<Root>(&value).unwrap_err()
    }

    #[test]
    fn errors_name_the_path_and_kind_never_the_value() {
        let f = failure(json!({"db": {"port": "hunter2"}}));
        assert_eq!(f.key(), "db.port");
        assert_eq!(f.fault.reason(), "expected u16, found a string");

        let f = failure(json!({"db": {"port": "1.5"}}));
        assert_eq!(f.fault.reason(), "expected u16, found a float");

        let f = failure(json!({"db": {"port": "70000"}}));
        assert_eq!(f.key(), "db.port");
        assert!(matches!(f.fault, Fault::InvalidValue { .. }), "{f:?}");
        assert!(!f.to_string().contains("70000"), "{f}");

        let f = failure(json!({"db": {"port": 1, "level": "hunter2"}}));
        assert_eq!(f.key(), "db.level");
        assert_eq!(f.fault.reason(), "expected one of `debug`, `info`");

        let f = failure(json!({"db": {"port": 1, "list": [1, "hunter2"]}}));
        assert_eq!(f.key(), "db.list.1");

        let f = failure(json!({"db": {"port": 1, "user": 5}}));
        assert_eq!(f.fault.reason(), "expected a string, found an integer");

        let f = failure(json!({"db": {}}));
        assert_eq!(f.key(), "db");
        assert_eq!(f.fault, Fault::Missing("port".to_owned()));

        let f = failure(json!({}));
        assert_eq!(f.fault, Fault::Missing("db".to_owned()));
        for v in ["hunter2", "70000"] {
            assert!(!format!("{f:?}").contains(v));
        }
    }
}
