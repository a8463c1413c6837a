//! The golden projection: a reviewed JSON file of what the provider projects for the
//! fixture's known target, compared on every run and rewritten in bless mode.

use super::{Verdict, BLESS_ENV};
use crate::model::Projection;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Stands in for values that change between runs of the same target.
const VOLATILE: &str = "<volatile>";

/// The comparable form of a projection: ids (and relation targets) replaced by
/// `<type>/<name>` aliases, because a target's native identities may differ between starts
/// (stability within one target is the stable-ids check's job); resources sorted by alias;
/// observation times and the fixture's volatile fields masked.
pub(crate) fn normalise(projection: &Projection, volatile: &[&str]) -> Value {
    let aliases: BTreeMap<&str, String> = projection
        .resources
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                format!("{}/{}", r.resource_type.as_str(), r.name),
            )
        })
        .collect();
    let alias = |id: &str| {
        aliases
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("<unresolved {id}>"))
    };
    let mut resources: Vec<Value> = projection
        .resources
        .iter()
        .map(|resource| {
            let mut resource = resource.clone();
            resource.id = alias(&resource.id);
            for relation in &mut resource.relations {
                relation.target = alias(&relation.target);
            }
            let type_prefix = format!("{}/", resource.resource_type.as_str());
            let mut value = serde_json::to_value(&resource).unwrap_or(Value::Null);
            if let Some(object) = value.as_object_mut() {
                mask(object, "lastSeenAt");
                for key in volatile {
                    // `storage/details.url` applies to one type; `details.url` to all.
                    let key = match key.split_once('/') {
                        Some((_, rest)) if key.starts_with(&type_prefix) => rest,
                        Some(_) => continue,
                        None => key,
                    };
                    match key.split_once('.') {
                        Some((outer, inner)) => {
                            if let Some(Value::Object(nested)) = object.get_mut(outer) {
                                mask(nested, inner);
                            }
                        }
                        None => mask(object, key),
                    }
                }
            }
            value
        })
        .collect();
    resources.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    json!({
        "system": projection.system,
        "topology": projection.topology,
        "issues": projection.issues,
        "resources": resources,
    })
}

fn mask(object: &mut Map<String, Value>, key: &str) {
    if let Some(value) = object.get_mut(key) {
        *value = Value::String(VOLATILE.into());
    }
}

/// Compares `actual` with the golden file at `path`, or rewrites it in bless mode.
pub(crate) fn compare(path: &Path, actual: &Value) -> Verdict {
    let rendered = match serde_json::to_string_pretty(actual) {
        Ok(text) => text + "\n",
        Err(error) => return Verdict::Fail(format!("cannot render the projection: {error}")),
    };
    if std::env::var_os(BLESS_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, &rendered));
        return match written {
            Ok(()) => Verdict::Fail(format!(
                "blessed: rewrote {}; review the diff, then run again without {BLESS_ENV}",
                path.display()
            )),
            Err(error) => Verdict::Fail(format!("cannot write {}: {error}", path.display())),
        };
    }
    let expected = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            return Verdict::Fail(format!(
            "cannot read the golden file {} ({error}); create it with {BLESS_ENV}=1 and review it",
            path.display()
        ))
        }
    };
    let expected: Value = match serde_json::from_str(&expected) {
        Ok(value) => value,
        Err(error) => {
            return Verdict::Fail(format!("{} is not JSON: {error}", path.display()));
        }
    };
    if &expected == actual {
        Verdict::Pass
    } else {
        Verdict::Fail(format!(
            "the projection differs from {}: {}; if the change is intended, run with {BLESS_ENV}=1 and review the diff",
            path.display(),
            first_difference("", &expected, actual)
        ))
    }
}

/// A short description of the first place two JSON values differ.
fn first_difference(at: &str, expected: &Value, actual: &Value) -> String {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                match a.get(key) {
                    Some(av) if av != ev => {
                        return first_difference(&format!("{at}/{key}"), ev, av);
                    }
                    None => return format!("{at}/{key} is missing"),
                    _ => {}
                }
            }
            match a.keys().find(|k| !e.contains_key(*k)) {
                Some(key) => format!("{at}/{key} is unexpected"),
                None => format!("{at} differs"),
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find(|(_, (ev, av))| ev != av)
            .map_or_else(
                || format!("{at} differs"),
                |(i, (ev, av))| first_difference(&format!("{at}/{i}"), ev, av),
            ),
        (Value::Array(e), Value::Array(a)) => {
            format!("{at} has {} items, expected {}", a.len(), e.len())
        }
        _ => format!("{at} is {actual}, expected {expected}"),
    }
}
