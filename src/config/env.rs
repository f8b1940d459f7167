//! `ROOST_<SECTION>_<KEY>` overrides, applied to the merged TOML tree before it is typed.
//!
//! Only keys that exist in the tree are looked up, so the set of honoured variables is exactly
//! the set of config keys (nested tables join with `_`: `ROOST_RATE_LIMITS_LOGIN_BURST`).
//! A value is parsed as the type the key already has; a mismatch is a [`Problem`].

use super::Problem;

pub(super) fn apply(
    tree: &mut toml::Value,
    getenv: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    let toml::Value::Table(root) = tree else {
        return;
    };
    for (section, value) in root.iter_mut() {
        walk(&mut vec![section.clone()], value, getenv, problems);
    }
}

fn walk(
    path: &mut Vec<String>,
    value: &mut toml::Value,
    getenv: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    if let toml::Value::Table(t) = value {
        for (k, v) in t.iter_mut() {
            path.push(k.clone());
            walk(path, v, getenv, problems);
            path.pop();
        }
        return;
    }
    let name = env_name(path);
    let Some(raw) = getenv(&name) else { return };
    match parse_like(value, &raw) {
        Ok(v) => *value = v,
        Err(why) => problems.push(Problem::env(&name, &path.join("."), &why)),
    }
}

pub(super) fn env_name(path: &[String]) -> String {
    format!("ROOST_{}", path.join("_").to_ascii_uppercase())
}

/// Parses `raw` as the same TOML type as `like`.
fn parse_like(like: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    use toml::Value as V;
    Ok(match like {
        V::String(_) => V::String(raw.to_owned()),
        V::Integer(_) => V::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("expected an integer, got {raw:?}"))?,
        ),
        V::Float(_) => V::Float(
            raw.trim()
                .parse()
                .map_err(|_| format!("expected a number, got {raw:?}"))?,
        ),
        V::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => V::Boolean(true),
            "false" | "0" | "no" | "off" => V::Boolean(false),
            _ => return Err(format!("expected true or false, got {raw:?}")),
        },
        // Lists: a TOML array (`["a", "b"]`) or a comma-separated list of strings.
        V::Array(_) => {
            let trimmed = raw.trim();
            if trimmed.starts_with('[') {
                let doc: toml::Table = format!("v = {trimmed}")
                    .parse()
                    .map_err(|e: toml::de::Error| format!("not a TOML array: {}", e.message()))?;
                doc["v"].clone()
            } else {
                V::Array(
                    trimmed
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| V::String(s.to_owned()))
                        .collect(),
                )
            }
        }
        V::Datetime(_) | V::Table(_) => {
            return Err("this key cannot be set from the environment".into())
        }
    })
}
