//! Branding: the name, accent colour and icon an admin gives this server, which the web client
//! shows on its sign-in page, in its title and its theme, and which the web app manifest
//! (`GET /manifest.webmanifest`, built here from the branding) gives to phones that install
//! it. Kept in the store's `settings` table (key [`SETTINGS_KEY`]; the icon's bytes are
//! `web::icon`'s), so backups and restores carry it. Reading it needs no sign-in: the sign-in
//! page shows it.
//!
//! Only values that cannot break a page are stored: a name of printable characters and a
//! `#rrggbb` colour. Nothing here renders HTML.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::users::Actor;
use crate::auth::{AuthState, CallerIp, RequireAdmin};
use crate::http::{ApiError, Json};
use crate::store::{Store, StoreError};

/// The `settings` key of the branding (a JSON [`Branding`]).
pub const SETTINGS_KEY: &str = "web.branding";
/// Longest app name, in characters: it has to fit a phone's title bar.
const MAX_APP_NAME_CHARS: usize = 40;

/// How the web client presents this server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Branding {
    /// Shown on the sign-in page and in the title.
    #[schema(example = "Roost", min_length = 1, max_length = 40)]
    pub app_name: String,
    /// The theme's accent colour, `#rrggbb` (lowercase).
    #[schema(example = "#2e7d5b", pattern = "^#[0-9a-f]{6}$")]
    pub accent_color: String,
    /// The icon an admin uploaded (`PUT /api/v1/branding/icon`); absent: the built-in icon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<Icon>,
}

/// An uploaded icon: a square PNG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Icon {
    /// Where it is served; the query changes with the icon, so caches never mix two.
    #[schema(example = "/branding/icon.png?v=3f2a9c0d1e4b5a6f")]
    pub url: String,
    /// Width and height in pixels.
    #[schema(example = 512)]
    pub size: u32,
    /// The first 16 hex digits of its SHA-256: its ETag.
    #[schema(example = "3f2a9c0d1e4b5a6f")]
    pub version: String,
}

impl Default for Branding {
    fn default() -> Branding {
        Branding {
            app_name: "Roost".to_owned(),
            accent_color: "#2e7d5b".to_owned(),
            icon: None,
        }
    }
}

/// A change to the branding; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingPatch {
    /// 1 to 40 characters, no control or bidi override characters (trimmed).
    #[schema(max_length = 40)]
    pub app_name: Option<String>,
    /// `#rrggbb`.
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub accent_color: Option<String>,
}

impl BrandingPatch {
    /// `current` with the patch applied, or why the patch is refused.
    fn apply(&self, mut current: Branding) -> Result<Branding, ApiError> {
        if let Some(name) = &self.app_name {
            let name = name.trim();
            let chars = name.chars().count();
            // Bidi overrides would reorder the text around the name wherever it is shown.
            let unsafe_char = |c: char| {
                c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            };
            if chars == 0 || chars > MAX_APP_NAME_CHARS || name.chars().any(unsafe_char) {
                return Err(ApiError::bad_request(
                    "invalid_app_name",
                    format!(
                        "the app name must be 1 to {MAX_APP_NAME_CHARS} characters without \
                         control or bidi characters"
                    ),
                ));
            }
            current.app_name = name.to_owned();
        }
        if let Some(color) = &self.accent_color {
            let hex = color.strip_prefix('#').unwrap_or("");
            if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ApiError::bad_request(
                    "invalid_accent_color",
                    "the accent colour must be #rrggbb",
                ));
            }
            current.accent_color = color.to_ascii_lowercase();
        }
        Ok(current)
    }
}

/// The stored branding, or the defaults. A value that does not parse (written by hand) is
/// read as the defaults rather than failing every page load.
pub fn read(conn: &Connection) -> Result<Branding, StoreError> {
    let stored: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [SETTINGS_KEY],
            |r| r.get(0),
        )
        .optional()?;
    Ok(stored
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default())
}

/// Stores `branding` (inside the caller's write).
pub fn save(conn: &Connection, branding: &Branding, now_secs: i64) -> Result<(), StoreError> {
    let value = serde_json::to_string(branding).expect("a struct of strings always serialises");
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                                         updated_at = excluded.updated_at",
        params![SETTINGS_KEY, value, now_secs],
    )?;
    Ok(())
}

/// `GET /api/v1/branding`: the server's name and accent colour, for anyone.
#[utoipa::path(
    get,
    path = "/api/v1/branding",
    operation_id = "getBranding",
    summary = "The server's name and accent colour",
    tag = "branding",
    security(()),
    responses((status = 200, description = "The branding (defaults until an admin sets it)",
               body = Branding)),
)]
pub async fn get(State(store): State<Store>) -> Result<Json<Branding>, ApiError> {
    Ok(Json(store.read(read).await?))
}

/// `PATCH /api/v1/branding` (admin): changes the name and/or the accent colour.
#[utoipa::path(
    patch,
    path = "/api/v1/branding",
    operation_id = "updateBranding",
    summary = "Change the server's name or accent colour (admins)",
    tag = "branding",
    request_body = BrandingPatch,
    responses(
        (status = 200, description = "The branding now", body = Branding),
        (status = 400, description = "A name that is empty, too long or has control characters \
         (`invalid_app_name`), or a colour that is not #rrggbb (`invalid_accent_color`)",
         body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn update(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    RequireAdmin(admin): RequireAdmin,
    ip: CallerIp,
    Json(patch): Json<BrandingPatch>,
) -> Result<Json<Branding>, ApiError> {
    // Refused before the write: a bad value never queues behind other writers.
    patch.apply(Branding::default())?;
    let actor = Actor::caller(&admin, ip);
    let now_ms = auth.now_ms();
    let branding = store
        .write(move |conn| {
            let branding = patch.apply(read(conn)?)?;
            save(conn, &branding, now_ms / 1000)?;
            crate::audit::record(
                conn,
                &actor
                    .event("branding.updated", now_ms)
                    .target("branding")
                    .detail(json!({
                        "app_name": branding.app_name,
                        "accent_color": branding.accent_color,
                    })),
            )?;
            Ok::<_, ApiError>(branding)
        })
        .await?;
    Ok(Json(branding))
}

/// The manifest's description, the same as the built-in one had.
const MANIFEST_DESCRIPTION: &str = "Private chat and calls for your group";
/// The built-in icon, from `web/public/`.
const DEFAULT_ICON: &str = "/icon.svg";

/// The web app manifest for `branding`: its name, theme colour and icon (the built-in icon
/// when none was uploaded).
pub fn web_manifest(branding: &Branding) -> serde_json::Value {
    let icons = match &branding.icon {
        Some(icon) => json!([
            { "src": icon.url, "sizes": format!("{0}x{0}", icon.size), "type": "image/png",
              "purpose": "any" },
        ]),
        None => json!([
            { "src": DEFAULT_ICON, "sizes": "any", "type": "image/svg+xml", "purpose": "any" },
            { "src": DEFAULT_ICON, "sizes": "any", "type": "image/svg+xml", "purpose": "maskable" },
        ]),
    };
    json!({
        "name": branding.app_name,
        "short_name": branding.app_name,
        "description": MANIFEST_DESCRIPTION,
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": branding.accent_color,
        "icons": icons,
    })
}

/// `GET /manifest.webmanifest`: the installable app's manifest, made from the branding.
#[utoipa::path(
    get,
    path = "/manifest.webmanifest",
    operation_id = "getWebManifest",
    summary = "The web app manifest: the server's name, theme colour and icon",
    tag = "branding",
    security(()),
    responses((status = 200, description = "The manifest (revalidated on each use)",
               body = Object, content_type = "application/manifest+json")),
)]
pub async fn manifest(State(store): State<Store>) -> Result<Response, ApiError> {
    let branding = store.read(read).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/manifest+json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        web_manifest(&branding).to_string(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_keeps_what_it_does_not_name_and_refuses_bad_values() {
        let patch = BrandingPatch {
            app_name: Some("  Our Club ".into()),
            accent_color: None,
        };
        let b = patch.apply(Branding::default()).unwrap();
        assert_eq!(b.app_name, "Our Club");
        assert_eq!(b.accent_color, Branding::default().accent_color);
        let patch = BrandingPatch {
            app_name: None,
            accent_color: Some("#AABBCC".into()),
        };
        assert_eq!(patch.apply(b).unwrap().accent_color, "#aabbcc");
        for (name, color, code) in [
            (Some(""), None, "invalid_app_name"),
            (Some("a\u{202e}b"), None, "invalid_app_name"),
            (Some("a\nb"), None, "invalid_app_name"),
            (Some(&"x".repeat(41)[..]), None, "invalid_app_name"),
            (None, Some("red"), "invalid_accent_color"),
            (None, Some("#12345"), "invalid_accent_color"),
            (None, Some("#12345g"), "invalid_accent_color"),
        ] {
            let patch = BrandingPatch {
                app_name: name.map(str::to_owned),
                accent_color: color.map(str::to_owned),
            };
            let err = patch.apply(Branding::default()).unwrap_err();
            assert_eq!(err.code, code, "{name:?} {color:?}");
        }
    }
}
