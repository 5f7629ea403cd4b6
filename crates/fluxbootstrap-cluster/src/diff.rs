//! Comparing a live object with its server-side-apply dry-run result.
//!
//! This is what lets a re-apply skip unchanged objects entirely (zero writes) and what
//! `--dry-run` shows. Fields the server owns and that change without any spec change
//! (managedFields, resourceVersion, status...) are ignored, and Secret values are masked.

use serde_json::{Map, Value};

/// Removes the fields that never indicate drift between `live` and a dry-run result.
pub(crate) fn normalize(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for key in [
                "managedFields",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "uid",
            ] {
                meta.remove(key);
            }
        }
    }
    object
}

/// One line per changed leaf, `~ path: old -> new`, `+ path: new` or `- path: old`;
/// `None` when the normalized objects are equal.
pub(crate) fn diff(live: &Value, desired: &Value) -> Option<String> {
    let secret = desired.get("kind").and_then(Value::as_str) == Some("Secret");
    let (live, desired) = (normalize(live.clone()), normalize(desired.clone()));
    if live == desired {
        return None;
    }
    let mut lines = Vec::new();
    walk("", &live, &desired, secret, &mut lines);
    Some(lines.join("\n"))
}

fn walk(path: &str, old: &Value, new: &Value, secret: bool, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => walk_maps(path, a, b, secret, out),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(&format!("{path}[{i}]"), x, y, secret, out);
            }
        }
        _ if old == new => {}
        _ => out.push(format!(
            "~ {path}: {} -> {}",
            show(path, old, secret),
            show(path, new, secret)
        )),
    }
}

fn walk_maps(
    path: &str,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    secret: bool,
    out: &mut Vec<String>,
) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    for (k, old) in a {
        match b.get(k) {
            Some(new) => walk(&join(k), old, new, secret, out),
            None => out.push(format!("- {}: {}", join(k), show(&join(k), old, secret))),
        }
    }
    for (k, new) in b {
        if !a.contains_key(k) {
            out.push(format!("+ {}: {}", join(k), show(&join(k), new, secret)));
        }
    }
}

fn show(path: &str, value: &Value, secret: bool) -> String {
    if secret && (path.starts_with("data") || path.starts_with("stringData")) {
        return "<redacted>".to_owned();
    }
    let text = value.to_string();
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(117).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn server_owned_fields_are_not_drift() {
        let live = json!({"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"1","managedFields":[1]},
            "data":{"k":"v"},"status":{"x":1}});
        let dry = json!({"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"2"},"data":{"k":"v"}});
        assert_eq!(diff(&live, &dry), None);
    }

    #[test]
    fn changes_are_listed_by_path() {
        let live = json!({"kind":"Deployment","spec":{"replicas":1,"template":{"args":["a","b"]},"gone":true}});
        let dry = json!({"kind":"Deployment","spec":{"replicas":2,"template":{"args":["a","c"]},"new":"x"}});
        assert_eq!(
            diff(&live, &dry).unwrap(),
            "- spec.gone: true\n~ spec.replicas: 1 -> 2\n~ spec.template.args[1]: \"b\" -> \"c\"\n+ spec.new: \"x\""
        );
    }

    #[test]
    fn secret_values_are_masked() {
        let live = json!({"kind":"Secret","data":{"password":"b2xk"}});
        let dry = json!({"kind":"Secret","data":{"password":"bmV3"}});
        assert_eq!(
            diff(&live, &dry).unwrap(),
            "~ data.password: <redacted> -> <redacted>"
        );
    }
}
