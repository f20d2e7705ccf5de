//! Small helpers to read a `serde_json::Value` with errors that name the
//! field path.

use crate::error::ParseError;
use serde_json::Value;

/// A value together with its path from the document root, for errors.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) value: &'a Value,
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
    pub(crate) fn new(value: &'a Value, path: &'a str) -> At<'a> {
        At { value, path }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    /// A string field; numbers are accepted and written as text (ids are
    /// sometimes sent as numbers).
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<String>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(ParseError::field(
                join(self.path, key),
                format!("expected a string, found {}", kind(other)),
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

    pub(crate) fn object(&self, key: &str) -> Result<Option<&'a Value>, ParseError> {
        match self.get(key) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v)),
            Some(other) => Err(ParseError::field(
                join(self.path, key),
                format!("expected an object, found {}", kind(other)),
            )),
        }
    }
}

/// Walks down a chain of keys leniently.
pub(crate) fn dig<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in keys {
        cur = cur.get(*k)?;
    }
    (!cur.is_null()).then_some(cur)
}

pub(crate) fn dig_str(v: &Value, keys: &[&str]) -> Option<String> {
    match dig(v, keys)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every string value under `v`, in document order, for full-text search.
pub(crate) fn all_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        }
        Value::Array(a) => a.iter().for_each(|x| all_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| all_strings(x, out)),
        Value::Number(n) => {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&n.to_string());
        }
        _ => {}
    }
}
