//! Request bodies that were answered before they were read.
//!
//! Many refusals come before a handler reads the body: a bad bearer token (401), a missing
//! scope (403), a rate limit (429), low disk (507), a bad path segment (400). hyper then stops
//! reading the connection and closes it after the response, without saying so in a
//! `Connection: close` header. An HTTP/1.1 client that sends its body after the head (most do)
//! either gets a reset while it is still sending, and never sees the answer, or finds its
//! kept-alive connection dead on the next request. [`track`] wraps the request body so that
//! whatever the handler leaves unread comes back here, and [`Unread::finish`] reads and
//! discards it — at most [`DRAIN_MAX_BYTES`], within [`DRAIN_DEADLINE`] — before the answer is
//! sent, as a lingering close would. A body too large for that, a client too slow for it, or
//! one waiting for `100 Continue` gets the answer with `Connection: close` instead, so the
//! client knows not to reuse the connection.
//!
//! HTTP/2 needs none of this (hyper resets just the stream), so only HTTP/1.x is tracked. This
//! module knows nothing about routes or handlers.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use http::{header, HeaderValue, Version};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// The most of an unread body that is read and thrown away before answering; the default JSON
/// body cap, so any body the API accepts at all is drained. A larger rest closes the connection.
pub const DRAIN_MAX_BYTES: u64 = 1024 * 1024;
/// How long the client gets to send the rest; after that the connection is closed.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// Where a request body the handler dropped before its end is handed back.
type Slot = Arc<Mutex<Option<Body>>>;

/// Wraps `req`'s body (HTTP/1.x only); keep the returned [`Unread`] until the response exists.
/// A request without a body (most GETs) is left as it is.
pub fn track(req: &mut Request) -> Unread {
    use http_body::Body as _;
    if req.version() >= Version::HTTP_2 || req.body().is_end_stream() {
        return Unread(None);
    }
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let slot: Slot = Arc::default();
    let body = std::mem::take(req.body_mut());
    *req.body_mut() = Body::new(Tracked {
        inner: Some(body),
        slot: slot.clone(),
    });
    Unread(Some(Pending {
        slot,
        expects_continue,
    }))
}

/// What [`track`] left to check once the response is ready.
pub struct Unread(Option<Pending>);

struct Pending {
    slot: Slot,
    expects_continue: bool,
}

impl Unread {
    /// Drains what the handler left unread, or marks `resp` `Connection: close` if that cannot
    /// be done within the bounds.
    pub async fn finish(self, mut resp: Response) -> Response {
        let Some(pending) = self.0 else {
            return resp;
        };
        let rest = pending
            .slot
            .lock()
            .expect("the slot lock is never poisoned: nothing panics while holding it")
            .take();
        let Some(rest) = rest else {
            return resp;
        };
        // A client waiting for `100 Continue` has not sent its body: reading would ask for it.
        let drained = !pending.expects_continue
            && http_body::Body::size_hint(&rest).lower() <= DRAIN_MAX_BYTES
            && tokio::time::timeout(DRAIN_DEADLINE, discard(rest, DRAIN_MAX_BYTES))
                .await
                .unwrap_or(false);
        if !drained {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

/// Reads `body` to its end, keeping nothing; false past `max` bytes or on a read error.
async fn discard(mut body: Body, max: u64) -> bool {
    let mut read = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    read += data.len() as u64;
                    if read > max {
                        return false;
                    }
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// A request body that, when dropped before its end, puts the rest into its slot.
struct Tracked {
    inner: Option<Body>,
    slot: Slot,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(body) = self.inner.take() {
            if !http_body::Body::is_end_stream(&body) {
                *self
                    .slot
                    .lock()
                    .expect("the slot lock is never poisoned: nothing panics while holding it") =
                    Some(body);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: Body) -> Request {
        http::Request::builder()
            .method("POST")
            .uri("/api/v1/rooms")
            .body(body)
            .unwrap()
    }

    /// A body whose chunks the test sends (the client writing it).
    fn channel_body(
        capacity: usize,
    ) -> (
        tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
        Body,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        (tx, Body::from_stream(stream))
    }

    fn closes(resp: &Response) -> bool {
        resp.headers()
            .get(header::CONNECTION)
            .is_some_and(|v| v == "close")
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_needs_nothing() {
        let mut req = post(Body::from("{\"name\":\"x\"}"));
        let unread = track(&mut req);
        let bytes = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"name\":\"x\"}");
        assert!(!closes(&unread.finish(Response::new(Body::empty())).await));
    }

    #[tokio::test]
    async fn an_unread_body_is_drained_before_the_answer() {
        let (tx, body) = channel_body(4);
        let mut req = post(body);
        let unread = track(&mut req);
        drop(req); // answered without reading, like a 401 from the auth layer
        let sender = tokio::spawn(async move {
            for _ in 0..3 {
                tx.send(Ok(Bytes::from_static(b"0123456789")))
                    .await
                    .unwrap();
            }
        });
        let resp = unread.finish(Response::new(Body::empty())).await;
        assert!(
            !closes(&resp),
            "the rest arrived in time: the connection stays"
        );
        sender.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_does_not_come_closes_the_connection() {
        let (tx, body) = channel_body(4);
        let mut req = post(body);
        let unread = track(&mut req);
        drop(req);
        let resp = unread.finish(Response::new(Body::empty())).await;
        assert!(
            closes(&resp),
            "a stalled body is given up after the deadline"
        );
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_past_the_bound_or_awaiting_continue_closes_the_connection() {
        let big = Body::from(vec![0u8; DRAIN_MAX_BYTES as usize + 1]);
        let (tx, endless) = channel_body(1);
        let chunk = Bytes::from(vec![0u8; 64 * 1024]);
        tokio::spawn(async move { while tx.send(Ok(chunk.clone())).await.is_ok() {} });
        for body in [big, endless] {
            let mut req = post(body);
            let unread = track(&mut req);
            drop(req);
            assert!(closes(&unread.finish(Response::new(Body::empty())).await));
        }
        let mut req = post(Body::from("late"));
        req.headers_mut()
            .insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        let unread = track(&mut req);
        drop(req);
        assert!(closes(&unread.finish(Response::new(Body::empty())).await));
    }

    #[tokio::test]
    async fn http2_is_left_alone() {
        let mut req = post(Body::from("x"));
        *req.version_mut() = Version::HTTP_2;
        let unread = track(&mut req);
        drop(req);
        assert!(!closes(&unread.finish(Response::new(Body::empty())).await));
    }
}
