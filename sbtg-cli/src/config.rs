//! Settings files under the command line: `--config sbtg.toml` or
//! `--config OUT/run.json`. A flag typed on the command line always wins; every other
//! setting comes from the file, else from the flag's default.
//!
//! Keys are the long flag names (`learning-rate = 1e-3`, `lags = [1, 2]`). In a TOML
//! file they may sit at the top level or in a table named after the command
//! (`[infer]`); in a `run.json` they are its `config`. A key that is no setting of the
//! command, or a value of the wrong type, is an error naming the file and the key.

use std::path::Path;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::ArgMatches;
use sbtg_core::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// What a settings file holds for one command.
pub struct Settings {
    pub values: Map<String, Value>,
    /// Worker threads recorded in a `run.json`.
    pub threads: Option<usize>,
}

fn bad(path: &Path, field: &str, message: impl Into<String>) -> anyhow::Error {
    Error::format(path, field, message.into()).into()
}

/// Reads the settings of `command` from a TOML file or a `run.json` manifest.
pub fn read(path: &Path, command: &str) -> Result<Settings> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            bad(
                path,
                "--config",
                "no such file; give a settings TOML file or the run.json of an earlier run",
            )
        } else {
            Error::read(path, e).into()
        }
    })?;
    let is_json =
        path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
    let value: Value = if is_json {
        serde_json::from_str(&text).map_err(|e| bad(path, "json", format!("{e}")))?
    } else {
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| bad(path, "toml", format!("{e}")))?;
        serde_json::to_value(table)?
    };
    let Value::Object(mut map) = value else {
        return Err(bad(path, "settings", "expected a table of settings"));
    };
    let mut threads = None;
    if map.get("format").and_then(Value::as_str) == Some(sbtg_core::io::manifest::MANIFEST_FORMAT) {
        let m = sbtg_core::io::manifest::Manifest::read(path)?;
        if m.command != command {
            return Err(bad(
                path,
                "command",
                format!(
                    "this manifest is of `sbtg {}`, not `sbtg {command}`",
                    m.command
                ),
            ));
        }
        threads = Some(m.threads);
        map = match m.config {
            Value::Object(c) => c,
            _ => return Err(bad(path, "config", "expected a table of settings")),
        };
    } else if let Some(Value::Object(sub)) = map.remove(command) {
        // `[infer]` table; top-level keys still apply.
        map.extend(sub);
    }
    if let Some(t) = map.remove("threads") {
        threads = Some(
            t.as_u64()
                .filter(|&t| t > 0)
                .ok_or_else(|| bad(path, "threads", "must be a whole number ≥ 1"))?
                as usize,
        );
    }
    Ok(Settings {
        values: map,
        threads,
    })
}

/// `args` with every setting of `file` that was not typed on the command line.
pub fn layer<T: Serialize + DeserializeOwned>(
    args: T,
    matches: &ArgMatches,
    file: &Path,
    settings: Settings,
) -> Result<T> {
    let Value::Object(mut merged) = serde_json::to_value(&args)? else {
        unreachable!("argument structs serialise to maps")
    };
    let known: Vec<String> = merged.keys().cloned().collect();
    for (key, value) in settings.values {
        if !merged.contains_key(&key) {
            return Err(bad(
                file,
                &key,
                format!(
                    "not a setting of this command; known settings: {}",
                    known.join(", ")
                ),
            ));
        }
        // Clap ids are the field names (snake_case); keys are the flags (kebab-case).
        let id = key.replace('-', "_");
        let typed = matches.try_get_raw(&id).is_ok()
            && matches.value_source(&id) == Some(ValueSource::CommandLine);
        if typed {
            continue;
        }
        merged.insert(key.clone(), value.clone());
        // Checked key by key so that the error names the key.
        if let Err(e) = serde_json::from_value::<T>(Value::Object(merged.clone())) {
            return Err(bad(
                file,
                &key,
                format!("{value} is not a valid value ({e})"),
            ));
        }
    }
    Ok(serde_json::from_value(Value::Object(merged))?)
}
