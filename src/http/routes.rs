//! A module's routes, registered once for the router, the route templates and the OpenAPI
//! document.
//!
//! Every capability module offers `routes()`, a [`Routes`] value; `api` merges them into each
//! listener's surface. A documented route is added with [`Routes::api`], which takes what
//! [`documented!`](crate::documented) makes of handlers carrying `#[utoipa::path]`: the
//! handler's annotation gives both the path it is mounted at and its entry in the document, so
//! a route cannot be mounted undocumented by mistake, nor documented and not mounted. The few
//! routes that are deliberately not part of the API document (LiveKit's proxied paths, the
//! client's assets, the internal listener's) go through [`Routes::undocumented`], by name.
//!
//! Mounting reads only each annotation's path and methods. The entries of the document (each
//! operation, its responses, its schemas) are made only when the document is asked for
//! ([`Routes::into_openapi`]): made for every router, they ran the annotations' generated code
//! at startup and kept about 2 MiB of the binary resident in a daemon nobody asks for its
//! schema.
//!
//! Every path also goes to a matcher of route templates, which the surface consults before
//! dispatching: the route policy (rate limit, body cap, low disk) and the request metrics key
//! on the template. The matcher is the same `matchit` version axum uses, so both read a path
//! the same way. Matching before the router is what lets the policy run as a plain step of
//! `api::Surface`: as an axum layer around each route it cost a boxed clone of the route, a
//! boxed future and a response extension per request.

use std::collections::BTreeSet;

use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

/// The routes of one module or surface, for handlers whose state is `S`.
pub struct Routes<S> {
    router: Router<S>,
    templates: BTreeSet<String>,
    /// How to make the document's entries of the routes [`Routes::api`] mounted.
    documents: Vec<fn() -> UtoipaMethodRouter<S>>,
}

/// Documented handlers on one path, made by [`documented!`](crate::documented).
pub struct Documented<S> {
    path: String,
    router: MethodRouter<S>,
    document: fn() -> UtoipaMethodRouter<S>,
}

impl<S: Clone + Send + Sync + 'static> Documented<S> {
    /// What [`documented!`](crate::documented) starts from: no method yet, and how to make the
    /// handlers' document entries (`utoipa_axum::routes!`, called only for the document).
    pub fn new(path: String, document: fn() -> UtoipaMethodRouter<S>) -> Documented<S> {
        Documented {
            path,
            router: MethodRouter::new(),
            document,
        }
    }

    /// Adds `handler` for the methods `filter` names.
    pub fn on<H, T>(mut self, filter: MethodFilter, handler: H) -> Documented<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self.router.on(filter, handler);
        self
    }

    /// Gives the handlers `value` as an `axum::Extension`.
    pub fn with_extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Documented<S> {
        self.router = self.router.layer(axum::Extension(value));
        self
    }
}

/// `documented!(rooms::get, rooms::update)`: handlers carrying `#[utoipa::path]`, all on one
/// path, for [`Routes::api`]. Only their annotations' paths and methods are read here.
#[macro_export]
macro_rules! documented {
    ($($first:ident)::+ $(, $($handler:ident)::+)* $(,)?) => {{
        use ::utoipa_axum::PathItemExt as _;
        let mut documented = $crate::http::routes::Documented::new(
            ::utoipa_axum::routes!(@path [path()] of $($first)::+),
            || ::utoipa_axum::routes!($($first)::+ $(, $($handler)::+)*),
        );
        for method in ::utoipa_axum::routes!(@path [methods()] of $($first)::+) {
            documented = documented.on(method.to_method_filter(), $($first)::+);
        }
        $(
            for method in ::utoipa_axum::routes!(@path [methods()] of $($handler)::+) {
                documented = documented.on(method.to_method_filter(), $($handler)::+);
            }
        )*
        documented
    }};
}

/// Which route template a path matches, for the steps that run before the router.
pub struct Templates(matchit::Router<&'static str>);

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Routes<S> {
        Routes {
            router: Router::new(),
            templates: BTreeSet::new(),
            documents: Vec::new(),
        }
    }

    /// Mounts documented handlers (`documented!(a, b)`, all on one path) at the path their
    /// annotation names, and adds them to the document.
    pub fn api(mut self, handlers: Documented<S>) -> Routes<S> {
        if !self.templates.insert(handlers.path.clone()) {
            panic!("route {} is mounted twice", handlers.path);
        }
        self.router = self.router.route(&handlers.path, handlers.router);
        self.documents.push(handlers.document);
        self
    }

    /// Mounts a route that is not part of the API document (axum's syntax: `{id}`,
    /// `{*rest}`). Each such path is mounted once, with all its methods.
    pub fn undocumented(mut self, path: &str, handler: MethodRouter<S>) -> Routes<S> {
        self.templates.insert(path.to_string());
        self.router = self.router.route(path, handler);
        self
    }

    /// Adds another module's routes; no path may be in both.
    pub fn merge(mut self, other: Routes<S>) -> Routes<S> {
        if let Some(both) = self.templates.intersection(&other.templates).next() {
            panic!("route {both} is mounted by two modules");
        }
        self.templates.extend(other.templates);
        self.router = self.router.merge(other.router);
        self.documents.extend(other.documents);
        self
    }

    /// What answers a path no route matches.
    pub fn fallback<H, T>(mut self, handler: H) -> Routes<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self.router.fallback(handler);
        self
    }

    /// The path templates mounted so far, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.templates.iter().map(String::as_str)
    }

    /// The document's paths and schemas: what [`Routes::api`] added, made now.
    pub fn into_openapi(self) -> OpenApi {
        self.documents
            .into_iter()
            .fold(OpenApiRouter::new(), |doc, document| doc.routes(document()))
            .into_openapi()
    }

    /// The router with its state, and the templates of its routes.
    pub fn finish(self, state: S) -> (Router, Templates) {
        let mut matcher = matchit::Router::new();
        for path in self.templates {
            // A surface is built once per listener when the daemon starts (routes never
            // change), so leaking its templates is bounded; they become the `&'static`
            // labels of the request metrics and the rate limiter's route keys.
            let path: &'static str = Box::leak(path.into_boxed_str());
            if let Err(e) = matcher.insert(path, path) {
                panic!("route {path} cannot be mounted: {e}");
            }
        }
        (self.router.with_state(state), Templates(matcher))
    }
}

impl Templates {
    /// The template of the route `path` matches (`/api/v1/rooms/{id}`), or `None`.
    pub fn matching(&self, path: &str) -> Option<&'static str> {
        self.0.at(path).ok().map(|m| *m.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_matches_the_template_it_was_mounted_under() {
        let get = || axum::routing::get(|| async { "" });
        let (_, templates) = Routes::<()>::new()
            .undocumented("/health", get())
            .undocumented("/api/v1/rooms/{id}", get())
            .undocumented("/api/v1/rooms/{id}/messages/{message_id}", get())
            .merge(
                Routes::new()
                    .undocumented("/rtc", get())
                    .undocumented("/rtc/{*rest}", get()),
            )
            .finish(());
        for (path, template) in [
            ("/health", Some("/health")),
            ("/api/v1/rooms/42", Some("/api/v1/rooms/{id}")),
            (
                "/api/v1/rooms/1/messages/2",
                Some("/api/v1/rooms/{id}/messages/{message_id}"),
            ),
            ("/rtc", Some("/rtc")),
            ("/rtc/v1/validate", Some("/rtc/{*rest}")),
            ("/api/v1/rooms", None),
            ("/health/", None),
            ("/nothing", None),
        ] {
            assert_eq!(templates.matching(path), template, "{path}");
        }
    }

    #[test]
    #[should_panic(expected = "mounted by two modules")]
    fn a_path_mounted_by_two_modules_is_refused() {
        let get = || axum::routing::get(|| async { "" });
        let _ = Routes::<()>::new()
            .undocumented("/health", get())
            .merge(Routes::new().undocumented("/health", get()));
    }
}
