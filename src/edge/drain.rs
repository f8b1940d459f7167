//! Request bodies that were answered before they were read.
//!
//! Many refusals come before a handler reads the body: a bad bearer token (401), a missing
//! scope (403), a rate limit (429), low disk (507), a bad path segment (400), a declared length
//! over the cap (413). [`track`] wraps the request body so that whatever the handler leaves
//! unread comes back here, and [`Unread::finish`] reads and discards it — at most the body cap
//! plus [`DRAIN_SLACK_BYTES`], within [`DRAIN_DEADLINE`] — before the answer is sent, as a
//! lingering close would. Without that, common clients never see the refusal:
//!
//! - HTTP/1.1: hyper stops reading the connection and closes it after the response, without
//!   saying so in a `Connection: close` header. A client that sends its body after the head
//!   (most do) either gets a reset while it is still sending, or finds its kept-alive
//!   connection dead on the next request.
//! - HTTP/2: hyper resets the stream (RST_STREAM) once the body is dropped unread. curl
//!   (exit 92) and Python's httpx report that reset instead of the 413 that came before it.
//!
//! A body too large for the bound, a client too slow for it, or one waiting for
//! `100 Continue` is not drained: over HTTP/1.1 the answer says `Connection: close`, so the
//! client knows not to reuse the connection; over HTTP/2 the stream is reset after the answer
//! as before (hyper sends RST_STREAM NO_ERROR once the response is complete, as RFC 9113
//! section 8.1 provides; curl 7.88 and httpx 0.28 still do not show that answer). This module
//! knows nothing about routes or handlers.

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

/// How much of an unread body beyond the body cap is read and thrown away before answering:
/// a body the cap refused by its declared length (413) is still drained when it is at most
/// this much over the cap. More than that is not read: the connection is closed (HTTP/1.1) or
/// the stream reset (HTTP/2).
pub const DRAIN_SLACK_BYTES: u64 = 1024 * 1024;
/// How long the client gets to send the rest; after that it is given up as above.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// Where a request body the handler dropped before its end is handed back.
type Slot = Arc<Mutex<Option<Body>>>;

/// Wraps `req`'s body; keep the returned [`Unread`] until the response exists. `max_body_bytes`
/// is the listener's body cap: up to it plus [`DRAIN_SLACK_BYTES`] of what the handler leaves
/// unread is drained. A request without a body (most GETs) is left as it is.
pub fn track(req: &mut Request, max_body_bytes: usize) -> Unread {
    use http_body::Body as _;
    if req.body().is_end_stream() {
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
        http2: req.version() >= Version::HTTP_2,
        max_bytes: u64::try_from(max_body_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(DRAIN_SLACK_BYTES),
    }))
}

/// What [`track`] left to check once the response is ready.
pub struct Unread(Option<Pending>);

struct Pending {
    slot: Slot,
    expects_continue: bool,
    http2: bool,
    /// The most of the rest that is read (the body cap plus the slack).
    max_bytes: u64,
}

impl Unread {
    /// Drains what the handler left unread; if that cannot be done within the bounds, marks
    /// an HTTP/1.1 `resp` `Connection: close` (HTTP/2 has no such header: its stream is reset).
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
            && http_body::Body::size_hint(&rest).lower() <= pending.max_bytes
            && tokio::time::timeout(DRAIN_DEADLINE, discard(rest, pending.max_bytes))
                .await
                .unwrap_or(false);
        if !drained && !pending.http2 {
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

    /// The body cap the tests run under.
    const CAP: usize = 1024;

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
        let unread = track(&mut req, CAP);
        let bytes = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"name\":\"x\"}");
        assert!(!closes(&unread.finish(Response::new(Body::empty())).await));
    }

    #[tokio::test]
    async fn an_unread_body_is_drained_before_the_answer() {
        let (tx, body) = channel_body(4);
        let mut req = post(body);
        let unread = track(&mut req, CAP);
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
        let unread = track(&mut req, CAP);
        drop(req);
        let resp = unread.finish(Response::new(Body::empty())).await;
        assert!(
            closes(&resp),
            "a stalled body is given up after the deadline"
        );
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_up_to_the_slack_over_the_cap_is_drained() {
        for version in [Version::HTTP_11, Version::HTTP_2] {
            let mut req = post(Body::from(vec![0u8; CAP + DRAIN_SLACK_BYTES as usize]));
            *req.version_mut() = version;
            let unread = track(&mut req, CAP);
            drop(req); // a 413 for its declared length
            let resp = unread.finish(Response::new(Body::empty())).await;
            assert!(!closes(&resp), "{version:?}");
        }
    }

    #[tokio::test]
    async fn a_body_past_the_bound_or_awaiting_continue_closes_the_connection() {
        let big = Body::from(vec![0u8; CAP + DRAIN_SLACK_BYTES as usize + 1]);
        let (tx, endless) = channel_body(1);
        let chunk = Bytes::from(vec![0u8; 64 * 1024]);
        tokio::spawn(async move { while tx.send(Ok(chunk.clone())).await.is_ok() {} });
        for body in [big, endless] {
            let mut req = post(body);
            let unread = track(&mut req, CAP);
            drop(req);
            assert!(closes(&unread.finish(Response::new(Body::empty())).await));
        }
        let mut req = post(Body::from("late"));
        req.headers_mut()
            .insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        let unread = track(&mut req, CAP);
        drop(req);
        assert!(closes(&unread.finish(Response::new(Body::empty())).await));
    }

    #[tokio::test]
    async fn http2_gets_no_connection_header_when_not_drained() {
        let mut req = post(Body::from(vec![0u8; CAP + DRAIN_SLACK_BYTES as usize + 1]));
        *req.version_mut() = Version::HTTP_2;
        let unread = track(&mut req, CAP);
        drop(req);
        assert!(!closes(&unread.finish(Response::new(Body::empty())).await));
    }
}
