//! `GET /api/v1/attachments/{id}`: serves an attachment to those who may see it.
//!
//! Who: the uploader, members of a room where a (not deleted) message shows it, and admins
//! (but not a file shown in a direct message, which is private to its two people); anyone else gets 404 (not 403, so ids reveal nothing). How: streamed from disk, one `Range`
//! (`bytes=a-b`, `a-`, `-n`) answered with 206, an unsatisfiable one with 416, several ranges
//! with the whole file. Always `X-Content-Type-Options: nosniff` and a sandboxing CSP; only
//! PNG, JPEG, GIF and WebP are `inline`, everything else `attachment`.

use std::io::SeekFrom;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use rusqlite::{params, OptionalExtension};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::FilesError;
use crate::api::AppState;
use crate::auth::{Principal, Role};
use crate::http::ApiError;

/// Types shown inline: images browsers render without running anything.
const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

struct Found {
    sha256: String,
    size: u64,
    content_type: String,
    name: String,
}

/// The byte range to serve, inclusive; `Ok(None)` for the whole file.
pub fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, FilesError> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None); // another unit: ignored, as RFC 9110 allows
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: the whole file instead of multipart
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let unsatisfiable = || FilesError::RangeNotSatisfiable(size);
    let range = if start.is_empty() {
        // The last `end` bytes.
        let Ok(n) = end.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let Ok(first) = start.parse::<u64>() else {
            return Ok(None);
        };
        let last = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            match end.parse::<u64>() {
                Ok(l) if l >= first => l.min(size.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        if first >= size {
            return Err(unsatisfiable());
        }
        (first, last)
    };
    Ok(Some(range))
}

/// `filename="ascii"; filename*=UTF-8''percent-encoded` for Content-Disposition. Public for
/// the `attachment_meta` fuzz target only.
#[doc(hidden)]
pub fn disposition(kind: &str, name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `GET /api/v1/attachments/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/attachments/{id}",
    operation_id = "downloadAttachment",
    summary = "Download a file",
    tag = "attachments",
    params(
        ("id" = i64, Path, example = 1, description = "The attachment's id"),
        ("Range" = Option<String>, Header, description = "One byte range (`bytes=a-b`, `a-`, \
         `-n`); several ranges get the whole file"),
    ),
    responses(
        (status = 200, description = "The file, with the type it was recognised as",
         content(("*/*"))),
        (status = 206, description = "The requested range", content(("*/*")),
         headers(("Content-Range" = String, description = "`bytes a-b/size`"))),
        (status = 404, description = "No such attachment, or one the caller may not see \
         (`not_found`)", body = crate::http::ErrorBody),
        (status = 416, description = "The range starts past the end (`range_not_satisfiable`)",
         body = crate::http::ErrorBody,
         headers(("Content-Range" = String, description = "`bytes */size`"))),
    )
)]
pub async fn download(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (user_id, admin) = (who.user_id, who.role == Role::Admin);
    let found = app
        .store
        .read(move |conn| {
            conn.prepare_cached(
                "SELECT a.sha256, a.size, a.content_type, a.name FROM attachments a
                  WHERE a.id = ?1 AND (a.uploader_id = ?2
                     OR (?3 AND NOT EXISTS (
                        SELECT 1 FROM message_attachments ma
                          JOIN messages m ON m.id = ma.message_id
                          JOIN rooms r ON r.id = m.room_id AND r.kind = 'dm'
                         WHERE ma.attachment_id = a.id))
                     OR EXISTS (
                        SELECT 1 FROM message_attachments ma
                          JOIN messages m ON m.id = ma.message_id AND m.deleted_at IS NULL
                          JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = ?2
                         WHERE ma.attachment_id = a.id))",
            )?
            .query_row(params![id, user_id, admin], |r| {
                Ok(Found {
                    sha256: r.get(0)?,
                    size: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    content_type: r.get(2)?,
                    name: r.get(3)?,
                })
            })
            .optional()
            .map_err(FilesError::from)
        })
        .await?
        .ok_or(FilesError::NotFound)?;

    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) => parse_range(v, found.size)?,
        None => None,
    };
    let path = app.files.path_of(&found.sha256);
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            tracing::warn!(
                attachment = id,
                "an attachment's file is missing from the store"
            );
            FilesError::NotFound
        } else {
            FilesError::io("opening an attachment")(e)
        }
    })?;
    let (status, start, len) = match range {
        Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        None => (StatusCode::OK, 0, found.size),
    };
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(FilesError::io("reading an attachment"))?;
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(len)));

    let content_type = if found.content_type == "text/plain" {
        "text/plain; charset=utf-8".to_owned()
    } else {
        found.content_type.clone()
    };
    let inline = INLINE_TYPES.contains(&found.content_type.as_str());
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{}\"", found.sha256))
        .header(header::CACHE_CONTROL, "private, max-age=86400")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        )
        .header(
            header::CONTENT_DISPOSITION,
            disposition(if inline { "inline" } else { "attachment" }, &found.name),
        );
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{}", start + len - 1, found.size),
        );
    }
    resp.body(body)
        .map_err(|e| ApiError::internal("building an attachment response", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-500", 100).unwrap(), Some((0, 99)));
        assert_eq!(parse_range("bytes=50-5000", 100).unwrap(), Some((50, 99)));
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=9-3", 100).unwrap(), None);
        assert!(matches!(
            parse_range("bytes=100-", 100),
            Err(FilesError::RangeNotSatisfiable(100))
        ));
        assert!(parse_range("bytes=-0", 100).is_err());
        assert!(parse_range("bytes=0-", 0).is_err());
    }

    #[test]
    fn dispositions_quote_safely() {
        let v = disposition("attachment", "réport \"q\".pdf");
        assert_eq!(
            v.to_str().unwrap(),
            "attachment; filename=\"r_port _q_.pdf\"; filename*=UTF-8''r%C3%A9port%20%22q%22.pdf"
        );
    }
}
