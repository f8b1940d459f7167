//! A signed-in API client: [`Api`] wraps a running Roost with an HTTPS client, creates the
//! admin, members, guests, rooms and messages a test needs in a line each, and
//! [`assert_error`] checks Roost's JSON error body.

use std::time::Duration;

use serde_json::Value;

use super::{tls_connect, Roost, Setup, Ws, STARTUP_DEADLINE};

pub const ADMIN_PASSWORD: &str = "admin password 1";
pub const MEMBER_PASSWORD: &str = "member password 1";

/// A running Roost and an HTTPS client for its API. Tests sign in and connect far more often
/// than people do, so loopback is exempt from the rate limits (tested in the `limits` module;
/// the per-username login backoff in `auth`).
pub struct Api {
    pub roost: Roost,
    pub http: reqwest::Client,
}

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub token: String,
}

/// Who a request is sent as: a signed-in [`User`], a bare bearer token (an access token or an
/// API key, as `&str` or `&String`), or nobody (`None`).
pub trait Caller {
    fn bearer(&self) -> Option<&str>;
}

impl Caller for User {
    fn bearer(&self) -> Option<&str> {
        Some(&self.token)
    }
}

impl Caller for str {
    fn bearer(&self) -> Option<&str> {
        Some(self)
    }
}

impl Caller for String {
    fn bearer(&self) -> Option<&str> {
        Some(self)
    }
}

impl Caller for Option<&str> {
    fn bearer(&self) -> Option<&str> {
        *self
    }
}

impl<T: Caller + ?Sized> Caller for &T {
    fn bearer(&self) -> Option<&str> {
        (**self).bearer()
    }
}

impl Api {
    pub fn start(setup: Setup) -> Api {
        let roost = setup
            .toml("[rate_limits]\nexempt_cidrs = [\"127.0.0.1/32\"]\n")
            .start();
        let http = roost.client();
        Api { roost, http }
    }

    /// One request; the body is JSON (`Value::Null` when empty, a string when not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, self.roost.https_url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let headers = resp.headers().clone();
        let (status, value) = answer(resp).await;
        (status, value, headers)
    }

    /// A request as `who` without the answer's headers: its status and body.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        who: impl Caller,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let (status, value, _) = self.call(method, path, who.bearer(), body).await;
        (status, value)
    }

    pub async fn get(&self, path: &str, who: impl Caller) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::GET, path, who, None).await
    }

    pub async fn post(
        &self,
        path: &str,
        who: impl Caller,
        body: Value,
    ) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::POST, path, who, Some(body))
            .await
    }

    pub async fn put(
        &self,
        path: &str,
        who: impl Caller,
        body: Value,
    ) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, who, Some(body)).await
    }

    pub async fn patch(
        &self,
        path: &str,
        who: impl Caller,
        body: Value,
    ) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::PATCH, path, who, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, who: impl Caller) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, who, None).await
    }

    /// `POST` as if from the client address `from`, in `X-Forwarded-For`: for a daemon that
    /// trusts 127.0.0.1 as its proxy (`trusted_proxies`), the request comes from `from`.
    pub async fn post_from(
        &self,
        from: &str,
        path: &str,
        body: Value,
    ) -> (reqwest::StatusCode, Value) {
        let resp = self
            .http
            .post(self.roost.https_url(path))
            .header("x-forwarded-for", from)
            .json(&body)
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    /// `POST /api/v1/auth/login`: the status and the token pair (or the error).
    pub async fn login(&self, name: &str, password: &str) -> (reqwest::StatusCode, Value) {
        self.post(
            "/api/v1/auth/login",
            None,
            serde_json::json!({ "username": name, "password": password }),
        )
        .await
    }

    /// The setup code, read from the log (logged once at WARN: its one allowed appearance).
    pub fn setup_code(&mut self) -> String {
        let line = self
            .roost
            .wait_for_log(|v| v["setup_code"].is_string(), STARTUP_DEADLINE);
        assert_eq!(line["level"], "WARN", "{line}");
        line["setup_code"].as_str().unwrap().to_owned()
    }

    /// Reads the setup code from the log (logged at WARN: its one allowed appearance) and
    /// creates the admin `username` with `ADMIN_PASSWORD`; returns the setup answer (tokens and
    /// user).
    pub async fn setup_admin(&mut self, username: &str) -> Value {
        let code = self.setup_code();
        let (status, body) = self
            .post(
                "/api/v1/setup",
                None,
                serde_json::json!({ "setup_code": code, "username": username, "password": ADMIN_PASSWORD }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        body
    }

    /// Creates the admin `root` through the setup code, signed in.
    pub async fn admin(&mut self) -> User {
        self.setup_admin("root").await;
        self.signed_in("root", ADMIN_PASSWORD).await
    }

    /// Creates a one-use invite as `admin` and registers `name` with it; returns the register
    /// answer (tokens and user).
    pub async fn register(&self, admin: impl Caller, name: &str, password: &str) -> Value {
        let (status, invite) = self
            .post(
                "/api/v1/invites",
                admin,
                serde_json::json!({ "max_uses": 1 }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{invite}");
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                None,
                serde_json::json!({ "invite_code": invite["code"], "username": name, "password": password }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        body
    }

    /// Invites and registers the member `name` (as `admin`), signed in.
    pub async fn member(&self, admin: &User, name: &str) -> User {
        self.register(admin, name, MEMBER_PASSWORD).await;
        self.signed_in(name, MEMBER_PASSWORD).await
    }

    pub async fn signed_in(&self, name: &str, password: &str) -> User {
        let (status, body) = self.login(name, password).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let (status, me) = self.get("/api/v1/me", &token).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{me}");
        User {
            id: me["user"]["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("no id in {me}")),
            name: name.to_owned(),
            token,
        }
    }

    /// `GET /api/v1/audit?{query}` as `admin`: the events, newest first.
    pub async fn audit(&self, admin: impl Caller, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/v1/audit?{query}"), admin).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body["events"].as_array().unwrap().clone()
    }

    /// The daemon's database, opened beside it (WAL). A write waits up to 10 s for the
    /// daemon's writer to let go of the lock.
    pub fn db(&self) -> rusqlite::Connection {
        let db =
            rusqlite::Connection::open(self.roost.setup.data_dir().join("roost.sqlite3")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db
    }

    /// Creates a room owned by `owner`; returns its id.
    pub async fn room(&self, owner: &User, name: &str, private: bool) -> i64 {
        let (status, room) = self
            .post(
                "/api/v1/rooms",
                owner,
                serde_json::json!({ "name": name, "private": private }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{room}");
        room["id"].as_i64().unwrap()
    }

    /// Adds `who` to room `room` as `by`.
    pub async fn add(&self, by: &User, room: i64, who: &User) {
        let (status, body) = self
            .put(
                &format!("/api/v1/rooms/{room}/members/{}", who.id),
                by,
                serde_json::json!({}),
            )
            .await;
        assert!(status.is_success(), "{status} {body}");
    }

    /// Posts `body` to `room` as `who`; returns the message.
    pub async fn say(&self, who: &User, room: i64, body: &str) -> Value {
        let (status, msg) = self
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                who,
                serde_json::json!({ "body": body }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{msg}");
        msg
    }

    /// `admin` gives `user` the account role `role` (it applies to live tokens at once).
    pub async fn set_role(&self, admin: &User, user: &User, role: &str) {
        let (s, body, _) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/api/v1/users/{}", user.id),
                Some(&admin.token),
                Some(serde_json::json!({ "role": role })),
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::OK, "{body}");
        assert_eq!(body["role"], role, "{body}");
    }

    /// The member `name`, then made a guest by `admin`.
    pub async fn guest(&self, admin: &User, name: &str) -> User {
        let user = self.member(admin, name).await;
        self.set_role(admin, &user, "guest").await;
        user
    }

    /// `POST /api/v1/attachments?name={name}` with `bytes` as `who`: the status and answer.
    pub async fn upload(
        &self,
        who: &User,
        name: &str,
        bytes: Vec<u8>,
    ) -> (reqwest::StatusCode, Value) {
        let r = self
            .http
            .post(
                self.roost
                    .https_url(&format!("/api/v1/attachments?name={name}")),
            )
            .bearer_auth(&who.token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// The value of the first metric line starting with `prefix` (e.g. `roost_ws_connections`).
    pub async fn metric(&self, prefix: &str) -> Option<f64> {
        let text = self
            .http
            .get(self.roost.internal_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Creates an API key of `who` (a signed-in session) with `scopes`; returns its id and
    /// the key itself.
    pub async fn api_key(&self, who: &User, scopes: &[&str]) -> (i64, String) {
        let (status, created) = self
            .post(
                "/api/v1/api-keys",
                who,
                serde_json::json!({ "name": "bot", "scopes": scopes }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{created}");
        (
            created["id"].as_i64().unwrap(),
            created["key"].as_str().unwrap().to_owned(),
        )
    }

    /// A gateway WebSocket (not yet authenticated).
    pub async fn ws(&self) -> Ws {
        let url = self
            .roost
            .https_url("/api/v1/gateway")
            .replace("https", "wss");
        let tls = tls_connect(&self.roost, None).await;
        let (inner, resp) = tokio_tungstenite::client_async(url, tls).await.unwrap();
        assert_eq!(resp.status(), 101);
        Ws { inner }
    }

    /// A gateway WebSocket signed in as `who` (with resume `cursors` if given), after `ready`.
    pub async fn ws_ready(&self, who: &User, cursors: Option<Value>) -> (Ws, Value) {
        let mut ws = self.ws().await;
        let mut hello = serde_json::json!({ "op": "auth", "token": who.token });
        if let Some(c) = cursors {
            hello["cursors"] = c;
        }
        ws.send(hello).await;
        let ready = ws.next_json(Duration::from_secs(20)).await;
        assert_eq!(ready["op"], "ready", "{ready}");
        (ws, ready)
    }
}

/// The value of the header `name`, which must be there and be text.
pub fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
        .to_str()
        .unwrap()
}

/// The status and JSON body of `resp` (`Value::Null` when empty, a string when not JSON), as
/// [`Api`]'s requests return them.
pub async fn answer(resp: reqwest::Response) -> (reqwest::StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// Asserts that `answer` (a status and a body, as [`Api`]'s requests return them) is Roost's
/// JSON error `{"error": {"code", "message"}}` with `status` and `code`, and a message a
/// person can read; returns the message.
#[track_caller]
pub fn assert_error<'a>(
    answer: &'a (reqwest::StatusCode, Value),
    status: reqwest::StatusCode,
    code: &str,
) -> &'a str {
    assert_error_for("the request", answer, status, code)
}

/// [`assert_error`] for one of several requests a test makes in a loop: `what` names it in the
/// failure message.
#[track_caller]
pub fn assert_error_for<'a>(
    what: impl std::fmt::Display,
    answer: &'a (reqwest::StatusCode, Value),
    status: reqwest::StatusCode,
    code: &str,
) -> &'a str {
    let (got, body) = answer;
    assert_eq!(
        (*got, &body["error"]["code"]),
        (status, &Value::from(code)),
        "{what}: {body}"
    );
    body["error"]["message"]
        .as_str()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| panic!("{what}: an error without a message: {body}"))
}

/// The claims of a JWT (a call token, an access token), read without checking its signature.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {token}"));
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}
