//! Go's `encoding/json` rules for reading a config, implemented once for every plugin.
//!
//! Configs are written by Go programs (the ECS agent, kubelet's generators, containerd, Multus)
//! and read by Go plugins, so a config that works with the plugins we replace must work with
//! ours. Go's decoder differs from serde's defaults in two ways, and this module applies Go's
//! way everywhere: to the common keys ([`crate::NetConf`]), to each plugin's typed view
//! ([`parse_value`], [`crate::NetConf::parse_as`]) and to hand-written readers ([`GoObject`]).
//!
//! # The rules
//!
//! 1. **Keys are matched the way Go matches them.** A member whose key equals a field's name
//!    exactly goes to that field. Otherwise it goes to the first field whose name is equal
//!    under Go's case folding ([`fold_key`]): `"isgateway"`, `"ISGATEWAY"` and `"IsGateway"` all
//!    set `isGateway`, and `"CNIVersion"` sets `cniVersion`. A member matching no field is
//!    ignored, as before.
//! 2. **The last member wins.** When several members of one object go to the same field, the
//!    one written last in the document is used, whether or not it is the exact spelling (Go
//!    decodes members in order and each overwrites the field: `{"mtu": 1500, "MTU": 9001}`
//!    gives 9001). The exact spelling only wins in choosing *which field* a key goes to, when
//!    two fields of one object fold to the same name.
//! 3. **`null` is absent.** A member whose value is `null` is dropped before matching, at every
//!    level of nesting (`"isGateway": null`, `"ipam": {"routes": null}`,
//!    `"runtimeConfig": {"portMappings": null}`, `"dns": null`): the field keeps its default
//!    (`false`, `None`, an empty list, or the plugin's documented default), as Go leaves a
//!    field alone on `null`. Elsewhere a `null` is the target's zero value, as in Go: an
//!    element of a list of strings is `""`, of numbers `0`, of booleans `false`, an `Option` is
//!    `None`, and an element of a list of objects is an empty object (its defaults apply; a
//!    required key of it is then reported missing, naming the element, e.g.
//!    `ipam.routes[0]`; Go would carry a zero-valued element that the Go plugins then use or
//!    reject later). The values of a free-form map (e.g. `args`, unknown `runtimeConfig`
//!    capabilities) are passed on as written, `null` included.
//! 4. **Errors name the key as written.** A value of the wrong type is code 7 with the path of
//!    the member as the user wrote it: `key "ipam.Ranges[0][0].subnet": invalid type: ...`.
//!    Checks made after parsing (ranges, MTU bounds) name the key in its documented spelling in
//!    bridge and ipam, as written in eni and branch-eni (which look keys up with [`GoObject`]).
//!
//! # Case folding
//!
//! [`fold_key`] maps each character `c` to `simple_upper(simple_lower(c))`, which is what Go
//! 1.21 and later do (`unicode.ToUpper(unicode.ToLower(r))`); ASCII letters simply become
//! upper case. So the Kelvin sign `K` (U+212A) matches `k` and the long s `ſ` (U+017F) matches
//! `s`, as in every Go version. Rust's standard library has full, not simple, case mappings;
//! we use a full mapping when it is one character and otherwise the simple mapping it starts
//! with (lower case: only `İ` U+0130, whose simple lower case is `i`) or the character itself
//! (upper case: `ß`, ligatures, Greek letters with iota subscript; for the last group Go
//! folds to another member of the same class, so the same keys match). Go 1.20 and earlier folded with `unicode.SimpleFold`,
//! under which `İ` (U+0130) and `ı` (U+0131) match no ASCII letter, where Go 1.21+ and we match
//! them with `i`; only keys spelled with those two letters are read differently, and no Go
//! program writes such keys.
//!
//! # Known differences from Go (deliberate, all on nonsensical input)
//!
//! - A `null` written *after* a value of the same field is dropped too, so the earlier value
//!   stays (Go keeps it for plain fields but resets pointers, slices and maps to nil).
//! - When the same field is given twice as objects (`"ipam": {...}, "IPAM": {...}`), the later
//!   object replaces the earlier; Go merges the two into one struct.
//! - The JSON text is first read into an ordered map, so a key spelled *identically* twice
//!   keeps its first position with its last value: `{"mtu":1,"MTU":2,"mtu":3}` gives 2 (Go: 3).
//! - `#[serde(flatten)]` turns folding off for that struct (serde then asks for a map and never
//!   tells us the fields), and two `#[serde(alias)]` spellings of one field given together are
//!   a "duplicate field" error. No config struct of this suite uses either; keep it so.

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};
use serde_json::{Map, Value};

use crate::Error;

// ---------------------------------------------------------------------------------------------
// Folding and member resolution

fn simple_lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

fn simple_upper(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_uppercase()
    } else {
        simple_upper(simple_lower(c))
    }
}

/// A key folded as Go's `encoding/json` folds it (see the module docs): two keys match a field
/// case-insensitively when their folds are equal.
pub fn fold_key(key: &str) -> String {
    key.chars().map(fold_char).collect()
}

/// Whether two keys are equal under Go's case folding, without allocating.
pub fn fold_eq(a: &str, b: &str) -> bool {
    a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

/// The field (index into `fields`) a member key goes to: the exact name first, else the first
/// field equal under folding.
fn field_for(key: &str, fields: &[&str]) -> Option<usize> {
    fields
        .iter()
        .position(|f| *f == key)
        .or_else(|| fields.iter().position(|f| fold_eq(f, key)))
}

/// One member of an object as Go's decoder sees it: the field it goes to (if any), the key as
/// written, the value.
#[derive(Clone, Copy, Debug)]
struct Member<'a> {
    field: Option<usize>,
    key: &'a str,
    value: &'a Value,
}

/// The members of `map` that count for a struct with `fields`, in document order: `null`
/// members dropped, and of several members going to one field only the last (at its place).
/// Members matching no field are kept as written.
fn resolve<'a>(map: &'a Map<String, Value>, fields: &[&str]) -> Vec<Member<'a>> {
    let mut out: Vec<Option<Member<'a>>> = Vec::with_capacity(map.len());
    let mut slot: Vec<Option<usize>> = vec![None; fields.len()];
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        let field = field_for(key, fields);
        if let Some(f) = field {
            if let Some(earlier) = slot[f].replace(out.len()) {
                out[earlier] = None;
            }
        }
        out.push(Some(Member { field, key, value }));
    }
    out.into_iter().flatten().collect()
}

/// An object read with Go's rules (see the module docs), for readers that look keys up by hand
/// (eni, branch-eni, the common keys). Only members going to one of `fields` are kept.
#[derive(Clone, Debug)]
pub struct GoObject<'a, 'f> {
    fields: &'f [&'f str],
    members: Vec<Member<'a>>,
}

impl<'a, 'f> GoObject<'a, 'f> {
    /// Resolves the members of `map` against `fields` (the keys in their documented spelling).
    pub fn new(map: &'a Map<String, Value>, fields: &'f [&'f str]) -> GoObject<'a, 'f> {
        let mut members = resolve(map, fields);
        members.retain(|m| m.field.is_some());
        GoObject { fields, members }
    }

    /// The member that sets `field` (one of the `fields` given to [`GoObject::new`]): the key as
    /// written and its value. `None` when absent or `null`.
    pub fn get(&self, field: &str) -> Option<(&'a str, &'a Value)> {
        let i = self.fields.iter().position(|f| *f == field)?;
        self.members
            .iter()
            .find(|m| m.field == Some(i))
            .map(|m| (m.key, m.value))
    }

    /// The key as written for `field`, or `field` itself when absent (for messages).
    pub fn key_as_written<'s>(&self, field: &'s str) -> &'s str
    where
        'a: 's,
    {
        self.get(field).map_or(field, |(k, _)| k)
    }

    /// Every member that sets a field, in document order: (field, key as written, value).
    pub fn iter(&self) -> impl Iterator<Item = (&'f str, &'a str, &'a Value)> + '_ {
        self.members.iter().filter_map(|m| {
            let f = self.fields.get(m.field?)?;
            Some((*f, m.key, m.value))
        })
    }

    /// The members of `map` that set none of `fields`, as written (`null` ones dropped).
    pub fn others(map: &'a Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
        resolve(map, fields)
            .into_iter()
            .filter(|m| m.field.is_none())
            .map(|m| (m.key.to_owned(), m.value.clone()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The serde adapter

/// One step of the path to a value: a key as written, or an index.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A decoding error and where it happened (innermost segment first while it travels up).
#[derive(Debug)]
pub struct GoError {
    rev_path: Vec<Segment>,
    msg: String,
}

impl GoError {
    fn at(mut self, seg: Segment) -> GoError {
        self.rev_path.push(seg);
        self
    }

    fn json(e: serde_json::Error) -> GoError {
        de::Error::custom(e)
    }

    /// The path of the offending value, e.g. `ipam.Ranges[0][0].subnet` (empty at the root).
    pub fn path(&self) -> String {
        let mut s = String::new();
        for seg in self.rev_path.iter().rev() {
            match seg {
                Segment::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Segment::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    /// What is wrong, without the path.
    pub fn message(&self) -> &str {
        &self.msg
    }
}

impl fmt::Display for GoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path();
        if path.is_empty() {
            f.write_str(&self.msg)
        } else {
            write!(f, "{path}: {}", self.msg)
        }
    }
}

impl std::error::Error for GoError {}

impl de::Error for GoError {
    fn custom<T: fmt::Display>(msg: T) -> GoError {
        GoError {
            rev_path: Vec::new(),
            msg: msg.to_string(),
        }
    }
}

/// A JSON value read with Go's rules: implements [`serde::Deserializer`], so any
/// `#[derive(Deserialize)]` type can be read from it (see the module docs for the rules).
#[derive(Clone, Copy, Debug)]
pub struct GoValue<'a>(pub &'a Value);

/// `T` from `value` with Go's rules; the error carries the path as written.
pub fn from_go_value<T: DeserializeOwned>(value: &Value) -> Result<T, GoError> {
    T::deserialize(GoValue(value))
}

/// Deserializes `v` into `T` with Go's rules (see the module docs). A mismatch is code 7
/// naming the key as written, under `prefix` (the key `v` was found at, empty for the root).
pub fn parse_value<T: DeserializeOwned>(v: &Value, prefix: &str) -> Result<T, Error> {
    from_go_value(v).map_err(|e| {
        let path = e.path();
        let key = match (prefix.is_empty(), path.is_empty()) {
            (_, true) => prefix.to_owned(),
            (true, false) => path,
            (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
            (false, false) => format!("{prefix}.{path}"),
        };
        if key.is_empty() {
            Error::invalid_config(e.msg)
        } else {
            Error::invalid_config(format!("key \"{key}\": {}", e.msg))
        }
    })
}

/// Scalars: `null` is the zero value; anything else is serde_json's own reading (whose errors
/// say "invalid type: ..., expected ...").
macro_rules! scalar {
    ($($method:ident => |$v:ident| $zero:expr;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $v: V) -> Result<V::Value, GoError> {
                match self.0 {
                    Value::Null => $zero,
                    other => other.$method($v).map_err(GoError::json),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for GoValue<'de> {
    type Error = GoError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoError> {
        match self.0 {
            Value::Array(a) => visitor.visit_seq(GoSeq::new(a)),
            Value::Object(m) => visitor.visit_map(GoMap::as_written(m)),
            other => other.deserialize_any(visitor).map_err(GoError::json),
        }
    }

    scalar! {
        deserialize_bool => |v| v.visit_bool(false);
        deserialize_i8 => |v| v.visit_i64(0);
        deserialize_i16 => |v| v.visit_i64(0);
        deserialize_i32 => |v| v.visit_i64(0);
        deserialize_i64 => |v| v.visit_i64(0);
        deserialize_i128 => |v| v.visit_i64(0);
        deserialize_u8 => |v| v.visit_u64(0);
        deserialize_u16 => |v| v.visit_u64(0);
        deserialize_u32 => |v| v.visit_u64(0);
        deserialize_u64 => |v| v.visit_u64(0);
        deserialize_u128 => |v| v.visit_u64(0);
        deserialize_f32 => |v| v.visit_f64(0.0);
        deserialize_f64 => |v| v.visit_f64(0.0);
        deserialize_str => |v| v.visit_borrowed_str("");
        deserialize_string => |v| v.visit_borrowed_str("");
        deserialize_bytes => |v| v.visit_borrowed_bytes(&[]);
        deserialize_byte_buf => |v| v.visit_borrowed_bytes(&[]);
        deserialize_unit => |v| v.visit_unit();
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoError> {
        self.0.deserialize_char(visitor).map_err(GoError::json)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoError> {
        self.0
            .deserialize_identifier(visitor)
            .map_err(GoError::json)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GoError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GoError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoError> {
        match self.0 {
            Value::Array(a) => visitor.visit_seq(GoSeq::new(a)),
            Value::Null => visitor.visit_seq(GoSeq::new(&[])),
            other => other.deserialize_seq(visitor).map_err(GoError::json),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, GoError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, GoError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoError> {
        match self.0 {
            Value::Object(m) => visitor.visit_map(GoMap::as_written(m)),
            Value::Null => visitor.visit_map(GoMap::empty()),
            other => other.deserialize_map(visitor).map_err(GoError::json),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GoError> {
        match self.0 {
            Value::Object(m) => visitor.visit_map(GoMap::folded(m, fields)),
            Value::Null => visitor.visit_map(GoMap::empty()),
            // Go refuses an array for a struct (serde_json would read it positionally)
            Value::Array(_) => Err(de::Error::invalid_type(de::Unexpected::Seq, &visitor)),
            other => other
                .deserialize_struct(name, fields, visitor)
                .map_err(GoError::json),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GoError> {
        match self.0 {
            Value::Object(m) if m.len() == 1 => match m.iter().next() {
                Some((variant, value)) => visitor.visit_enum(GoEnum { variant, value }),
                None => Err(de::Error::custom("an enum object needs one key")),
            },
            other => other
                .deserialize_enum(name, variants, visitor)
                .map_err(GoError::json),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoError> {
        visitor.visit_unit()
    }
}

/// The elements of an array; an error inside one names its index.
struct GoSeq<'a> {
    iter: std::slice::Iter<'a, Value>,
    index: usize,
}

impl<'a> GoSeq<'a> {
    fn new(items: &'a [Value]) -> GoSeq<'a> {
        GoSeq {
            iter: items.iter(),
            index: 0,
        }
    }
}

impl<'de> SeqAccess<'de> for GoSeq<'de> {
    type Error = GoError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, GoError> {
        let Some(v) = self.iter.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(GoValue(v))
            .map(Some)
            .map_err(|e| e.at(Segment::Index(i)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// The members of an object: (key handed to the visitor, key as written, value).
struct GoMap<'a> {
    members: std::vec::IntoIter<(&'a str, &'a str, &'a Value)>,
    pending: Option<(&'a str, &'a Value)>,
}

impl<'a> GoMap<'a> {
    fn from_list(list: Vec<(&'a str, &'a str, &'a Value)>) -> GoMap<'a> {
        GoMap {
            members: list.into_iter(),
            pending: None,
        }
    }

    fn empty() -> GoMap<'a> {
        GoMap::from_list(Vec::new())
    }

    /// A free-form map: every member as written, `null` included.
    fn as_written(m: &'a Map<String, Value>) -> GoMap<'a> {
        GoMap::from_list(m.iter().map(|(k, v)| (k.as_str(), k.as_str(), v)).collect())
    }

    /// A struct's members: keys resolved to `fields` as Go does, `null` dropped, the last of
    /// several members of one field kept; unknown keys passed as written.
    fn folded(m: &'a Map<String, Value>, fields: &'static [&'static str]) -> GoMap<'a> {
        GoMap::from_list(
            resolve(m, fields)
                .into_iter()
                .map(|mb| {
                    let handed = mb.field.and_then(|i| fields.get(i).copied());
                    (handed.unwrap_or(mb.key), mb.key, mb.value)
                })
                .collect(),
        )
    }
}

impl<'de> MapAccess<'de> for GoMap<'de> {
    type Error = GoError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, GoError> {
        let Some((handed, written, value)) = self.members.next() else {
            return Ok(None);
        };
        self.pending = Some((written, value));
        seed.deserialize(BorrowedStrDeserializer::<GoError>::new(handed))
            .map(Some)
            .map_err(|e| e.at(Segment::Key(written.to_owned())))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, GoError> {
        let Some((written, value)) = self.pending.take() else {
            return Err(de::Error::custom("a value was asked for before its key"));
        };
        seed.deserialize(GoValue(value))
            .map_err(|e| e.at(Segment::Key(written.to_owned())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.members.len())
    }
}

/// An externally tagged enum value `{"variant": value}`.
struct GoEnum<'a> {
    variant: &'a str,
    value: &'a Value,
}

impl<'de> EnumAccess<'de> for GoEnum<'de> {
    type Error = GoError;
    type Variant = GoVariant<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, GoVariant<'de>), GoError> {
        let de = BorrowedStrDeserializer::<GoError>::new(self.variant);
        let v = seed
            .deserialize(de)
            .map_err(|e| e.at(Segment::Key(self.variant.to_owned())))?;
        Ok((
            v,
            GoVariant {
                variant: self.variant,
                value: self.value,
            },
        ))
    }
}

struct GoVariant<'a> {
    variant: &'a str,
    value: &'a Value,
}

impl<'de> VariantAccess<'de> for GoVariant<'de> {
    type Error = GoError;

    fn unit_variant(self) -> Result<(), GoError> {
        match self.value {
            Value::Null => Ok(()),
            _ => Err(de::Error::custom(format!(
                "variant \"{}\" takes no value",
                self.variant
            ))),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, GoError> {
        seed.deserialize(GoValue(self.value))
            .map_err(|e| e.at(Segment::Key(self.variant.to_owned())))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, GoError> {
        de::Deserializer::deserialize_seq(GoValue(self.value), visitor)
            .map_err(|e| e.at(Segment::Key(self.variant.to_owned())))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GoError> {
        de::Deserializer::deserialize_struct(GoValue(self.value), "", fields, visitor)
            .map_err(|e| e.at(Segment::Key(self.variant.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[test]
    fn ascii_and_unicode_folding() {
        assert_eq!(fold_key("isGateway"), "ISGATEWAY");
        for same in ["isgateway", "ISGATEWAY", "IsGateWay", "isGateway"] {
            assert!(fold_eq("isGateway", same), "{same}");
        }
        // Go's two special cases of ASCII letters: the Kelvin sign folds with k, the long s with s
        assert!(fold_eq("kind", "\u{212a}ind"));
        assert!(fold_eq("mask", "ma\u{17f}k"));
        // simple (one-character) folding only: ß is not "ss", and İ (U+0130) is i as in Go 1.21+
        assert!(!fold_eq("strasse", "straße"));
        assert!(fold_eq("straße", "STRAßE"));
        assert!(fold_eq("id", "\u{130}d"));
        // non-ASCII letters fold among themselves: Greek sigma's three forms, Cyrillic
        assert!(fold_eq("\u{3c3}", "\u{3a3}") && fold_eq("\u{3c2}", "\u{3a3}"));
        assert!(fold_eq("сеть", "СЕТЬ"));
        // iota subscript: Go folds ᾳ and ᾼ to ᾼ, we to ᾳ; either way they match each other
        assert!(fold_eq("\u{1fb3}", "\u{1fbc}"));
        // punctuation and digits stay as they are
        assert!(!fold_eq("ipv4-subnet", "ipv4_subnet"));
        assert!(fold_eq("ipv4-subnet", "IPV4-SUBNET"));
        assert!(!fold_eq("mtu", "mtu "));
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Route {
        dst: String,
        gw: Option<String>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Ipam {
        #[serde(rename = "type")]
        kind: String,
        routes: Vec<Route>,
        #[serde(rename = "dataDir")]
        data_dir: Option<String>,
    }

    fn default_bridge() -> String {
        "cni0".into()
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Conf {
        #[serde(default = "default_bridge")]
        bridge: String,
        #[serde(rename = "isGateway")]
        is_gateway: bool,
        mtu: Option<u32>,
        names: Vec<String>,
        ipam: Ipam,
        labels: HashMap<String, String>,
        extra: Option<Value>,
    }

    fn conf(v: Value) -> Conf {
        from_go_value(&v).unwrap()
    }

    #[test]
    fn keys_fold_to_fields_and_unknown_keys_are_ignored() {
        let c = conf(json!({"BRIDGE": "br1", "isgateway": true, "Mtu": 9001,
            "IPAM": {"Type": "ipam", "DATADIR": "/d", "Routes": [{"DST": "0.0.0.0/0", "Gw": "10.0.0.1"}]},
            "unknown": {"x": [1, null]}}));
        assert_eq!(
            c,
            Conf {
                bridge: "br1".into(),
                is_gateway: true,
                mtu: Some(9001),
                ipam: Ipam {
                    kind: "ipam".into(),
                    routes: vec![Route {
                        dst: "0.0.0.0/0".into(),
                        gw: Some("10.0.0.1".into())
                    }],
                    data_dir: Some("/d".into()),
                },
                ..Conf::default()
            }
        );
    }

    #[test]
    fn the_last_member_of_a_field_wins_exact_or_not() {
        // Go decodes members in order: the later one overwrites, whatever its spelling
        assert_eq!(conf(json!({"mtu": 1500, "Mtu": 9001})).mtu, Some(9001));
        assert_eq!(conf(json!({"Mtu": 9001, "mtu": 1500})).mtu, Some(1500));
        assert_eq!(conf(json!({"MTU": 1, "mTu": 2, "Mtu": 3})).mtu, Some(3));
        assert!(!conf(json!({"isGateway": true, "ISGATEWAY": false})).is_gateway);
        // a wrong type in an earlier, overridden member is never read (the field is set once)
        assert_eq!(conf(json!({"mtu": "x", "MTU": 7})).mtu, Some(7));
    }

    #[test]
    fn the_exact_spelling_chooses_among_fields_that_fold_alike() {
        #[derive(Debug, Default, Deserialize, PartialEq)]
        #[serde(default)]
        struct Two {
            foo: String,
            #[serde(rename = "FOO")]
            big: String,
        }
        let two = |v: Value| from_go_value::<Two>(&v).unwrap();
        assert_eq!(
            two(json!({"FOO": "y", "foo": "z"})),
            Two {
                foo: "z".into(),
                big: "y".into()
            }
        );
        // no exact match: the first field that folds alike, as Go
        assert_eq!(two(json!({"fOO": "w"})).foo, "w");
        assert_eq!(two(json!({"fOO": "w"})).big, "");
    }

    #[test]
    fn null_is_absent_at_every_level() {
        let c = conf(
            json!({"bridge": null, "isGateway": null, "mtu": null, "names": null,
            "ipam": null, "labels": null, "extra": null}),
        );
        assert_eq!(
            c,
            Conf {
                bridge: "cni0".into(),
                ..Conf::default()
            }
        );
        let c = conf(json!({"ipam": {"type": null, "routes": null, "dataDir": null}}));
        assert_eq!(c.ipam, Ipam::default());
        let c = conf(json!({"ipam": {"routes": [{"dst": "10.0.0.0/8", "gw": null}]}}));
        assert_eq!(c.ipam.routes[0].gw, None);
        // a null after a value of the same field is dropped too: the value stays
        assert_eq!(conf(json!({"mtu": 7, "MTU": null})).mtu, Some(7));
        assert!(conf(json!({"isGateway": true, "isgateway": null})).is_gateway);
    }

    #[test]
    fn null_elsewhere_is_the_zero_value() {
        // list elements: "" for strings, an empty object (defaults) for objects
        let c = conf(json!({"names": ["a", null], "ipam": {"routes": [null, {"dst": "d"}]}}));
        assert_eq!(c.names, vec!["a".to_string(), String::new()]);
        assert_eq!(c.ipam.routes[0], Route::default());
        assert_eq!(c.ipam.routes[1].dst, "d");
        // a required key of a null element is reported missing, naming the element
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Strict {
            dst: String,
        }
        let e = parse_value::<Vec<Strict>>(&json!([{"dst": "x"}, null]), "ipam.routes")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid network config: key \"ipam.routes[1]\": missing field `dst`"
        );
        // map values: Go stores the zero value under the key
        assert_eq!(
            conf(json!({"labels": {"a": null, "b": "x"}})).labels,
            HashMap::from([("a".into(), String::new()), ("b".into(), "x".into())])
        );
        // options, numbers and booleans in lists
        let v: Vec<Option<u32>> = from_go_value(&json!([1, null])).unwrap();
        assert_eq!(v, vec![Some(1), None]);
        let v: Vec<u32> = from_go_value(&json!([1, null])).unwrap();
        assert_eq!(v, vec![1, 0]);
        let v: Vec<bool> = from_go_value(&json!([true, null])).unwrap();
        assert_eq!(v, vec![true, false]);
    }

    #[test]
    fn free_form_values_pass_through_as_written() {
        let v = json!({"A": null, "b": [1, null, {"C": null}], "d": {"e": "f"}});
        assert_eq!(from_go_value::<Value>(&v).unwrap(), v);
        assert_eq!(conf(json!({"extra": v.clone()})).extra, Some(v));
    }

    #[test]
    fn errors_name_the_key_as_written() {
        let err = |v: Value, prefix: &str| parse_value::<Conf>(&v, prefix).unwrap_err();
        let e = err(json!({"MTU": "9001"}), "");
        assert_eq!(e.code(), 7);
        assert_eq!(
            e.to_string(),
            "invalid network config: key \"MTU\": invalid type: string \"9001\", expected u32"
        );
        let e = err(json!({"Ipam": {"ROUTES": [{"dst": "a"}, {"Dst": 5}]}}), "");
        assert_eq!(
            e.to_string(),
            "invalid network config: key \"Ipam.ROUTES[1].Dst\": invalid type: integer `5`, expected a string"
        );
        let e = err(json!({"isgateway": "yes"}), "plugins[0]");
        assert_eq!(
            e.to_string(),
            "invalid network config: key \"plugins[0].isgateway\": invalid type: string \"yes\", expected a boolean"
        );
        // at the root: the prefix alone, or no key at all
        let e = err(json!([1]), "ipam");
        assert!(
            e.to_string()
                .starts_with("invalid network config: key \"ipam\": invalid type")
        );
        let e = err(json!(1), "");
        assert!(
            e.to_string()
                .starts_with("invalid network config: invalid type"),
            "{e}"
        );
        // an index right under the prefix
        let e = parse_value::<Vec<u8>>(&json!([1, "x"]), "ips").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid network config: key \"ips[1]\""),
            "{e}"
        );
    }

    #[test]
    fn deep_nesting_folds_and_names_the_path() {
        #[derive(Debug, Default, Deserialize, PartialEq)]
        #[serde(default)]
        struct L3 {
            #[serde(rename = "rangeStart")]
            range_start: Option<String>,
            n: u8,
        }
        #[derive(Debug, Default, Deserialize, PartialEq)]
        #[serde(default)]
        struct L2 {
            ranges: Vec<Vec<L3>>,
        }
        #[derive(Debug, Default, Deserialize, PartialEq)]
        #[serde(default)]
        struct L1 {
            ipam: Option<L2>,
        }
        let v = json!({"IPAM": {"Ranges": [[{"RANGESTART": "10.0.0.5", "N": null}], [null, {"n": 2}]]}});
        let c: L1 = from_go_value(&v).unwrap();
        let ranges = c.ipam.unwrap().ranges;
        assert_eq!(ranges[0][0].range_start.as_deref(), Some("10.0.0.5"));
        assert_eq!(
            ranges[1],
            vec![
                L3::default(),
                L3 {
                    range_start: None,
                    n: 2
                }
            ]
        );
        let v = json!({"IPAM": {"Ranges": [[], [{"rangestart": 5}]]}});
        let e = parse_value::<L1>(&v, "").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid network config: key \"IPAM.Ranges[1][0].rangestart\": invalid type: integer `5`"),
            "{e}"
        );
        let v = json!({"ipam": {"ranges": [[{"n": 300}]]}});
        let e = parse_value::<L1>(&v, "").unwrap_err();
        assert!(e.to_string().contains("key \"ipam.ranges[0][0].n\""), "{e}");
    }

    #[test]
    fn flatten_turns_folding_off_and_aliases_fold() {
        // serde asks for a map (no field list) for a struct with `flatten`: keys are not folded.
        // No config struct uses flatten; this test documents why.
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct Flat {
            #[serde(rename = "isGateway")]
            is_gateway: bool,
            #[serde(flatten)]
            rest: Map<String, Value>,
        }
        let f: Flat = from_go_value(&json!({"isgateway": true})).unwrap();
        assert!(!f.is_gateway && f.rest.contains_key("isgateway"));
        // what the suite does instead: a typed struct plus the other members on the side
        let v = json!({"MAC": "c2:00:00:00:00:01", "IPs": ["10.0.0.2"], "portMappings": null,
            "Bandwidth": {"ingressRate": 1}});
        let rc = crate::RuntimeConfig::from_value(&v, "runtimeConfig").unwrap();
        assert_eq!(rc.mac.as_deref(), Some("c2:00:00:00:00:01"));
        assert_eq!(rc.ips, vec!["10.0.0.2".to_string()]);
        assert_eq!(
            Value::Object(rc.rest),
            json!({"Bandwidth": {"ingressRate": 1}})
        );
        // an alias is in serde's field list, so it folds like the name
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct Aliased {
            #[serde(alias = "hairpin")]
            hairpin_mode: bool,
        }
        let a: Aliased = from_go_value(&json!({"HAIRPIN": true})).unwrap();
        assert!(a.hairpin_mode);
    }

    #[test]
    fn enums_and_newtypes() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Mode {
            Vlan,
            Tap { uid: u32 },
        }
        assert_eq!(from_go_value::<Mode>(&json!("vlan")).unwrap(), Mode::Vlan);
        assert_eq!(
            from_go_value::<Mode>(&json!({"tap": {"UID": 5}})).unwrap(),
            Mode::Tap { uid: 5 }
        );
        let e = parse_value::<Mode>(&json!({"tap": {"uid": "x"}}), "m").unwrap_err();
        assert!(e.to_string().contains("key \"m.tap.uid\""), "{e}");
        #[derive(Debug, Deserialize, PartialEq)]
        struct Mtu(u32);
        assert_eq!(from_go_value::<Mtu>(&json!(9001)).unwrap(), Mtu(9001));
    }

    #[test]
    fn hand_written_readers_get_the_same_rules() {
        let m = json!({"TRUNKNAME": "eth9", "other": 1, "trunkname": "eth1", "Mtu": null,
            "BranchVlanId": 5});
        let Value::Object(m) = m else { unreachable!() };
        let fields = ["trunkName", "branchVlanID", "mtu"];
        let o = GoObject::new(&m, &fields);
        assert_eq!(o.get("trunkName"), Some(("trunkname", &json!("eth1"))));
        assert_eq!(o.get("mtu"), None);
        assert_eq!(o.get("notAField"), None);
        assert_eq!(o.key_as_written("branchVlanID"), "BranchVlanId");
        assert_eq!(o.key_as_written("mtu"), "mtu");
        // document order of the winning members
        let order: Vec<(&str, &str)> = o.iter().map(|(f, k, _)| (f, k)).collect();
        assert_eq!(
            order,
            vec![("trunkName", "trunkname"), ("branchVlanID", "BranchVlanId")]
        );
        assert_eq!(
            Value::Object(GoObject::others(&m, &fields)),
            json!({"other": 1})
        );
    }

    #[test]
    fn many_members_of_one_field_stay_linear() {
        // every one of the 512 spellings of isGateway, each after 100 unknown keys: resolved
        // without a quadratic scan, the last spelling winning
        let mut m = Map::new();
        for i in 0..512u32 {
            let spelled: String = "isgateway"
                .chars()
                .enumerate()
                .map(|(b, c)| {
                    if i & (1 << b) != 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            for j in 0..100 {
                m.insert(format!("unknown{i}-{j}"), json!(j));
            }
            m.insert(spelled, json!(i == 511));
        }
        assert_eq!(m.len(), 512 * 101);
        assert!(conf(Value::Object(m)).is_gateway);
    }
}
