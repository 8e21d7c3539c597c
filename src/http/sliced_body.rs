//! `SlicedBody`: a response body handed to actix-http in slices that fit the connection's
//! write buffer, so that a long-lived connection's buffer never grows.
//!
//! actix-http copies every body chunk into the connection's write buffer (8 KiB to start) and
//! keeps whatever capacity that buffer once needed, up to 128 KiB, for the connection's life.
//! A WebSocket's body (`realtime::outgoing`) hands over one frame per chunk, and a dashboard's
//! snapshot is about 15 KB: unsliced, it doubled the buffer to 16 KiB on most dashboard
//! connections, 6.4 KB more per idle session (heaptrack, 10,000 sessions). The server pulls
//! another chunk only while less than `PULL_BELOW` bytes are buffered (`h1_write_buffer_size`),
//! so with slices of at most `SLICE` bytes the buffer never needs more than its first 8 KiB,
//! partial writes included. The slices share the chunk's memory; nothing is copied.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;

/// actix-http's initial write buffer, which it allocates for every connection.
const WRITE_BUFFER: usize = 8 * 1024;
/// The server's `h1_write_buffer_size`: it pulls another body chunk only while less than this
/// is buffered. Room for a response head, so that a head and its body still leave in one write.
pub const PULL_BELOW: usize = 512;
/// Largest slice. It is pulled while fewer than `PULL_BELOW` bytes wait, and after a partial
/// write those may sit behind as many already written (the buffer moves its bytes to the front
/// only when the written ones are at least as many): so up to twice `PULL_BELOW` is taken.
pub const SLICE: usize = WRITE_BUFFER - 2 * PULL_BELOW;

pub struct SlicedBody<B> {
    inner: B,
    rest: Bytes,
}

impl<B> SlicedBody<B> {
    pub fn new(inner: B) -> Self {
        SlicedBody {
            inner,
            rest: Bytes::new(),
        }
    }
}

impl<B: MessageBody + Unpin> MessageBody for SlicedBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.rest = chunk,
                other => return other,
            }
        }
        let n = this.rest.len().min(SLICE);
        Poll::Ready(Some(Ok(this.rest.split_to(n))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::BodyStream;
    use futures_util::stream;

    #[actix_web::test]
    async fn every_byte_arrives_in_order_and_no_slice_is_larger_than_the_limit() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(vec![1u8; 10_000])),
            Ok(Bytes::new()),
            Ok(Bytes::from(vec![2u8; SLICE])),
            Ok(Bytes::from(vec![3u8; 7])),
        ];
        let mut sliced = SlicedBody::new(BodyStream::new(stream::iter(chunks)));
        assert_eq!(sliced.size(), BodySize::Stream);
        let mut seen = Vec::new();
        let mut largest = 0;
        while let Some(slice) = std::future::poll_fn(|cx| Pin::new(&mut sliced).poll_next(cx)).await
        {
            // unwrap: the test's stream yields no errors.
            let slice = slice.unwrap();
            largest = largest.max(slice.len());
            seen.extend_from_slice(&slice);
        }
        assert_eq!(largest, SLICE);
        let mut expected = vec![1u8; 10_000];
        expected.extend(vec![2u8; SLICE]);
        expected.extend(vec![3u8; 7]);
        assert_eq!(seen, expected);
    }
}
