//! A WebSocket's outgoing side: the bounded queue that hubs and the session fill without
//! waiting, and the response body through which the connection drains it, one encoded frame
//! per chunk.
//!
//! The connection's task pulls a frame only while its write buffer has room, so a client that
//! stops reading leaves at most the queue's capacity of frames in memory, and a full queue is
//! how a slow consumer is noticed. Before this, actix-ws's `Session` sat behind the queue with
//! a writer task per connection copying frames from one channel to the next: a second wake-up
//! per frame (measured in load-tests/README.md, "Fewer hops per frame").

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_http::ws::{OpCode, Parser};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use tokio::sync::mpsc;

/// Control frames carry at most this many payload bytes (RFC 6455, 5.5).
const CONTROL_PAYLOAD: usize = 125;

/// One frame for the client.
#[derive(Debug)]
pub enum OutFrame {
    Text(ByteString),
    Ping,
    Pong(Bytes),
    /// The last frame: the body ends after it, which closes the connection.
    Close,
}

/// The sending side of a session's queue; the session clones it into every hub it joins.
/// `try_send` fails at once when the queue is full (the client is not reading) or closed.
pub type Outgoing = mpsc::Sender<OutFrame>;

/// A queue of `capacity` frames and the body that drains it. `upgrade` is actix-ws's own
/// response body: it is kept, never polled, because its drop is how actix-ws's
/// `MessageStream` learns that the connection has gone.
pub fn queue(capacity: usize, upgrade: BoxBody) -> (Outgoing, OutgoingBody) {
    let (tx, rx) = mpsc::channel(capacity);
    let body = OutgoingBody {
        queue: rx,
        closing: false,
        _upgrade: upgrade,
    };
    (tx, body)
}

/// The WebSocket's response body: each frame of the queue, encoded, as one chunk.
pub struct OutgoingBody {
    queue: mpsc::Receiver<OutFrame>,
    closing: bool,
    _upgrade: BoxBody,
}

impl MessageBody for OutgoingBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.closing {
            return Poll::Ready(None);
        }
        let Some(frame) = std::task::ready!(this.queue.poll_recv(cx)) else {
            return Poll::Ready(None);
        };
        Poll::Ready(Some(Ok(this.encode(frame))))
    }
}

impl OutgoingBody {
    fn encode(&mut self, frame: OutFrame) -> Bytes {
        let (payload, op): (&[u8], OpCode) = match &frame {
            OutFrame::Text(text) => (text.as_bytes(), OpCode::Text),
            OutFrame::Ping => (b"", OpCode::Ping),
            OutFrame::Pong(data) => (&data[..data.len().min(CONTROL_PAYLOAD)], OpCode::Pong),
            OutFrame::Close => {
                self.closing = true;
                self.queue.close();
                (b"", OpCode::Close)
            }
        };
        // A server's frames are not masked; 10 bytes is the longest header (64-bit length).
        let mut buf = BytesMut::with_capacity(payload.len() + 10);
        Parser::write_message(&mut buf, payload, op, true, false);
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::{BoxBody, to_bytes};

    fn parse_all(mut bytes: BytesMut) -> Vec<(OpCode, Vec<u8>)> {
        let mut frames = Vec::new();
        while let Some((fin, op, payload)) =
            Parser::parse(&mut bytes, false, 1 << 20).expect("well-formed frames")
        {
            assert!(fin, "every frame is final");
            frames.push((op, payload.map(|p| p.to_vec()).unwrap_or_default()));
        }
        assert!(bytes.is_empty(), "no trailing bytes");
        frames
    }

    #[actix_web::test]
    async fn frames_arrive_in_order_and_close_ends_the_body() {
        let (out, body) = queue(8, BoxBody::new(()));
        out.try_send(OutFrame::Text("first".into()))
            .expect("room in the queue");
        out.try_send(OutFrame::Ping).expect("room in the queue");
        out.try_send(OutFrame::Pong(Bytes::from(vec![7u8; 300])))
            .expect("room in the queue");
        out.try_send(OutFrame::Text("é".repeat(40_000).into()))
            .expect("room in the queue");
        out.try_send(OutFrame::Close).expect("room in the queue");
        // `out` is still alive (dropped only at the end): only the close can end the body.
        let all = actix_web::rt::time::timeout(std::time::Duration::from_secs(5), to_bytes(body))
            .await
            .expect("the body ends after Close")
            .expect("an infallible body");
        let frames = parse_all(BytesMut::from(&all[..]));
        let ops: Vec<OpCode> = frames.iter().map(|(op, _)| *op).collect();
        assert_eq!(
            ops,
            [
                OpCode::Text,
                OpCode::Ping,
                OpCode::Pong,
                OpCode::Text,
                OpCode::Close
            ]
        );
        assert_eq!(frames[0].1, b"first");
        assert_eq!(
            frames[2].1.len(),
            CONTROL_PAYLOAD,
            "a pong is cut to a control frame"
        );
        assert_eq!(frames[3].1, "é".repeat(40_000).as_bytes());
        drop(out);
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let (out, _body) = queue(2, BoxBody::new(()));
        out.try_send(OutFrame::Ping).expect("room in the queue");
        out.try_send(OutFrame::Ping).expect("room in the queue");
        assert!(matches!(
            out.try_send(OutFrame::Ping),
            Err(mpsc::error::TrySendError::Full(_))
        ));
    }

    #[actix_web::test]
    async fn the_body_ends_when_every_sender_has_gone() {
        let (out, body) = queue(2, BoxBody::new(()));
        out.try_send(OutFrame::Text("last".into()))
            .expect("room in the queue");
        drop(out);
        let frames = parse_all(BytesMut::from(
            &to_bytes(body).await.expect("an infallible body")[..],
        ));
        assert_eq!(frames, [(OpCode::Text, b"last".to_vec())]);
    }
}
