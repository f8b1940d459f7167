//! A surface's route table. Every path goes to axum's router, which dispatches to the handler
//! and extracts path parameters, and to a matcher of route templates, which the surface
//! consults before dispatching: the route policy (rate limit, body cap, low disk) and the
//! request metrics key on the template. Both are filled by the same [`Routes::route`] call, so
//! they hold the same paths; the matcher is the same `matchit` version axum uses, so they
//! read them the same way.
//!
//! Matching here, before the router, is what lets the policy run as a plain step of
//! `api::Surface`: as an axum layer around each route it cost a boxed clone of the route, a
//! boxed future and a response extension per request.

use axum::handler::Handler;
use axum::routing::MethodRouter;
use axum::Router;

/// The routes of one surface, as they are mounted, for handlers taking state `S`.
pub struct Routes<S> {
    router: Router<S>,
    templates: matchit::Router<&'static str>,
}

/// Which route template a path matches, for the steps that run before the router.
pub struct Templates(matchit::Router<&'static str>);

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Routes<S> {
        Routes {
            router: Router::new(),
            templates: matchit::Router::new(),
        }
    }

    /// Mounts `handler` at `path` (axum's syntax: `{id}`, `{*rest}`). Each path is mounted
    /// once, with all its methods.
    pub fn route(mut self, path: &'static str, handler: MethodRouter<S>) -> Routes<S> {
        if let Err(e) = self.templates.insert(path, path) {
            panic!("route {path} cannot be mounted: {e}");
        }
        self.router = self.router.route(path, handler);
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

    /// The router with its state, and the templates of its routes.
    pub fn finish(self, state: S) -> (Router, Templates) {
        (self.router.with_state(state), Templates(self.templates))
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
            .route("/health", get())
            .route("/api/v1/rooms/{id}", get())
            .route("/api/v1/rooms/{id}/messages/{message_id}", get())
            .route("/rtc", get())
            .route("/rtc/{*rest}", get())
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
}
