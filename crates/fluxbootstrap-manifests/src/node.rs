//! The in-memory YAML tree the renderer transforms, and the parser that builds it.
//!
//! Kustomize round-trips every object through JSON before printing it, so the only facts
//! that survive are the JSON ones: mapping keys are strings, scalars are null, booleans,
//! numbers or strings, and the input's quoting style is lost. This tree keeps exactly that,
//! which is what lets [`crate::emit`] reproduce kustomize's output from it.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

/// One YAML/JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
}

/// A mapping with string keys, in insertion order (the emitter sorts).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Map(pub(crate) Vec<(String, Node)>);

impl Map {
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, replacing an existing value in place.
    pub(crate) fn insert(&mut self, key: &str, value: Node) {
        match self.get_mut(key) {
            Some(slot) => *slot = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    /// The mapping under `key`, created (or replacing a non-mapping) when needed.
    pub(crate) fn map_entry(&mut self, key: &str) -> &mut Map {
        if !matches!(self.get(key), Some(Node::Map(_))) {
            self.insert(key, Node::Map(Map::default()));
        }
        match self.get_mut(key) {
            Some(Node::Map(map)) => map,
            _ => unreachable!("the entry was made a mapping just above"),
        }
    }
}

impl Node {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_map(&self) -> Option<&Map> {
        match self {
            Node::Map(m) => Some(m),
            _ => None,
        }
    }

    pub(crate) fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Node::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Follows a path of mapping keys.
    pub(crate) fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter()
            .try_fold(self, |node, key| node.as_map().and_then(|m| m.get(key)))
    }

    pub(crate) fn path_mut(&mut self, keys: &[&str]) -> Option<&mut Node> {
        keys.iter().try_fold(self, |node, key| {
            node.as_map_mut().and_then(|m| m.get_mut(key))
        })
    }

    pub(crate) fn str_at(&self, keys: &[&str]) -> Option<&str> {
        self.path(keys).and_then(Node::as_str)
    }

    /// Converts to JSON (what the cluster apply path consumes).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Node::Null => serde_json::Value::Null,
            Node::Bool(b) => serde_json::Value::Bool(*b),
            Node::Int(i) => serde_json::Value::from(*i),
            Node::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Node::Str(s) => serde_json::Value::String(s.clone()),
            Node::Seq(items) => serde_json::Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(map) => serde_json::Value::Object(
                map.0
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Why a YAML stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The text is not valid YAML.
    #[error("invalid YAML")]
    Syntax(#[source] ScanError),
    /// An alias (`*name`) refers to no anchor.
    #[error("unknown YAML alias at byte {offset}")]
    Alias {
        /// Byte offset of the alias.
        offset: usize,
    },
}

/// Parses a multi-document YAML stream; empty documents (`---` with nothing, or only
/// comments) are skipped like kustomize and kubectl do.
pub(crate) fn parse_documents(input: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder::default();
    for item in Parser::new_from_str(input) {
        let (event, span) = item.map_err(YamlError::Syntax)?;
        builder.event(event, span.start.index())?;
    }
    Ok(builder
        .docs
        .into_iter()
        .filter(|doc| !matches!(doc, Node::Null))
        .collect())
}

enum Frame {
    Seq(Vec<Node>, usize),
    Map(Map, Option<String>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, offset: usize) -> Result<(), YamlError> {
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                let plain = matches!(style, ScalarStyle::Plain);
                let node = match tag.as_deref() {
                    Some(tag) if tag.suffix == "str" => Node::Str(value.into_owned()),
                    _ if plain => resolve_plain(&value),
                    _ => Node::Str(value.into_owned()),
                };
                self.push(node, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), anchor)),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Map::default(), None, anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(items, anchor)) => (Node::Seq(items), anchor),
                    Some(Frame::Map(map, _, anchor)) => (Node::Map(map), anchor),
                    None => return Ok(()),
                };
                self.push(node, anchor);
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or(YamlError::Alias { offset })?;
                self.push(node, 0);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, _)) => items.push(node),
            Some(Frame::Map(map, pending, _)) => match pending.take() {
                None => *pending = Some(key_string(node)),
                Some(key) => map.insert(&key, node),
            },
        }
    }
}

/// JSON keys are strings: non-string keys are printed the way JSON marshalling would.
fn key_string(node: Node) -> String {
    match node {
        Node::Str(s) => s,
        Node::Null => "null".to_owned(),
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => f.to_string(),
        other => other.to_json().to_string(),
    }
}

/// Resolves an unquoted scalar with the YAML 1.2 core schema (what kustomize's YAML
/// library uses when it reads the bundle).
pub(crate) fn resolve_plain(value: &str) -> Node {
    match value {
        "" | "~" | "null" | "Null" | "NULL" => return Node::Null,
        "true" | "True" | "TRUE" => return Node::Bool(true),
        "false" | "False" | "FALSE" => return Node::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Node::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Node::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Node::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(value) {
        return Node::Int(i);
    }
    if is_float_syntax(value)
        && let Ok(f) = value.parse::<f64>()
    {
        // JSON has one number type: an integral float prints as an integer.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "guarded by the range check"
        )]
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            return Node::Int(f as i64);
        }
        return Node::Float(f);
    }
    Node::Str(value.to_owned())
}

fn parse_int(value: &str) -> Option<i64> {
    let (negative, digits) = match value.as_bytes().first()? {
        b'-' => (true, &value[1..]),
        b'+' => (false, &value[1..]),
        _ => (false, value),
    };
    let parsed = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if negative { -parsed } else { parsed })
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
pub(crate) fn is_float_syntax(value: &str) -> bool {
    let b = value.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        i += 1;
        if i < b.len() && matches!(b[i], b'-' | b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_core_schema() {
        assert_eq!(resolve_plain("1000"), Node::Int(1000));
        assert_eq!(resolve_plain("true"), Node::Bool(true));
        assert_eq!(resolve_plain("yes"), Node::Str("yes".into()));
        assert_eq!(resolve_plain("1.5"), Node::Float(1.5));
        assert_eq!(resolve_plain("~"), Node::Null);
        assert_eq!(resolve_plain("v1.2"), Node::Str("v1.2".into()));
    }

    #[test]
    fn parses_multi_document_streams() {
        let docs = parse_documents("---\na: 1\n---\n# only a comment\n---\nb: [x, 'y']\n")
            .expect("valid YAML");
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[1].path(&["b"]),
            Some(&Node::Seq(vec![
                Node::Str("x".into()),
                Node::Str("y".into())
            ]))
        );
    }
}
