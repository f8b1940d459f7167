//! The server's icon: an admin uploads a square PNG (`PUT /api/v1/branding/icon`), everyone
//! gets it at `GET /branding/icon.png` (with an ETag), and the branding and the web app
//! manifest name it (`web::branding::Icon`).
//!
//! Only PNG is taken: its header says what it is and how big, an SVG is a document that can
//! carry script. The upload is checked before anything is stored: the PNG signature and
//! header chunk (else 415), at most [`MAX_ICON_BYTES`] (else 413), square and
//! [`MIN_ICON_PIXELS`] to [`MAX_ICON_PIXELS`] wide (else 400). The bytes live in the store's
//! `settings` table (key [`ICON_KEY`], base64 text), so backups and restores carry them.
//! Nothing here decodes the image itself; browsers do, served as `image/png` with `nosniff`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use crate::auth::users::Actor;
use crate::auth::{AuthState, CallerIp, RequireAdmin};
use crate::http::{ApiError, Json};
use crate::store::{Store, StoreError};
use crate::web::branding::{self, Branding, Icon};

/// The `settings` key holding the icon's bytes (base64: the column is text).
pub const ICON_KEY: &str = "web.branding.icon";
/// Where the icon is served.
pub const ICON_ROUTE: &str = "/branding/icon.png";
/// The largest icon taken. A good 512×512 icon is well under this; the limit keeps the
/// settings row, every backup and each first load small.
pub const MAX_ICON_BYTES: usize = 256 * 1024;
/// The smallest side phones accept for an installed app's icon.
pub const MIN_ICON_PIXELS: u32 = 192;
/// The largest side kept: bigger icons only cost bytes.
pub const MAX_ICON_PIXELS: u32 = 1024;

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Why an upload is not a usable icon.
#[derive(Debug, PartialEq, Eq)]
pub enum IconProblem {
    NotPng,
    TooLarge,
    BadDimensions { width: u32, height: u32 },
}

impl From<IconProblem> for ApiError {
    fn from(p: IconProblem) -> ApiError {
        match p {
            IconProblem::NotPng => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_icon",
                "the icon must be a PNG image",
            ),
            IconProblem::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "icon_too_large",
                format!("the icon must be at most {} KiB", MAX_ICON_BYTES / 1024),
            ),
            IconProblem::BadDimensions { width, height } => ApiError::bad_request(
                "invalid_icon_size",
                format!(
                    "the icon is {width}×{height} pixels; it must be square, \
                     {MIN_ICON_PIXELS} to {MAX_ICON_PIXELS} pixels wide"
                ),
            ),
        }
    }
}

/// The side of a square PNG icon of an allowed size, read from its header chunk, or why not.
pub fn check_png(bytes: &[u8]) -> Result<u32, IconProblem> {
    if bytes.len() > MAX_ICON_BYTES {
        return Err(IconProblem::TooLarge);
    }
    // Signature, then the IHDR chunk first: length 13, type, width and height (big-endian).
    let header_ok = bytes.len() >= 33
        && bytes.starts_with(PNG_SIGNATURE)
        && bytes[8..12] == [0, 0, 0, 13]
        && &bytes[12..16] == b"IHDR";
    // A complete file ends with the IEND chunk (its length, type and fixed CRC).
    let complete = bytes.ends_with(b"\0\0\0\0IEND\xae\x42\x60\x82");
    if !header_ok || !complete {
        return Err(IconProblem::NotPng);
    }
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (width, height) = (be(16), be(20));
    if width != height || !(MIN_ICON_PIXELS..=MAX_ICON_PIXELS).contains(&width) {
        return Err(IconProblem::BadDimensions { width, height });
    }
    Ok(width)
}

/// The icon's version: the first 16 hex digits of its SHA-256.
fn version_of(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    hex::encode(&digest.as_ref()[..8])
}

/// `PUT /api/v1/branding/icon` (admin): the body is the PNG itself.
#[utoipa::path(
    put,
    path = "/api/v1/branding/icon",
    operation_id = "uploadBrandingIcon",
    summary = "Upload the server's icon: a square PNG (admins)",
    tag = "branding",
    request_body(content = Vec<u8>, content_type = "image/png",
                 description = "A square PNG, 192 to 1024 pixels wide, at most 256 KiB"),
    responses(
        (status = 200, description = "The branding now, naming the new icon", body = Branding),
        (status = 400, description = "Not square, or smaller than 192 or larger than 1024 \
         pixels (`invalid_icon_size`)", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
        (status = 413, description = "Larger than 256 KiB (`icon_too_large`)",
         body = crate::http::ErrorBody),
        (status = 415, description = "Not a PNG image, whatever its name or content type \
         (`unsupported_icon`)", body = crate::http::ErrorBody),
    )
)]
pub async fn upload(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    RequireAdmin(admin): RequireAdmin,
    ip: CallerIp,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Branding>, ApiError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if declared.as_deref().is_some_and(|t| t != "image/png") {
        return Err(IconProblem::NotPng.into());
    }
    // One byte more than allowed is enough to know it is too big.
    let bytes = axum::body::to_bytes(body, MAX_ICON_BYTES + 1)
        .await
        .map_err(|_| ApiError::from(IconProblem::TooLarge))?;
    let size = check_png(&bytes)?;
    let version = version_of(&bytes);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let actor = Actor::caller(&admin, ip);
    let now_ms = auth.now_ms();
    let stored_bytes = bytes.len();
    let branding = store
        .write(move |conn| {
            conn.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                                                 updated_at = excluded.updated_at",
                params![ICON_KEY, encoded, now_ms / 1000],
            )?;
            let mut branding = branding::read(conn)?;
            branding.icon = Some(Icon {
                url: format!("{ICON_ROUTE}?v={version}"),
                size,
                version,
            });
            branding::save(conn, &branding, now_ms / 1000)?;
            crate::audit::record(
                conn,
                &actor
                    .event("branding.icon_updated", now_ms)
                    .target("branding")
                    .detail(json!({ "size": size, "bytes": stored_bytes })),
            )?;
            Ok::<_, StoreError>(branding)
        })
        .await?;
    Ok(Json(branding))
}

/// `DELETE /api/v1/branding/icon` (admin): back to the built-in icon.
#[utoipa::path(
    delete,
    path = "/api/v1/branding/icon",
    operation_id = "deleteBrandingIcon",
    summary = "Go back to the built-in icon (admins)",
    tag = "branding",
    responses(
        (status = 200, description = "The branding now, without an icon", body = Branding),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn remove(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    RequireAdmin(admin): RequireAdmin,
    ip: CallerIp,
) -> Result<Json<Branding>, ApiError> {
    let actor = Actor::caller(&admin, ip);
    let now_ms = auth.now_ms();
    let branding = store
        .write(move |conn| {
            conn.execute("DELETE FROM settings WHERE key = ?1", [ICON_KEY])?;
            let mut branding = branding::read(conn)?;
            branding.icon = None;
            branding::save(conn, &branding, now_ms / 1000)?;
            crate::audit::record(
                conn,
                &actor
                    .event("branding.icon_removed", now_ms)
                    .target("branding"),
            )?;
            Ok::<_, StoreError>(branding)
        })
        .await?;
    Ok(Json(branding))
}

/// What `GET /branding/icon.png` found.
enum Found {
    None,
    Unchanged,
    Icon { etag: String, bytes: Vec<u8> },
}

fn find(conn: &Connection, if_none_match: Option<&str>) -> Result<Found, StoreError> {
    let Some(icon) = branding::read(conn)?.icon else {
        return Ok(Found::None);
    };
    let etag = format!("\"{}\"", icon.version);
    if if_none_match.is_some_and(|v| {
        v.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*")
    }) {
        return Ok(Found::Unchanged);
    }
    let stored: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [ICON_KEY],
            |r| r.get(0),
        )
        .optional()?;
    // A row edited by hand into something that is not base64 is no icon.
    Ok(stored
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .map_or(Found::None, |bytes| Found::Icon { etag, bytes }))
}

/// `GET /branding/icon.png`: the uploaded icon, revalidated with its ETag.
#[utoipa::path(
    get,
    path = "/branding/icon.png",
    operation_id = "getBrandingIcon",
    summary = "The server's uploaded icon",
    tag = "branding",
    security(()),
    responses(
        (status = 200, description = "The icon", body = Vec<u8>, content_type = "image/png",
         headers(("ETag" = String, description = "Changes with the icon"))),
        (status = 304, description = "The icon named by `If-None-Match` is still the one"),
        (status = 404, description = "No icon was uploaded: the built-in one is `/icon.svg` \
         (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn serve(State(store): State<Store>, headers: HeaderMap) -> Result<Response, ApiError> {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let found = store
        .read(move |conn| find(conn, if_none_match.as_deref()))
        .await?;
    let no_cache = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    match found {
        Found::None => Err(ApiError::not_found()),
        Found::Unchanged => Ok((StatusCode::NOT_MODIFIED, [no_cache]).into_response()),
        Found::Icon { etag, bytes } => {
            let etag = HeaderValue::from_str(&etag).expect("quoted hex digits are a valid header");
            Ok((
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
                    no_cache,
                    (header::ETAG, etag),
                ],
                bytes,
            )
                .into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG header of `w`×`h` followed by the IEND chunk: enough for [`check_png`].
    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = PNG_SIGNATURE.to_vec();
        b.extend_from_slice(&[0, 0, 0, 13]);
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(b"\0\0\0\0IEND\xae\x42\x60\x82");
        b
    }

    #[test]
    fn only_square_pngs_of_a_usable_size_pass() {
        assert_eq!(check_png(&png(512, 512)), Ok(512));
        assert_eq!(check_png(&png(192, 192)), Ok(192));
        assert_eq!(
            check_png(&png(512, 256)),
            Err(IconProblem::BadDimensions {
                width: 512,
                height: 256
            })
        );
        assert!(check_png(&png(128, 128)).is_err());
        assert!(check_png(&png(2048, 2048)).is_err());
        let jpeg = b"\xff\xd8\xff\xe0\0\x10JFIF\0".repeat(10);
        assert_eq!(check_png(&jpeg), Err(IconProblem::NotPng));
        let cut_short = &png(512, 512)[..40];
        assert_eq!(check_png(cut_short), Err(IconProblem::NotPng));
        let mut big = png(512, 512);
        big.resize(MAX_ICON_BYTES + 1, 0);
        assert_eq!(check_png(&big), Err(IconProblem::TooLarge));
    }
}
