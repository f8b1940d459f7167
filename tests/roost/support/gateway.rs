//! A gateway WebSocket client: send JSON frames, read the next frame or event with a
//! deadline, and see how the connection ended (close code and reason).

use std::time::Duration;

use serde_json::Value;

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// A gateway client.
pub struct Ws {
    pub inner: WsStream,
}

/// How a gateway connection ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Closed { code: u16, reason: String },
    Dropped(String),
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        use futures_util::SinkExt;
        self.inner
            .send(tokio_tungstenite::tungstenite::Message::Text(
                v.to_string().into(),
            ))
            .await
            .unwrap();
    }

    /// The next JSON text frame (pings skipped); panics on close or after `deadline`.
    pub async fn next_json(&mut self, deadline: Duration) -> Value {
        match self.next_or_end(deadline).await {
            Ok(v) => v,
            Err(e) => panic!("expected a frame, got {e:?}"),
        }
    }

    /// The next JSON text frame, or how the connection ended.
    pub async fn next_or_end(&mut self, deadline: Duration) -> Result<Value, Ended> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let next = tokio::time::timeout_at(until, self.inner.next())
                .await
                .expect("timed out waiting for a gateway frame");
            match next {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map_or(
                        Ended::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |f| Ended::Closed {
                            code: f.code.into(),
                            reason: f.reason.to_string(),
                        },
                    ))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Ended::Dropped(e.to_string())),
                None => return Err(Ended::Dropped("stream ended".into())),
            }
        }
    }

    /// Reads until the connection ends; returns the close code (panics if there was none).
    pub async fn close_code(&mut self, deadline: Duration) -> (u16, String) {
        loop {
            match self.next_or_end(deadline).await {
                Ok(_) => continue,
                Err(Ended::Closed { code, reason }) => return (code, reason),
                Err(e) => panic!("the connection ended without a close frame: {e:?}"),
            }
        }
    }

    /// The frames received until the connection closes, and its close code and reason
    /// (panics if it ended without a close frame, or after `deadline`).
    pub async fn frames_until_close(&mut self, deadline: Duration) -> (Vec<Value>, u16, String) {
        let until = tokio::time::Instant::now() + deadline;
        let mut frames = Vec::new();
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.next_or_end(left).await {
                Ok(v) => frames.push(v),
                Err(Ended::Closed { code, reason }) => return (frames, code, reason),
                Err(e) => panic!("the connection ended without a close frame: {e:?}"),
            }
        }
    }

    /// The next `event` frame (presence, typing and call frames skipped).
    pub async fn next_event(&mut self, deadline: Duration) -> Value {
        loop {
            let v = self.next_json(deadline).await;
            if v["op"] == "event" {
                return v;
            }
        }
    }

    /// The next frame of operation `op` (`"dm"`, `"user"`...); frames of others skipped.
    pub async fn next_op(&mut self, op: &str, deadline: Duration) -> Value {
        loop {
            let v = self.next_json(deadline).await;
            if v["op"] == op {
                return v;
            }
        }
    }
}
