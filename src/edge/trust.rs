//! Trusting the local certificate authority: `GET /ca.crt` (on plain HTTP and HTTPS) offers its
//! certificate, and the plain-HTTP listener's `GET /` is a small static page that helps a
//! device trust it before it opens the HTTPS address. The page links `/ca.crt`, shows the CA's
//! SHA-256 fingerprint (to compare with the Pi's console or `roost init`), gives short steps
//! per system and links the HTTPS address.
//!
//! The page has no script, loads nothing and its one style block is allowed by its hash. With a
//! certificate from a public CA (`tls.cert_file`: no local CA) there is nothing to trust, and
//! `/` redirects like every other path. Every value put into the page is HTML-escaped.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{header, HeaderValue, StatusCode};

use super::policy::{request_host, EdgePolicy};
use super::redirect;
use crate::http::{ApiError, ErrorBody};

/// The local CA's certificate (PEM) that devices import, or none when the operator provides
/// the server's certificate (`tls.cert_file`). Read once at startup.
#[derive(Debug, Clone, Default)]
pub struct CaCertificate(Option<Arc<str>>);

impl CaCertificate {
    /// The local CA's certificate, from its PEM text.
    pub fn local(pem: String) -> CaCertificate {
        CaCertificate(Some(Arc::from(pem)))
    }

    /// No local CA: the operator's certificate is signed by a CA devices already trust.
    pub fn none() -> CaCertificate {
        CaCertificate(None)
    }

    /// The PEM text, if there is a local CA.
    pub fn pem(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// The page's only style, allowed by its hash in the Content-Security-Policy.
const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;\
padding:0 1em}code{word-break:break-all;font-size:.9em}h2{font-size:1.1em;margin-top:1.5em}\
a.button{display:inline-block;padding:.6em 1em;border:1px solid;border-radius:.4em}";

/// `GET /ca.crt`: the local CA certificate, for devices to import.
#[utoipa::path(
    get,
    path = "/ca.crt",
    operation_id = "getCaCertificate",
    summary = "The local CA certificate (PEM), for devices to import",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "The local CA certificate (PEM)", body = String,
         content_type = "application/x-pem-file"),
        (status = 404, description = "This server uses an operator-provided certificate, not a \
         local CA (`no_local_ca`)", body = ErrorBody),
    )
)]
pub async fn certificate(State(ca): State<CaCertificate>) -> Response {
    match ca.pem() {
        Some(pem) => (
            [
                (header::CONTENT_TYPE, "application/x-pem-file"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"roost-ca.crt\"",
                ),
            ],
            pem.to_owned(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_local_ca",
            "this server uses an operator-provided certificate, not a local CA",
        )
        .into_response(),
    }
}

/// `GET /` on plain HTTP: the trust page, or the 308 to HTTPS without a local CA.
pub async fn page(
    State(ca): State<CaCertificate>,
    State(policy): State<Arc<EdgePolicy>>,
    req: Request,
) -> Response {
    let Some(ca_pem) = ca.pem() else {
        return redirect::to_https(State(policy), req).await;
    };
    let Some(host) = request_host(&req) else {
        return redirect::to_https(State(policy), req).await;
    };
    let fingerprint = fingerprint(ca_pem).unwrap_or_else(|| "(unreadable)".to_owned());
    let https = redirect::https_origin(&policy, &host);
    let body = render(&escape(&https), &escape(&fingerprint));
    let style_hash = base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        STYLE.as_bytes(),
    ));
    let policy = format!(
        "default-src 'none'; style-src 'sha256-{style_hash}'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    );
    let policy = HeaderValue::from_str(&policy).expect("a base64 hash is a valid header value");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        body,
    )
        .into_response()
}

/// The CA certificate's SHA-256 fingerprint, as `roost init` and the console print it.
fn fingerprint(ca_pem: &str) -> Option<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).ok()?;
    Some(super::tls::sha256_fingerprint(&pem.contents))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page, with `https` (the HTTPS origin) and `fingerprint` already escaped.
fn render(https: &str, fingerprint: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trust this Roost</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Trust this Roost once, then open it</h1>
<p>This Roost signs its own certificate with a local certificate authority (CA) made on the
server. Each phone or computer trusts that CA once; after that the secure address opens without
warnings.</p>
<p><a class="button" href="/ca.crt" download="roost-ca.crt">Download the Roost CA</a></p>
<p>Before trusting it, check that its SHA-256 fingerprint is the one on the server's screen (or
from <code>sudo -u roost roost init</code>):</p>
<p><code>{fingerprint}</code></p>
<h2>iPhone and iPad</h2>
<p>Open this page in Safari, download the CA and allow the profile. Settings → General → VPN &amp;
Device Management → the Roost profile → Install. Then Settings → General → About → Certificate
Trust Settings → turn on full trust for “Roost local CA”.</p>
<h2>Android</h2>
<p>Download the CA, then Settings → Security &amp; privacy → More security settings → Encryption
&amp; credentials → Install a certificate → CA certificate, and pick the file (the wording varies
by vendor).</p>
<h2>Windows</h2>
<p>Open the downloaded file → Install Certificate → Local Machine → “Trusted Root Certification
Authorities”. Or, as administrator: <code>certutil -addstore -f Root roost-ca.crt</code>.</p>
<h2>macOS</h2>
<p>Open the downloaded file (Keychain Access adds it), double-click “Roost local CA” → Trust →
“When using this certificate: Always Trust”.</p>
<h2>Linux</h2>
<p>Debian and Ubuntu: <code>sudo cp roost-ca.crt /usr/local/share/ca-certificates/roost.crt
&amp;&amp; sudo update-ca-certificates</code>. Chrome and Chromium also need
<code>certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n roost -i roost-ca.crt</code>. Firefox, on
every system: Settings → Privacy &amp; Security → Certificates → View Certificates → Authorities
→ Import, and tick “Trust this CA to identify websites”.</p>
<h2>Then</h2>
<p><a class="button" href="{https}/">Open {https}</a></p>
</body>
</html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let page = render("https://roost.local", "AB:CD");
        assert!(page.contains(r#"href="https://roost.local/""#));
        assert!(page.contains("<code>AB:CD</code>"));
        assert!(!page.contains("<script"));
    }
}
