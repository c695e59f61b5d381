//! Kafka's framing: every request and response is a 4-byte big-endian size followed by that
//! many bytes.
//!
//! Reading is incremental and never trusts the declared size for allocation: a client that
//! declares 100 MiB and sends 10 bytes makes us hold 10 bytes plus at most [`READ_CHUNK`] of
//! spare capacity, not 100 MiB. Memory follows the bytes actually received.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::FrameError;

/// Length of the size prefix in front of every frame.
pub const SIZE_PREFIX_LEN: usize = 4;

/// Kafka's default `socket.request.max.bytes`: the largest request frame accepted, prefix
/// excluded.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 100 * 1024 * 1024;

/// The most spare capacity [`parse_frame`] reserves ahead of a partially received frame. The
/// next socket read fills at most this much; the following call reserves the next step.
pub const READ_CHUNK: usize = 64 * 1024;

/// The largest payload a 4-byte size prefix can announce.
pub const MAX_FRAME_SIZE: usize = i32::MAX as usize;

/// Takes the next complete frame off the front of `buf`, without its size prefix.
///
/// Returns `Ok(None)` while the frame is incomplete, after making sure `buf` has room for the
/// next read step: `min(bytes still missing, READ_CHUNK)`. `BytesMut` may round a growth up
/// to twice its current capacity, so what is allocated stays within a small factor of what
/// was received, whatever the prefix declares.
///
/// A negative size, or one above `max_size` (`socket.request.max.bytes`), is an error as soon
/// as the prefix is read, before anything is reserved for the body; the connection should then
/// be closed, as Kafka does. A size of zero yields an empty frame (Kafka's network layer
/// accepts it; decoding it then fails).
pub fn parse_frame(buf: &mut BytesMut, max_size: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < SIZE_PREFIX_LEN {
        buf.reserve(SIZE_PREFIX_LEN - buf.len());
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let size = usize::try_from(declared).map_err(|_| FrameError::NegativeSize(declared))?;
    if size > max_size {
        return Err(FrameError::TooLarge {
            size,
            max: max_size,
        });
    }
    let total = SIZE_PREFIX_LEN + size;
    if buf.len() < total {
        buf.reserve((total - buf.len()).min(READ_CHUNK));
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    frame.advance(SIZE_PREFIX_LEN);
    Ok(Some(frame.freeze()))
}

/// The 4-byte size prefix for a payload of `len` bytes.
pub fn size_prefix(len: usize) -> Result<[u8; 4], FrameError> {
    let size = i32::try_from(len).map_err(|_| FrameError::TooLarge {
        size: len,
        max: MAX_FRAME_SIZE,
    })?;
    Ok(size.to_be_bytes())
}

/// Builds one frame: reserves the size prefix, lets `encode` append the payload, then writes
/// the payload's length into the prefix. `capacity` is the expected payload length, so that
/// the buffer is allocated once.
pub(crate) fn encode_frame<E>(
    capacity: usize,
    encode: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<Bytes, E>
where
    E: From<FrameError>,
{
    let mut buf = BytesMut::with_capacity(SIZE_PREFIX_LEN.saturating_add(capacity));
    buf.put_bytes(0, SIZE_PREFIX_LEN);
    encode(&mut buf)?;
    let prefix = size_prefix(buf.len() - SIZE_PREFIX_LEN)?;
    buf[..SIZE_PREFIX_LEN].copy_from_slice(&prefix);
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_prefix(size: i32, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_i32(size);
        buf.put_slice(body);
        buf
    }

    #[test]
    fn complete_frames_are_split_off_in_order() {
        let mut buf = with_prefix(3, b"abc");
        buf.put_i32(2);
        buf.put_slice(b"de");
        buf.put_slice(&[0, 0]); // the start of a third prefix
        assert_eq!(parse_frame(&mut buf, 100).unwrap().unwrap(), &b"abc"[..]);
        assert_eq!(parse_frame(&mut buf, 100).unwrap().unwrap(), &b"de"[..]);
        assert_eq!(parse_frame(&mut buf, 100).unwrap(), None);
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn incomplete_prefix_and_body_wait_for_more() {
        let mut buf = BytesMut::from(&[0u8, 0][..]);
        assert_eq!(parse_frame(&mut buf, 100).unwrap(), None);
        buf.put_slice(&[0, 5, b'h', b'e']);
        assert_eq!(parse_frame(&mut buf, 100).unwrap(), None);
        buf.put_slice(b"llo");
        assert_eq!(parse_frame(&mut buf, 100).unwrap().unwrap(), &b"hello"[..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn zero_size_frame_is_empty() {
        let mut buf = with_prefix(0, b"");
        assert_eq!(parse_frame(&mut buf, 100).unwrap().unwrap(), Bytes::new());
    }

    #[test]
    fn negative_size_is_rejected() {
        let mut buf = with_prefix(-1, b"xxxx");
        assert_eq!(
            parse_frame(&mut buf, 100),
            Err(FrameError::NegativeSize(-1))
        );
        let mut buf = with_prefix(i32::MIN, b"");
        assert_eq!(
            parse_frame(&mut buf, usize::MAX),
            Err(FrameError::NegativeSize(i32::MIN))
        );
    }

    #[test]
    fn oversize_is_rejected_before_reserving() {
        let mut buf = with_prefix(101, b"");
        let capacity = buf.capacity();
        assert_eq!(
            parse_frame(&mut buf, 100),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
        assert_eq!(buf.capacity(), capacity);
        // The boundary itself is accepted.
        let mut buf = with_prefix(100, &[7; 100]);
        assert_eq!(parse_frame(&mut buf, 100).unwrap().unwrap().len(), 100);
    }

    #[test]
    fn declared_size_does_not_drive_allocation() {
        // 100 MiB declared, 10 bytes sent: capacity grows by one read step, not 100 MiB.
        let mut buf = with_prefix(DEFAULT_MAX_REQUEST_SIZE as i32, &[1; 10]);
        assert_eq!(
            parse_frame(&mut buf, DEFAULT_MAX_REQUEST_SIZE).unwrap(),
            None
        );
        assert!(
            buf.capacity() <= 2 * (14 + READ_CHUNK),
            "{}",
            buf.capacity()
        );
        // Feeding the frame step by step keeps capacity proportional to what arrived.
        let mut received = 14;
        while received < 1024 * 1024 {
            let step = buf.capacity() - buf.len();
            buf.put_bytes(2, step);
            received += step;
            assert_eq!(
                parse_frame(&mut buf, DEFAULT_MAX_REQUEST_SIZE).unwrap(),
                None
            );
            assert!(buf.capacity() <= 2 * (received + READ_CHUNK));
        }
    }

    #[test]
    fn encode_frame_writes_the_payload_length() {
        let frame = encode_frame::<FrameError>(3, |buf| {
            buf.put_slice(b"xyz");
            Ok(())
        })
        .unwrap();
        assert_eq!(&frame[..], &[0, 0, 0, 3, b'x', b'y', b'z']);
        assert_eq!(size_prefix(258).unwrap(), [0, 0, 1, 2]);
        assert!(size_prefix(MAX_FRAME_SIZE + 1).is_err());
    }
}
