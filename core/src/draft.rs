//! Turning a connection draft (JSON from a form or an API client) into a checked
//! [`ConnectionConfig`], and back into a redacted JSON view.
//!
//! Core owns the generic half of validation so every provider behaves the same: the common
//! fields (`name`, `enabled`, `pollIntervalSeconds`), type and bound checks driven by the
//! provider's [`FieldSpec`]s, unknown-field rejection, required fields, defaults and the masked
//! secret semantics. The provider then normalises its own fields in
//! [`crate::Provider::validate`].

use crate::descriptor::{FieldDefault, FieldKind, FieldSpec, PlatformDescriptor};
use crate::secret::SecretString;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Bounds of `pollIntervalSeconds`, enforced by the server.
pub const POLL_INTERVAL_RANGE: std::ops::RangeInclusive<i64> = 10..=3600;
/// Interval used when a draft does not say.
pub const DEFAULT_POLL_INTERVAL_SECONDS: u32 = 60;
/// Longest connection name accepted.
pub const MAX_NAME_LENGTH: usize = 128;

/// Field names owned by core rather than by a provider.
const COMMON_FIELDS: [&str; 3] = ["name", "enabled", "pollIntervalSeconds"];

/// A checked connection configuration: common fields, the provider's non-secret settings
/// (defaults applied) and its secrets.
#[derive(Clone, PartialEq)]
pub struct ConnectionConfig {
    pub name: String,
    pub enabled: bool,
    pub poll_interval_seconds: u32,
    /// Non-secret provider fields, by JSON name. Unset optional fields are absent.
    pub settings: Map<String, Value>,
    /// Secret provider fields, by JSON name. Unset or cleared secrets are absent.
    pub secrets: BTreeMap<String, SecretString>,
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets print as masks through `SecretString`'s own `Debug`.
        f.debug_struct("ConnectionConfig")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("poll_interval_seconds", &self.poll_interval_seconds)
            .field("settings", &self.settings)
            .field("secrets", &self.secrets)
            .finish()
    }
}

impl ConnectionConfig {
    /// A string setting, if present.
    pub fn str_setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).and_then(Value::as_str)
    }

    /// A boolean setting, if present.
    pub fn bool_setting(&self, name: &str) -> Option<bool> {
        self.settings.get(name).and_then(Value::as_bool)
    }

    /// An integer setting, if present.
    pub fn int_setting(&self, name: &str) -> Option<i64> {
        self.settings.get(name).and_then(Value::as_i64)
    }

    /// A secret, if set.
    pub fn secret(&self, name: &str) -> Option<&SecretString> {
        self.secrets.get(name)
    }

    /// The configuration as shown to admins: every field, with each set secret replaced by
    /// the mask and unset secrets omitted.
    pub fn redacted_json(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("name".into(), Value::String(self.name.clone()));
        out.insert("enabled".into(), Value::Bool(self.enabled));
        out.insert(
            "pollIntervalSeconds".into(),
            Value::from(self.poll_interval_seconds),
        );
        for (key, value) in &self.settings {
            out.insert(key.clone(), value.clone());
        }
        for key in self.secrets.keys() {
            out.insert(key.clone(), Value::String(SecretString::MASK.into()));
        }
        out
    }
}

/// What a draft says about one secret field.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretInput {
    /// The mask, `null` or an absent field: keep what is stored.
    Keep,
    /// An empty string: clear the stored secret.
    Clear,
    /// A new value.
    Set(SecretString),
}

impl SecretInput {
    fn from_json(value: Option<&Value>) -> Result<Self, &'static str> {
        match value {
            None | Some(Value::Null) => Ok(Self::Keep),
            Some(Value::String(s)) if s == SecretString::MASK => Ok(Self::Keep),
            Some(Value::String(s)) if s.is_empty() => Ok(Self::Clear),
            Some(Value::String(s)) => Ok(Self::Set(SecretString::new(s.clone()))),
            Some(_) => Err("must be a string"),
        }
    }
}

/// Field-level validation errors, keyed by the JSON field name. Messages never echo a
/// secret value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error for `field`; the first error recorded for a field wins, because it
    /// is usually the most basic one (wrong type before out of range).
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn merge(&mut self, other: FieldErrors) {
        for (field, message) in other.0 {
            self.add(field, message);
        }
    }

    /// `Ok(())` when no error was recorded.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.write_str(&parts.join("; "))
    }
}

/// Applies a JSON draft on top of `base` (a stored configuration) or, when `base` is `None`,
/// on top of the defaults. Absent fields keep the base value; `null` resets an optional
/// non-secret field to its default; secrets follow [`SecretInput`].
///
/// `id` is accepted and ignored because the id in the route wins. Every other unknown field
/// is an error. Required fields are checked after merging.
pub fn apply_draft(
    descriptor: &PlatformDescriptor,
    base: Option<&ConnectionConfig>,
    body: &Value,
) -> Result<ConnectionConfig, FieldErrors> {
    let mut errors = FieldErrors::new();
    let Some(object) = body.as_object() else {
        errors.add("body", "must be a JSON object");
        return Err(errors);
    };

    let mut config = match base {
        Some(base) => base.clone(),
        None => defaults(descriptor),
    };

    for key in object.keys() {
        let known =
            key == "id" || COMMON_FIELDS.contains(&key.as_str()) || descriptor.field(key).is_some();
        if !known {
            errors.add(key.clone(), "unknown field");
        }
    }

    apply_common_fields(object, base.is_none(), &mut config, &mut errors);

    for spec in descriptor.fields {
        let value = object.get(spec.name);
        if spec.secret {
            match SecretInput::from_json(value) {
                Ok(SecretInput::Keep) => {}
                Ok(SecretInput::Clear) => {
                    config.secrets.remove(spec.name);
                }
                Ok(SecretInput::Set(secret)) => {
                    if let FieldKind::Text { max_length }
                    | FieldKind::MultilineText { max_length } = spec.kind
                    {
                        if secret.expose().chars().count() > max_length {
                            errors.add(
                                spec.name,
                                format!("must be at most {max_length} characters"),
                            );
                            continue;
                        }
                    }
                    config.secrets.insert(spec.name.to_owned(), secret);
                }
                Err(message) => errors.add(spec.name, message),
            }
            continue;
        }
        match value {
            None => {}
            Some(Value::Null) => match default_value(spec) {
                Some(default) => {
                    config.settings.insert(spec.name.to_owned(), default);
                }
                None => {
                    config.settings.remove(spec.name);
                }
            },
            Some(value) => match check_value(spec, value) {
                Ok(Some(checked)) => {
                    config.settings.insert(spec.name.to_owned(), checked);
                }
                Ok(None) => {
                    config.settings.remove(spec.name);
                }
                Err(message) => errors.add(spec.name, message),
            },
        }
    }

    for spec in descriptor.fields.iter().filter(|s| s.required) {
        let present = if spec.secret {
            config.secrets.contains_key(spec.name)
        } else {
            config.settings.contains_key(spec.name)
        };
        if !present {
            errors.add(spec.name, "is required");
        }
    }

    errors.into_result().map(|()| config)
}

fn defaults(descriptor: &PlatformDescriptor) -> ConnectionConfig {
    let settings = descriptor
        .fields
        .iter()
        .filter(|spec| !spec.secret)
        .filter_map(|spec| default_value(spec).map(|v| (spec.name.to_owned(), v)))
        .collect();
    ConnectionConfig {
        name: String::new(),
        enabled: true,
        poll_interval_seconds: DEFAULT_POLL_INTERVAL_SECONDS,
        settings,
        secrets: BTreeMap::new(),
    }
}

fn default_value(spec: &FieldSpec) -> Option<Value> {
    spec.default.map(|d| match d {
        FieldDefault::Integer(i) => Value::from(i),
        FieldDefault::Boolean(b) => Value::Bool(b),
    })
}

fn apply_common_fields(
    object: &Map<String, Value>,
    is_new: bool,
    config: &mut ConnectionConfig,
    errors: &mut FieldErrors,
) {
    match object.get("name") {
        Some(Value::String(name)) => {
            let name = name.trim();
            if name.is_empty() {
                errors.add("name", "must not be empty");
            } else if name.chars().count() > MAX_NAME_LENGTH {
                errors.add(
                    "name",
                    format!("must be at most {MAX_NAME_LENGTH} characters"),
                );
            } else if name.chars().any(char::is_control) {
                errors.add("name", "must not contain control characters");
            } else {
                config.name = name.to_owned();
            }
        }
        Some(_) => errors.add("name", "must be a string"),
        None if is_new => errors.add("name", "is required"),
        None => {}
    }
    match object.get("enabled") {
        Some(Value::Bool(enabled)) => config.enabled = *enabled,
        Some(Value::Null) | None => {}
        Some(_) => errors.add("enabled", "must be true or false"),
    }
    match object.get("pollIntervalSeconds") {
        Some(Value::Null) | None => {}
        Some(value) => match value.as_i64() {
            Some(seconds) if POLL_INTERVAL_RANGE.contains(&seconds) => {
                // The range check above makes the conversion lossless.
                config.poll_interval_seconds = seconds as u32;
            }
            Some(_) => errors.add(
                "pollIntervalSeconds",
                format!(
                    "must be between {} and {} seconds",
                    POLL_INTERVAL_RANGE.start(),
                    POLL_INTERVAL_RANGE.end()
                ),
            ),
            None => errors.add("pollIntervalSeconds", "must be a whole number of seconds"),
        },
    }
}

/// Type- and bound-checks one non-secret value. `Ok(None)` means "unset" (an empty optional
/// string).
fn check_value(spec: &FieldSpec, value: &Value) -> Result<Option<Value>, String> {
    match spec.kind {
        FieldKind::Text { max_length } | FieldKind::MultilineText { max_length } => {
            let Value::String(s) = value else {
                return Err("must be a string".into());
            };
            let single_line = matches!(spec.kind, FieldKind::Text { .. });
            let s = if single_line { s.trim() } else { s.as_str() };
            if s.chars().count() > max_length {
                return Err(format!("must be at most {max_length} characters"));
            }
            if single_line && s.chars().any(char::is_control) {
                return Err("must be a single line without control characters".into());
            }
            if s.trim().is_empty() {
                return Ok(None);
            }
            Ok(Some(Value::String(s.to_owned())))
        }
        FieldKind::Integer { min, max } => match value.as_i64() {
            Some(i) if (min..=max).contains(&i) => Ok(Some(Value::from(i))),
            Some(_) => Err(format!("must be between {min} and {max}")),
            None => Err("must be a whole number".into()),
        },
        FieldKind::Boolean => match value {
            Value::Bool(b) => Ok(Some(Value::Bool(*b))),
            _ => Err("must be true or false".into()),
        },
    }
}

#[cfg(test)]
mod tests;
