//! A WebSocket's outgoing side: the bounded queue that hubs and the session fill without
//! waiting, the response body through which the connection drains it, one encoded frame per
//! chunk, and the session's `Closer`, which ends it.
//!
//! The connection's task pulls a frame only while its write buffer has room, so a client that
//! stops reading leaves at most the queue's capacity of frames in memory, and a full queue is
//! how a slow consumer is noticed. The close does not queue: a session that stops (its client
//! closed or went silent) must end the connection even while the queue is full and hubs still
//! hold senders. Before this, actix-ws's `Session` sat behind the queue with
//! a writer task per connection copying frames from one channel to the next: a second wake-up
//! per frame (measured in load-tests/README.md, "Fewer hops per frame").

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_http::ws::{OpCode, Parser};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

/// Control frames carry at most this many payload bytes (RFC 6455, 5.5).
const CONTROL_PAYLOAD: usize = 125;

/// One frame for the client, encoded when it is made: a delta that goes to 500 sessions is
/// encoded once and shared, not encoded 500 times (load-tests/README.md, "Side by side with
/// Socket.IO").
#[derive(Debug, Clone)]
pub struct OutFrame(Bytes);

impl OutFrame {
    pub fn text(text: &str) -> OutFrame {
        OutFrame(encode(text.as_bytes(), OpCode::Text))
    }

    pub fn ping() -> OutFrame {
        OutFrame(encode(b"", OpCode::Ping))
    }

    /// A pong echoes the ping's payload, cut to what a control frame may carry.
    pub fn pong(data: &[u8]) -> OutFrame {
        OutFrame(encode(
            &data[..data.len().min(CONTROL_PAYLOAD)],
            OpCode::Pong,
        ))
    }
}

/// The sending side of a session's queue; the session clones it into every hub it joins.
/// `try_send` fails at once when the queue is full (the client is not reading) or closed.
pub type Outgoing = mpsc::Sender<OutFrame>;

/// Ends the connection: the session's alone, never cloned. Dropped unused, it closes too, so a
/// session that goes away any other way cannot leave its connection open.
#[derive(Debug)]
pub struct Closer(oneshot::Sender<Ending>);

/// Why a connection ends, as its close frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A close frame without a status: the session ended (the client left, timed out, …).
    Plain,
    /// 1001 Going Away: the server is shutting down, so the client should reconnect (to
    /// another node, or to this one once it is back).
    GoingAway,
    /// 1008 Policy Violation: the session's token has expired; the client needs a new one.
    Expired,
    /// 1009 Message Too Big: a client message over `TOO_BIG_LIMIT`.
    TooBig,
}

/// The largest message (fragmented or not) a client may send; above the protocol's own 64 KiB,
/// which is refused with an `error` frame on a session that stays open.
pub const TOO_BIG_LIMIT: usize = 1024 * 1024;

/// The reason 1001 closes carry.
pub const GOING_AWAY_REASON: &str = "the server is shutting down; reconnect";
/// The reason 1008 closes carry.
pub const EXPIRED_REASON: &str = "the token has expired; reconnect with a new one";
/// The reason 1009 closes carry.
pub const TOO_BIG_REASON: &str = "a message may be at most 1 MiB";

impl Closer {
    /// Sends a close frame saying why ahead of whatever is still queued, and ends the body
    /// after it.
    pub fn close(self, ending: Ending) {
        // A dropped receiver means the body has ended already.
        let _ = self.0.send(ending);
    }
}

/// A queue of `capacity` frames, its closer, and the body that drains it. `upgrade` is
/// actix-ws's own response body: it is kept, never polled, because its drop is how actix-ws's
/// `MessageStream` learns that the connection has gone.
pub fn queue(capacity: usize, upgrade: BoxBody) -> (Outgoing, Closer, OutgoingBody) {
    let (tx, rx) = mpsc::channel(capacity);
    let (close, closed) = oneshot::channel();
    let body = OutgoingBody {
        queue: rx,
        closed: Some(closed),
        _upgrade: upgrade,
    };
    (tx, Closer(close), body)
}

/// The WebSocket's response body: each frame of the queue, encoded, as one chunk.
pub struct OutgoingBody {
    queue: mpsc::Receiver<OutFrame>,
    /// `None` once the close frame has been handed over.
    closed: Option<oneshot::Receiver<Ending>>,
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
        let Some(closed) = this.closed.as_mut() else {
            return Poll::Ready(None);
        };
        // Sent or dropped, the closer has spoken: frames still queued are for a client that
        // is leaving, so they are not written.
        if let Poll::Ready(ending) = Pin::new(closed).poll(cx) {
            this.closed = None;
            this.queue.close();
            let status = |code: u16, reason: &str| {
                let mut payload = code.to_be_bytes().to_vec();
                payload.extend_from_slice(reason.as_bytes());
                payload
            };
            let payload = match ending {
                Ok(Ending::GoingAway) => status(1001, GOING_AWAY_REASON),
                Ok(Ending::Expired) => status(1008, EXPIRED_REASON),
                Ok(Ending::TooBig) => status(1009, TOO_BIG_REASON),
                Ok(Ending::Plain) | Err(_) => Vec::new(),
            };
            return Poll::Ready(Some(Ok(encode(&payload, OpCode::Close))));
        }
        let Some(OutFrame(chunk)) = std::task::ready!(this.queue.poll_recv(cx)) else {
            return Poll::Ready(None);
        };
        Poll::Ready(Some(Ok(chunk)))
    }
}

fn encode(payload: &[u8], op: OpCode) -> Bytes {
    // A server's frames are not masked; 10 bytes is the longest header (64-bit length).
    let mut buf = BytesMut::with_capacity(payload.len() + 10);
    Parser::write_message(&mut buf, payload, op, true, false);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::{BoxBody, to_bytes};
    use std::time::Duration;

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

    /// The whole body, failing if it does not end: the tests keep senders alive, so only the
    /// closer can end it.
    async fn drain(body: OutgoingBody) -> Vec<(OpCode, Vec<u8>)> {
        let all = actix_web::rt::time::timeout(Duration::from_secs(5), to_bytes(body))
            .await
            .expect("the body ends")
            .expect("an infallible body");
        parse_all(BytesMut::from(&all[..]))
    }

    #[actix_web::test]
    async fn frames_arrive_in_order_encoded() {
        let (out, closer, mut body) = queue(8, BoxBody::new(()));
        out.try_send(OutFrame::text("first"))
            .expect("room in the queue");
        out.try_send(OutFrame::ping()).expect("room in the queue");
        out.try_send(OutFrame::pong(&[7u8; 300]))
            .expect("room in the queue");
        out.try_send(OutFrame::text(&"é".repeat(40_000)))
            .expect("room in the queue");
        let mut bytes = BytesMut::new();
        for _ in 0..4 {
            let chunk = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx))
                .await
                .expect("a frame is queued")
                .expect("an infallible body");
            bytes.extend_from_slice(&chunk);
        }
        let frames = parse_all(bytes);
        let ops: Vec<OpCode> = frames.iter().map(|(op, _)| *op).collect();
        assert_eq!(
            ops,
            [OpCode::Text, OpCode::Ping, OpCode::Pong, OpCode::Text]
        );
        assert_eq!(frames[0].1, b"first");
        assert_eq!(
            frames[2].1.len(),
            CONTROL_PAYLOAD,
            "a pong is cut to a control frame"
        );
        assert_eq!(frames[3].1, "é".repeat(40_000).as_bytes());
        closer.close(Ending::Plain);
        assert_eq!(drain(body).await, [(OpCode::Close, Vec::new())]);
        drop(out);
    }

    #[actix_web::test]
    async fn a_frame_sent_to_many_sessions_is_encoded_once() {
        let frame = OutFrame::text(&"delta ".repeat(500));
        let mut chunks = Vec::new();
        for _ in 0..3 {
            let (out, _closer, mut body) = queue(1, BoxBody::new(()));
            out.try_send(frame.clone()).expect("room in the queue");
            let chunk = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx))
                .await
                .expect("a frame is queued")
                .expect("an infallible body");
            chunks.push(chunk);
        }
        assert!(
            chunks.iter().all(|c| c.as_ptr() == chunks[0].as_ptr()),
            "every session's chunk is the one encoding"
        );
        assert_eq!(
            parse_all(BytesMut::from(&chunks[0][..])),
            [(OpCode::Text, "delta ".repeat(500).into_bytes())]
        );
    }

    #[actix_web::test]
    async fn a_close_goes_ahead_of_a_full_queue_and_ends_the_body() {
        let (out, closer, body) = queue(2, BoxBody::new(()));
        out.try_send(OutFrame::text("one"))
            .expect("room in the queue");
        out.try_send(OutFrame::text("two"))
            .expect("room in the queue");
        assert!(
            matches!(
                out.try_send(OutFrame::ping()),
                Err(mpsc::error::TrySendError::Full(_))
            ),
            "a full queue refuses at once"
        );
        closer.close(Ending::GoingAway);
        let mut going_away = vec![0x03, 0xe9];
        going_away.extend_from_slice(GOING_AWAY_REASON.as_bytes());
        assert_eq!(
            drain(body).await,
            [(OpCode::Close, going_away)],
            "status 1001 and its reason"
        );
        drop(out);
    }

    #[actix_web::test]
    async fn a_dropped_closer_closes_too() {
        let (out, closer, body) = queue(2, BoxBody::new(()));
        drop(closer);
        assert_eq!(drain(body).await, [(OpCode::Close, Vec::new())]);
        drop(out);
    }
}
