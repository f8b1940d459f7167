//! The OpenAPI 3.1 document of the public HTTPS surface, served at `GET /api/v1/openapi.json`.
//!
//! The document is generated from the code: every handler mounted by [`super::router`] carries a
//! `#[utoipa::path]` annotation beside it (its path, parameters, request body and the responses
//! it returns itself), and every type it reads or writes derives `utoipa::ToSchema` from the
//! same struct serde uses. [`ApiDoc`] lists the handlers; [`Common`] adds what the shared layers
//! answer on every route (bad credentials, rate limits, timeouts, unknown Host, low disk, body
//! cap) so that no handler has to repeat them. The tests below compare the document's paths and
//! methods with the routes `router` mounts (read from `api/mod.rs`), so a route cannot be added
//! without being documented.
//!
//! This module does not serve anything but the document and knows nothing about sockets. The
//! document depends only on the code, not on the configuration: it is built once per router,
//! on its first request ([`Document`]), and served as a precomputed body.

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::{header, HeaderValue};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, PathItem};
use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Schema, Type as SchemaType,
};
use utoipa::{Modify, OpenApi};

use crate::documented;
use crate::http::routes::Documented;

/// What the document says of the API as a whole. Its paths and schemas come from the routes
/// the modules register ([`document`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Roost",
        description = "The HTTP API of a Roost server: a private chat and calls server for a \
            Raspberry Pi. Everything under /api/v1 is JSON over HTTPS; every error is \
            {\"error\":{\"code\":\"snake_case\",\"message\":\"...\"}}. Times are RFC 3339 \
            strings. Send `Authorization: Bearer <access token or API key>`; a request that \
            carries a bad or expired one is refused with 401 before it is routed, so send \
            login, refresh, register and setup without it.",
        license(name = "MIT OR Apache-2.0"),
    ),
    components(schemas(crate::http::ErrorBody, crate::http::ErrorDetail)),
    security(("bearer" = [])),
    tags(
        (name = "health", description = "Liveness, readiness and the local CA certificate"),
        (name = "meta", description = "This document"),
        (name = "auth", description = "First admin, sign-in, sessions, passwords"),
        (name = "users", description = "Accounts (admins)"),
        (name = "invites", description = "Invite codes (admins)"),
        (name = "api-keys", description = "API keys for bots and integrations"),
        (name = "audit", description = "The audit log (admins)"),
        (name = "admin", description = "Server status and backups (admins)"),
        (name = "branding", description = "The server's name, accent colour, icon and web app \
            manifest (web client)"),
        (name = "rooms", description = "Rooms and their members"),
        (name = "messages", description = "Messages and search"),
        (name = "calls", description = "Calls in a room (LiveKit)"),
        (name = "attachments", description = "File uploads and downloads"),
        (name = "gateway", description = "The realtime WebSocket gateway"),
        (name = "webhooks", description = "Outgoing webhooks (admins) and incoming webhook URLs \
            (room moderators)"),
    )
)]
pub struct ApiDoc;

/// The shared responses [`Common`] adds, as `components.responses` entries:
/// (name, status, description, whether it always carries `Retry-After`).
const COMMON_RESPONSES: [(&str, &str, &str, bool); 10] = [
    (
        "BadRequest",
        "400",
        "Malformed input: a request with no Host or more than one (`missing_host`, \
         `duplicate_host`; any route), a path segment that is not a number (`bad_request`), a \
         bad query (`invalid_query`), a body that is not valid JSON (`malformed_json`) or not of \
         the documented shape (`invalid_body`), or a value the endpoint refuses (its own code).",
        false,
    ),
    (
        "Unauthorized",
        "401",
        "No credentials where required (`unauthenticated`), or an `Authorization` header that \
         does not check out: `invalid_token`, `token_expired` (refresh and retry). Any request \
         under /api/ with a bad header gets this, whatever the route.",
        false,
    ),
    (
        "Forbidden",
        "403",
        "The caller may not do this: an API key without the `read`/`write`/`admin` scope the \
         request needs (`insufficient_scope`), or the role or room role is too low.",
        false,
    ),
    (
        "RequestTimeout",
        "408",
        "The request was not answered within `limits.request_timeout_secs` (`request_timeout`).",
        false,
    ),
    (
        "PayloadTooLarge",
        "413",
        "The body is larger than `limits.max_body_bytes` (`payload_too_large`).",
        false,
    ),
    (
        "UnsupportedMediaType",
        "415",
        "A JSON body was sent without `Content-Type: application/json` (`unsupported_media_type`).",
        false,
    ),
    (
        "MisdirectedRequest",
        "421",
        "The Host header names no host this server answers for (`unknown_host`).",
        false,
    ),
    (
        "RateLimited",
        "429",
        "Too many requests of this kind from this address or account (`rate_limited`), or too \
         many failed sign-ins for this account from this address (`login_backoff`). Retry \
         after `Retry-After` seconds; `RateLimit-Limit`, `RateLimit-Remaining` and \
         `RateLimit-Reset` come with the limiter's refusals.",
        true,
    ),
    (
        "Unavailable",
        "503",
        "The server cannot do this now: it is shutting down (`shutting_down`), its storage \
         refuses writes (`storage_unavailable`), or too many password checks are waiting \
         (`busy`, with `Retry-After`).",
        false,
    ),
    (
        "InsufficientStorage",
        "507",
        "Free disk is below `storage.min_free_disk_mb`: writes are refused until space is freed \
         (`insufficient_storage`); reads keep working.",
        false,
    ),
];

/// Adds the bearer security scheme and, to every operation, the responses of the layers that
/// run before its handler (see [`super::surface`]): every route can time out (408), meet
/// an unknown Host (421), a missing or repeated Host (400) or fail unexpectedly (500);
/// everything under `/api/` is authenticated when a header is sent (401, 403 scope), rate
/// limited (429) and may find the server shutting down (503); writes under `/api/` are refused
/// on low disk (507) and over the body cap (413); endpoints with parameters or a body can be
/// sent malformed ones (400 too), and a JSON body needs its content type (415). A response the
/// handler documents itself is kept.
pub struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from /api/v1/auth/login (a JWT, 15 minutes), or an \
                         API key (`roost_<prefix>_<secret>`) from /api/v1/api-keys.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "refresh_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::browser::REFRESH_COOKIE,
                "The web client's refresh token (HttpOnly; Secure; SameSite=Strict; \
                 Path=/api/v1/auth), set by setup, login, register, password change and refresh \
                 when they carry `X-Roost-Client: web`. Read only by refresh and logout, and \
                 only with that header and, when the request has an `Origin`, this server's \
                 own; otherwise 403 `csrf`. The access token stays in the page's memory and is \
                 sent as a bearer token.",
            ))),
        );
        let error_schema = RefOr::<Schema>::Ref(Ref::from_schema_name("ErrorBody"));
        for (name, _, description, retry_after) in COMMON_RESPONSES {
            let mut response = ResponseBuilder::new().description(description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(error_schema.clone()))
                    .build(),
            );
            if retry_after {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(SchemaType::Integer)))
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                );
            }
            components
                .responses
                .insert(name.to_owned(), RefOr::T(response.build()));
        }
        components.responses.insert(
            "Internal".to_owned(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "An unexpected failure (`internal`); the cause is in the server log, \
                         never in the response.",
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(error_schema)).build(),
                    )
                    .build(),
            ),
        );

        for (path, item) in doc.paths.paths.iter_mut() {
            let api = path.starts_with("/api/");
            for (method, op) in operations_mut(item) {
                let write = !matches!(method, HttpMethod::Get | HttpMethod::Head);
                let json_body = op.request_body.as_ref().is_some_and(|b| match b {
                    RefOr::T(body) => body.content.contains_key("application/json"),
                    RefOr::Ref(_) => false,
                });
                add(op, "400", "BadRequest");
                add(op, "408", "RequestTimeout");
                add(op, "421", "MisdirectedRequest");
                add(op, "500", "Internal");
                if json_body {
                    add(op, "415", "UnsupportedMediaType");
                }
                if method == HttpMethod::Post && BROWSER_SESSION_PATHS.contains(&path.as_str()) {
                    op.parameters
                        .get_or_insert_with(Vec::new)
                        .push(RefOr::T(client_header()));
                }
                if api {
                    add(op, "401", "Unauthorized");
                    add(op, "403", "Forbidden");
                    add(op, "429", "RateLimited");
                    add(op, "503", "Unavailable");
                    if write {
                        add(op, "413", "PayloadTooLarge");
                        add(op, "507", "InsufficientStorage");
                    }
                }
            }
        }
    }
}

/// The POSTs that take `X-Roost-Client: web` (`auth::browser`): they set, read or clear the
/// refresh cookie.
const BROWSER_SESSION_PATHS: [&str; 6] = [
    "/api/v1/setup",
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/auth/password",
];

/// The `X-Roost-Client` header parameter of [`BROWSER_SESSION_PATHS`].
fn client_header() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(crate::auth::browser::CLIENT_HEADER)
        .parameter_in(ParameterIn::Header)
        .required(utoipa::openapi::Required::False)
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .enum_values(Some(["web"])),
        ))
        .description(Some(
            "`web` from the browser client: the refresh token travels in the `roost_refresh` \
             cookie instead of the body (refresh: send no body or `{}`; logout: the cookie's \
             session ends and the cookie is cleared). With it, an `Origin` other than this \
             server's is refused (403 `csrf`).",
        ))
        .build()
}

/// Every operation of a path item with its method.
fn operations_mut(item: &mut PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Options, item.options.as_mut()),
        (HttpMethod::Head, item.head.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Trace, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// Adds the shared response `name` under `status` unless the operation documents that status.
fn add(op: &mut Operation, status: &str, name: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
}

/// The serialized document, built on the first request for it and then shared by every
/// request. Not at startup: building it runs a large amount of generated code that a daemon
/// nobody asks for its schema would keep resident for nothing.
#[derive(Debug, Clone, Default)]
pub struct Document(Arc<OnceLock<Bytes>>);

impl Document {
    pub fn bytes(&self) -> &Bytes {
        self.0.get_or_init(|| {
            let json = document().to_json().expect(
                "the document is made of strings, maps and numbers, which always serialize",
            );
            Bytes::from(json)
        })
    }
}

/// The whole document: [`ApiDoc`], the paths and schemas of every documented route of the
/// HTTPS surface ([`super::public_routes`]), and the responses the shared layers add
/// ([`Common`]).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::public_routes().into_openapi());
    Common.modify(&mut doc);
    doc
}

/// `GET /api/v1/openapi.json`, with the document it serves (made on its first request).
pub fn route<S: Clone + Send + Sync + 'static>() -> Documented<S> {
    documented!(openapi_json).with_extension(Document::default())
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "getOpenApi",
    summary = "This OpenAPI document",
    tag = "meta",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API",
         body = Object, content_type = "application/json"),
    )
)]
pub async fn openapi_json(Extension(doc): Extension<Document>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        doc.bytes().clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    /// Routes `router` mounts that the document leaves out on purpose, with the reason.
    const UNDOCUMENTED: [(&str, &str); 4] = [
        (
            "/rtc",
            "LiveKit's signalling WebSocket, proxied unchanged to livekit-server",
        ),
        ("/rtc/{*rest}", "LiveKit's signalling, proxied unchanged"),
        ("/twirp/{*rest}", "LiveKit's Twirp API, proxied unchanged"),
        (
            "/assets/{*file}",
            "the web client's hashed files (web), not API",
        ),
    ];

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn document() -> Value {
        serde_json::from_slice(Document::default().bytes()).expect("the document is JSON")
    }

    /// A route is documented by being mounted with `Routes::api`; this checks that the only
    /// routes mounted otherwise on the HTTPS surface are the ones meant to be.
    #[test]
    fn only_the_proxy_and_the_assets_are_left_out_of_the_document() {
        let doc = document();
        let documented: BTreeSet<&str> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        let routes = super::super::public_routes();
        let mounted: BTreeSet<&str> = routes.paths().collect();
        let left_out: BTreeSet<&str> = mounted.difference(&documented).copied().collect();
        let expected: BTreeSet<&str> = UNDOCUMENTED.iter().map(|(path, _)| *path).collect();
        assert_eq!(left_out, expected, "routes mounted but not documented");
        let not_mounted: Vec<_> = documented.difference(&mounted).collect();
        assert!(
            not_mounted.is_empty(),
            "documented but not mounted: {not_mounted:?}"
        );
    }

    #[test]
    fn the_document_is_openapi_3_with_every_public_path() {
        let doc = document();
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "{}",
            doc["openapi"]
        );
        assert_eq!(doc["info"]["version"], crate::VERSION);
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/health",
            "/ready",
            "/ca.crt",
            "/api/v1/openapi.json",
            "/api/v1/setup",
            "/api/v1/auth/login",
            "/api/v1/auth/refresh",
            "/api/v1/auth/logout",
            "/api/v1/auth/register",
            "/api/v1/auth/password",
            "/api/v1/me",
            "/api/v1/users",
            "/api/v1/users/{id}",
            "/api/v1/invites",
            "/api/v1/invites/{id}",
            "/api/v1/api-keys",
            "/api/v1/api-keys/{id}",
            "/api/v1/api-keys/{id}/rotation",
            "/api/v1/api-keys/{id}/rotation/confirm",
            "/api/v1/audit",
            "/api/v1/rooms",
            "/api/v1/rooms/{id}",
            "/api/v1/rooms/{id}/members",
            "/api/v1/rooms/{id}/members/{user_id}",
            "/api/v1/rooms/{id}/read",
            "/api/v1/rooms/{id}/messages",
            "/api/v1/rooms/{id}/messages/{message_id}",
            "/api/v1/rooms/{id}/call",
            "/api/v1/rooms/{id}/call/token",
            "/api/v1/search",
            "/api/v1/attachments",
            "/api/v1/attachments/{id}",
            "/api/v1/gateway",
        ] {
            assert!(paths.contains_key(path), "{path} is not in the document");
        }
        let bearer = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(bearer["type"], "http");
        assert_eq!(bearer["scheme"], "bearer");
    }

    /// Every path parameter in a path template is declared, and every declared one is in it.
    #[test]
    fn path_parameters_match_their_templates() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let in_template: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert_eq!(in_template, declared, "{method} {path}");
            }
        }
    }

    #[test]
    fn operation_ids_are_unique_and_every_reference_resolves() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    let id = op["operationId"].as_str().expect("an operationId");
                    assert!(
                        ids.insert(id.to_owned()),
                        "operationId {id} twice ({method} {path})"
                    );
                }
            }
        }
        fn walk<'a>(v: &'a Value, refs: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        refs.push(r);
                    }
                    m.values().for_each(|v| walk(v, refs));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.strip_prefix('#').expect("only local references");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    /// Every error is `{"error":{"code","message"}}` (docs/api.md); the document says so for
    /// every 4xx and 5xx of every operation.
    #[test]
    fn every_error_response_has_the_error_shape() {
        let doc = document();
        let resolve = |v: &Value| -> Value {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => doc.pointer(r.strip_prefix('#').unwrap()).unwrap().clone(),
                None => v.clone(),
            }
        };
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                for (status, response) in op["responses"].as_object().unwrap() {
                    if !(status.starts_with('4') || status.starts_with('5')) {
                        continue;
                    }
                    if (path.as_str(), status.as_str()) == ("/ready", "503") {
                        continue; // the readiness report itself, with its failing checks
                    }
                    let response = resolve(response);
                    let schema = &response["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}: {response}"
                    );
                }
                let has = |s: &str| op["responses"].get(s).is_some();
                assert!(
                    has("400") && has("500") && has("421") && has("408"),
                    "{method} {path}"
                );
                if path.starts_with("/api/") {
                    assert!(has("401") && has("429") && has("503"), "{method} {path}");
                    if method != "get" {
                        assert!(has("507") && has("413"), "{method} {path}");
                    }
                }
            }
        }
    }

    /// Files go up and down as raw bytes (a media type without a schema, as OpenAPI 3.1 says),
    /// not as JSON arrays of numbers.
    #[test]
    fn attachments_are_raw_bytes() {
        let doc = document();
        let upload = &doc["paths"]["/api/v1/attachments"]["post"]["requestBody"]["content"];
        let download = &doc["paths"]["/api/v1/attachments/{id}"]["get"]["responses"]["200"];
        for schema in [
            &upload["application/octet-stream"],
            &download["content"]["*/*"],
        ] {
            assert!(
                schema.is_object() && schema.get("schema").is_none(),
                "{schema}"
            );
        }
    }
}
