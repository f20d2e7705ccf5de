//! The parsed form of an input, and small helpers to read it with errors
//! that name the field path.
//!
//! Inputs are parsed into [`Json`], not `serde_json::Value`: it borrows
//! every string and key that needs no unescaping from the raw bytes and
//! keeps objects as short lists in document order, so a typical webhook
//! parses with a handful of allocations instead of one per key and string
//! (half of the import thread's time went to building `Value`s).

use crate::error::ParseError;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::Number;
use std::borrow::Cow;
use std::fmt;

/// A JSON value borrowing its strings from the document where it can.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in document order; a repeated key reads as its last value,
    /// as with `serde_json::Value`.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Parses a whole document.
    ///
    /// By sonic-rs, which finds strings and structure with SIMD: the same
    /// tree as serde_json built, in less time (the import thread's share of
    /// a 1M import's CPU 24% -> 22%, see `benches/RESULTS.md`), and the
    /// same documents refused (tests below).
    pub(crate) fn parse(raw: &'a [u8]) -> Result<Json<'a>, sonic_rs::Error> {
        sonic_rs::from_slice(raw)
    }

    /// The member `key` of an object (the last one if repeated).
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Element `i` of an array.
    pub(crate) fn at(&self, i: usize) -> Option<&Json<'a>> {
        match self {
            Json::Array(items) => items.get(i),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&Vec<Json<'a>>> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub(crate) fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// The compact text `serde_json::Value` would print for this document:
    /// keys sorted, a repeated key once with its last value. Fingerprints
    /// hash it, so it must not change with the parser.
    pub(crate) fn canonical(&self) -> String {
        // Printed by serde_json itself (see `Serialize` below), so numbers
        // and escapes are byte for byte what `Value` printed.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Number(n) => n.serialize(serializer),
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => serializer.collect_seq(items),
            Json::Object(members) => {
                serializer.collect_map(in_key_order(members).into_iter().map(|(k, v)| (k, v)))
            }
        }
    }
}

/// An object's members as `serde_json::Value` holds them: sorted by key,
/// each key once with its last value.
fn in_key_order<'m, 'a>(
    members: &'m [(Cow<'a, str>, Json<'a>)],
) -> Vec<&'m (Cow<'a, str>, Json<'a>)> {
    // Reversed first, so that the stable sort keeps the last value of a key
    // ahead of the earlier ones and `dedup` drops those.
    let mut sorted: Vec<_> = members.iter().rev().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.dedup_by(|later, earlier| later.0 == earlier.0);
    sorted
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key::<Json<'de>>()? {
            let Json::String(key) = key else {
                return Err(serde::de::Error::custom("an object key is not a string"));
            };
            members.push((key, map.next_value()?));
        }
        Ok(Json::Object(members))
    }
}

/// A value together with its path from the document root, for errors.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) value: &'a Json<'a>,
    pub(crate) path: &'a str,
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl<'a> At<'a> {
    pub(crate) fn new(value: &'a Json<'a>, path: &'a str) -> At<'a> {
        At { value, path }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Json<'a>> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    /// A string field; numbers are accepted and written as text (ids are
    /// sometimes sent as numbers).
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<String>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.to_string())),
            Some(Json::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(ParseError::field(
                join(self.path, key),
                format!("expected a string, found {}", kind(other)),
            )),
        }
    }

    /// A text field of a format Ticks defines (a send result's name,
    /// category...): a string, or absent; a number, an object or an array is
    /// an error that names the field, never silently text.
    pub(crate) fn opt_text(&self, key: &str) -> Result<Option<String>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.to_string())),
            Some(other) => Err(ParseError::field(
                join(self.path, key),
                format!("expected a string, found {}", kind(other)),
            )),
        }
    }

    /// A field that holds digits (a phone number, a phone number id): a
    /// string, or a whole non-negative number, which is written as its
    /// digits (some senders serialise ids as numbers).
    pub(crate) fn opt_digits(&self, key: &str) -> Result<Option<String>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.to_string())),
            Some(Json::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
            Some(other) => Err(ParseError::field(
                join(self.path, key),
                format!("expected a string of digits, found {}", kind(other)),
            )),
        }
    }

    pub(crate) fn req_str(&self, key: &str) -> Result<String, ParseError> {
        self.opt_str(key)?
            .ok_or_else(|| ParseError::field(join(self.path, key), "missing"))
    }

    /// A string field read leniently: absent or of another type gives `None`.
    pub(crate) fn str_or_none(&self, key: &str) -> Option<String> {
        self.opt_str(key).ok().flatten()
    }

    pub(crate) fn object(&self, key: &str) -> Result<Option<&'a Json<'a>>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(v @ Json::Object(_)) => Ok(Some(v)),
            Some(other) => Err(ParseError::field(
                join(self.path, key),
                format!("expected an object, found {}", kind(other)),
            )),
        }
    }
}

/// Walks down a chain of keys leniently.
pub(crate) fn dig<'a>(v: &'a Json<'a>, keys: &[&str]) -> Option<&'a Json<'a>> {
    let mut cur = v;
    for k in keys {
        cur = cur.get(k)?;
    }
    (!cur.is_null()).then_some(cur)
}

pub(crate) fn dig_str(v: &Json<'_>, keys: &[&str]) -> Option<String> {
    match dig(v, keys)? {
        Json::String(s) => Some(s.to_string()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn kind(v: &Json<'_>) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Every string value under `v`, for full-text search: arrays in order,
/// objects in key order (as earlier versions read them from
/// `serde_json::Value`: the text is part of a webhook event's fingerprint).
pub(crate) fn all_strings(v: &Json<'_>, out: &mut String) {
    let mut line = |text: &str| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(text);
    };
    match v {
        Json::String(s) => line(s),
        Json::Number(n) => line(&n.to_string()),
        Json::Array(a) => a.iter().for_each(|x| all_strings(x, out)),
        Json::Object(o) => in_key_order(o)
            .into_iter()
            .for_each(|(_, x)| all_strings(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_is_what_serde_json_value_prints() {
        let documents = [
            r#"{"to":"+55 11 9","type":"template","template":{"name":"promo","language":{"code":"pt_BR"},"components":[{"type":"body","parameters":[{"type":"text","text":"Olá \"Maria\"\n\u00e9 \ud83d\ude00"}]}]}}"#,
            r#"{"b":1,"a":2.5,"c":[true,false,null,-7,1e3,0.1],"a":"repeated key: the last wins"}"#,
            r#"{"z":{},"y":[],"x":"\u0001\t\\/"}"#,
            r#"[1,"two",{"three":3}]"#,
        ];
        for doc in documents {
            let ours = Json::parse(doc.as_bytes()).expect("parses").canonical();
            let value: serde_json::Value = serde_json::from_str(doc).expect("parses");
            assert_eq!(ours, value.to_string(), "{doc}");
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed_from_the_input() {
        let raw = br#"{"plain":"abc","escaped":"a\nb"}"#;
        let doc = Json::parse(raw).expect("parses");
        assert!(matches!(
            doc.get("plain"),
            Some(Json::String(Cow::Borrowed("abc")))
        ));
        assert_eq!(doc.get("escaped").and_then(Json::as_str), Some("a\nb"));
        let Json::Object(members) = &doc else {
            panic!("an object")
        };
        assert!(members.iter().all(|(k, _)| matches!(k, Cow::Borrowed(_))));
    }

    /// What `all_strings` computed when inputs were parsed into `Value`.
    fn all_strings_of_value(v: &serde_json::Value, out: &mut String) {
        use serde_json::Value;
        match v {
            Value::String(s) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(s);
            }
            Value::Array(a) => a.iter().for_each(|x| all_strings_of_value(x, out)),
            Value::Object(o) => o.values().for_each(|x| all_strings_of_value(x, out)),
            Value::Number(n) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&n.to_string());
            }
            _ => {}
        }
    }

    #[test]
    fn the_words_of_a_value_come_in_the_order_earlier_versions_fingerprinted() {
        let doc =
            r#"{"zeta":"last","alpha":["one",2,{"y":"why","x":"ex"}],"alpha":"again","mid":null}"#;
        let mut ours = String::new();
        all_strings(&Json::parse(doc.as_bytes()).expect("parses"), &mut ours);
        let mut theirs = String::new();
        all_strings_of_value(&serde_json::from_str(doc).expect("parses"), &mut theirs);
        assert_eq!(ours, theirs);
        assert_eq!(ours, "again\nlast");
    }

    #[test]
    fn what_serde_json_refused_is_refused() {
        let deep = "[".repeat(100_000);
        let refused: [&[u8]; 8] = [
            b"{\"a\":1} trailing",
            b"{\"a\":\"\xff\xfe\"}",
            b"{\"a\":\"\\ud800\"}",
            b"{\"a\":01}",
            b"{\"a\":1,}",
            b"{'a':1}",
            b"",
            deep.as_bytes(),
        ];
        for doc in refused {
            let ours = Json::parse(doc).is_err();
            let theirs = serde_json::from_slice::<serde_json::Value>(doc).is_err();
            assert!(
                ours && theirs,
                "{:?}",
                String::from_utf8_lossy(&doc[..doc.len().min(40)])
            );
        }
    }

    /// Numbers print as they did when serde_json parsed them (fingerprints
    /// hash the printed form). One known difference: sonic-rs reads `-0.0`
    /// as `0.0`, which no send result carries.
    #[test]
    fn numbers_read_as_serde_json_reads_them() {
        let doc = br#"[18446744073709551615,-9223372036854775808,1.5e300,123456789012345678901234567890,0.0,-1.25,5e-324,1E2]"#;
        let ours = Json::parse(doc).expect("parses").canonical();
        let value: serde_json::Value = serde_json::from_slice(doc).expect("parses");
        assert_eq!(ours, value.to_string());
    }

    #[test]
    fn a_repeated_key_reads_as_its_last_value() {
        let doc = Json::parse(br#"{"k":1,"k":2}"#).expect("parses");
        assert_eq!(doc.get("k").and_then(Json::as_i64), Some(2));
    }
}
