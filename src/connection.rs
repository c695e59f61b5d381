//! One client connection: read frames → decode → handle → write responses, in request
//! order.
//!
//! Requests are pipelined: each decoded request is handled by its own task as soon as it
//! is read, and its task's handle is queued for the writer, which awaits the handles in
//! queue order. A slow request (a long-poll Fetch, an acks=all Produce) therefore delays
//! the responses after it — Kafka clients match responses by order as well as correlation
//! id — but not the work on them. Tasks are spawned on the current thread (`spawn_local`)
//! and first polled in spawn order, so the messages of two requests to the same partition
//! reach its replica in the order the requests came (idempotent producers rely on it).
//!
//! The connection is closed, and only this one, on a frame that cannot be read (negative
//! size, above `socket.request.max.bytes`, undecodable), an unknown API key, an unsupported
//! version of any API but ApiVersions, and a failed acks=0 produce (Kafka's rules).
//!
//! Fetch responses are written as pieces: our own framing with `write_all`, records straight
//! from the segment files with `sendfile(2)`. The file slice holds its file open, so a
//! segment deleted by retention in the middle is still sent whole.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_actors::log::segment::FileSlice;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::handlers::{self, api_versions, Context, Reply};
use crate::protocol::{decode_request, parse_frame, FetchResponsePiece, RequestOutcome};

/// Requests read ahead of the response being written: the reader waits when this many are
/// queued (Kafka: `queued.max.requests` for the whole broker; one connection gets a slice).
const MAX_IN_FLIGHT: usize = 64;

/// Per-connection limits, from `[config]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// `socket.request.max.bytes`: a larger request frame closes the connection.
    pub max_request_size: usize,
    /// `connections.max.idle.ms`: a connection that sends nothing for this long is closed
    /// (after answering what it sent). `None`: never.
    pub idle_timeout: Option<Duration>,
}

/// `queued.max.request.bytes`: bytes of requests read and not yet answered, shared by every
/// connection of the broker.
#[derive(Debug, Clone)]
pub struct RequestBudget {
    semaphore: Arc<Semaphore>,
    total: usize,
}

impl RequestBudget {
    /// A budget of `bytes` (at least 1, at most 4 GiB).
    pub fn new(bytes: usize) -> RequestBudget {
        let total = bytes.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        RequestBudget {
            semaphore: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Takes `size` bytes (all of the budget for a larger request), waiting until they
    /// are free.
    async fn take(&self, size: usize) -> Option<OwnedSemaphorePermit> {
        let want = u32::try_from(size.min(self.total)).unwrap_or(u32::MAX);
        Arc::clone(&self.semaphore)
            .acquire_many_owned(want)
            .await
            .ok()
    }
}

/// A response in the writer's queue, with the request's share of
/// `queued.max.request.bytes` (given back once the response is written).
#[derive(Debug)]
enum Queued {
    /// Known at once (ApiVersions at an unsupported version, a close).
    Ready(Reply),
    /// Being handled.
    Pending(JoinHandle<Reply>, Option<OwnedSemaphorePermit>),
}

/// Serves one connection until the client closes it, a protocol error closes it, or
/// `shutdown` turns true (then requests already read are answered before closing).
/// `budget` is the broker's `queued.max.request.bytes` (see `server.rs`).
pub async fn run(
    stream: TcpStream,
    ctx: Context,
    settings: ConnectionSettings,
    budget: Option<RequestBudget>,
    mut shutdown: watch::Receiver<bool>,
) {
    let max_request_size = settings.max_request_size;
    let mut ctx = ctx;
    ctx.peer = stream.peer_addr().ok();
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let (mut reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
    let writer = actix::spawn(write_replies(writer, rx));
    let mut buf = BytesMut::with_capacity(4096);
    // The budget taken for the frame being read (its size is known from its prefix).
    let mut reserved: Option<OwnedSemaphorePermit> = None;

    'read: loop {
        loop {
            if let (Some(budget), None) = (&budget, &reserved) {
                if let Some(size) = declared_size(&buf, max_request_size) {
                    // Take the frame's bytes before reading its body; wait while the
                    // broker is out of budget (the socket is not read meanwhile).
                    tokio::select! {
                        permit = budget.take(size) => match permit {
                            Some(p) => reserved = Some(p),
                            None => break 'read,
                        },
                        _ = shutdown.changed() => break 'read,
                        _ = tx.closed() => break 'read,
                    }
                }
            }
            let frame = match parse_frame(&mut buf, max_request_size) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(error = %e, "bad frame; closing the connection");
                    break 'read;
                }
            };
            let head = frame.slice(..frame.len().min(64));
            let queued = match decode_request(frame) {
                RequestOutcome::Request(request) => {
                    tracing::trace!(key = ?request.key(), "request");
                    let ctx = ctx.clone();
                    Queued::Pending(
                        actix::spawn(async move { handlers::handle(&ctx, *request).await }),
                        reserved.take(),
                    )
                }
                RequestOutcome::UnsupportedVersion(key)
                    if key.api_key == kafka_protocol::messages::ApiKey::ApiVersions =>
                {
                    Queued::Ready(api_versions::handle(key))
                }
                RequestOutcome::UnsupportedVersion(key) => {
                    tracing::info!(api = ?key.api_key, version = key.api_version, "unsupported version; closing the connection");
                    break 'read;
                }
                RequestOutcome::UnknownApiKey {
                    api_key,
                    api_version,
                    ..
                } => {
                    tracing::info!(
                        api_key,
                        api_version,
                        "unknown API key; closing the connection"
                    );
                    break 'read;
                }
                RequestOutcome::Malformed { key, error } => {
                    tracing::info!(?key, %error, head = ?head, "malformed request; closing the connection");
                    break 'read;
                }
            };
            // Frames answered at once give their budget back at once.
            reserved = None;
            if tx.send(queued).await.is_err() {
                break 'read;
            }
        }
        let idle = async {
            match settings.idle_timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = idle => {
                tracing::debug!("idle for connections.max.idle.ms; closing the connection");
                break;
            }
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "read failed");
                    break;
                }
            },
            _ = shutdown.changed() => break,
            // The writer stopped (write error or a reply that closes the connection).
            _ = tx.closed() => break,
        }
    }
    // Requests already read are answered; then the writer closes the socket.
    drop(tx);
    if let Err(e) = writer.await {
        tracing::warn!(error = %e, "connection writer failed");
    }
}

/// Writes the replies in queue order; stops at the first write error or closing reply.
async fn write_replies(mut writer: OwnedWriteHalf, mut rx: mpsc::Receiver<Queued>) {
    while let Some(queued) = rx.recv().await {
        let reply = match queued {
            Queued::Ready(reply) => reply,
            Queued::Pending(handle, permit) => {
                let reply = match handle.await {
                    Ok(reply) => reply,
                    Err(e) => Reply::Close(format!("request handler failed: {e}")),
                };
                // The request is answered (its bytes gone with its handler); the response
                // itself is bounded by the request's own limits.
                drop(permit);
                reply
            }
        };
        let written = match reply {
            Reply::Frame(frame) => writer.write_all(&frame).await,
            Reply::Fetch(pieces) => write_pieces(&mut writer, pieces).await,
            Reply::Nothing => Ok(()),
            Reply::Close(reason) => {
                tracing::info!(%reason, "closing the connection");
                break;
            }
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "write failed; closing the connection");
            break;
        }
    }
    // Wakes the reader (`tx.closed()`) if it is still reading.
    rx.close();
    let _ = writer.shutdown().await;
}

/// The size a frame in `buf` declares, once its 4-byte prefix is there and valid (an
/// invalid one is left for `parse_frame` to refuse).
fn declared_size(buf: &[u8], max_request_size: usize) -> Option<usize> {
    let prefix: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    usize::try_from(i32::from_be_bytes(prefix))
        .ok()
        .filter(|size| *size <= max_request_size)
}

/// Writes a Fetch response: bytes as they are, records from their files.
async fn write_pieces(
    writer: &mut OwnedWriteHalf,
    pieces: Vec<FetchResponsePiece<FileSlice>>,
) -> io::Result<()> {
    for piece in pieces {
        match piece {
            FetchResponsePiece::Bytes(bytes) => writer.write_all(&bytes).await?,
            FetchResponsePiece::FileRecords { slice, len } => {
                send_file(writer.as_ref(), &slice, len).await?
            }
        }
    }
    Ok(())
}

/// Sends `len` bytes of `slice` on `stream` with `sendfile(2)`, waiting for the socket to
/// be writable whenever it would block. Nothing of ours is buffered in between: every
/// earlier piece went out with `write_all` on the same unbuffered stream.
async fn send_file(stream: &TcpStream, slice: &FileSlice, len: usize) -> io::Result<()> {
    let mut offset = nix::libc::off_t::try_from(slice.position)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position too large"))?;
    let mut remaining = len;
    while remaining > 0 {
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            nix::sys::sendfile::sendfile(stream, &*slice.file, Some(&mut offset), remaining)
                .map_err(io::Error::from)
        });
        match sent {
            // The file is shorter than the slice: the frame's size prefix promised bytes that
            // do not exist, so the stream cannot be continued.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended inside a fetch slice",
                ))
            }
            Ok(n) => remaining = remaining.saturating_sub(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
