//! One connection to one broker: requests written in order by a writer task, responses read
//! by a reader task and matched to their requests (Kafka answers in request order on a
//! connection, and the correlation id is checked). ApiVersions is exchanged first, so every
//! request goes out at the highest version both sides speak.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::error::{ClientError, Result};

/// What a connection needs to know from the client's configuration.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionConfig {
    pub client_id: String,
    /// `request.timeout.ms`.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`.
    pub connect_timeout: Duration,
    /// `receive.message.max.bytes` (librdkafka's name): a larger response frame closes
    /// the connection instead of being allocated.
    pub max_response_bytes: usize,
}

type Reply = oneshot::Sender<Result<Bytes>>;

/// A request on its way: the frame and, unless the broker will not answer (acks=0
/// produce), where its response goes.
struct Outgoing {
    frame: Bytes,
    correlation_id: i32,
    reply: Option<Reply>,
}

/// A connection to a broker. Cheap to share (`Arc`); requests from many tasks are written
/// in the order they were submitted.
#[derive(Debug)]
pub(crate) struct Connection {
    addr: String,
    config: ConnectionConfig,
    tx: mpsc::Sender<Outgoing>,
    next_correlation_id: AtomicI32,
    closed: Arc<AtomicBool>,
    /// API key → (min, max) version the broker supports.
    versions: HashMap<i16, (i16, i16)>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("correlation_id", &self.correlation_id)
            .field("bytes", &self.frame.len())
            .finish()
    }
}

impl Connection {
    /// Connects to `addr` and exchanges ApiVersions.
    pub(crate) async fn connect(addr: &str, config: ConnectionConfig) -> Result<Connection> {
        let io = |reason: String| ClientError::Io {
            addr: addr.to_owned(),
            reason,
        };
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| io(format!("no connection within {:?}", config.connect_timeout)))?
            .map_err(|e| io(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(1024);
        let pending: Arc<Mutex<VecDeque<(i32, Reply)>>> = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(write_loop(
            write,
            rx,
            Arc::clone(&pending),
            Arc::clone(&closed),
            addr.to_owned(),
        ));
        tokio::spawn(read_loop(
            read,
            pending,
            Arc::clone(&closed),
            addr.to_owned(),
            config.max_response_bytes,
        ));
        let mut conn = Connection {
            addr: addr.to_owned(),
            config,
            tx,
            next_correlation_id: AtomicI32::new(0),
            closed,
            versions: HashMap::new(),
        };
        conn.versions = conn.api_versions().await?;
        Ok(conn)
    }

    /// Whether the connection failed or closed (a new one must be opened).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// ApiVersions v3 (the client's name and version), falling back to v0 if the broker
    /// does not know v3 — it answers UNSUPPORTED_VERSION in the v0 format.
    async fn api_versions(&self) -> Result<HashMap<i16, (i16, i16)>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice-rust"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response: ApiVersionsResponse = self.send_at(request.clone(), 3).await?;
        if response.error_code == super::error::code::UNSUPPORTED_VERSION {
            response = self.send_at(ApiVersionsRequest::default(), 0).await?;
        }
        super::error::check(
            || format!("ApiVersions from {}", self.addr),
            response.error_code,
            None,
        )?;
        Ok(response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect())
    }

    /// The version to send `Q` at: the highest both the broker and this client speak,
    /// capped at `max`.
    pub(crate) fn version<Q: Request>(&self, max: i16) -> Result<i16> {
        let ours = <Q as kafka_protocol::protocol::Message>::VERSIONS;
        let (broker_min, broker_max) =
            self.versions
                .get(&Q::KEY)
                .copied()
                .ok_or_else(|| ClientError::UnsupportedVersion {
                    addr: self.addr.clone(),
                    api: api_name(Q::KEY),
                })?;
        let version = broker_max.min(ours.max).min(max);
        if version < broker_min.max(ours.min) {
            return Err(ClientError::UnsupportedVersion {
                addr: self.addr.clone(),
                api: api_name(Q::KEY),
            });
        }
        Ok(version)
    }

    /// Sends `request` at the best version (capped at `max`) and awaits its response.
    pub(crate) async fn send<Q: Request>(&self, request: Q, max: i16) -> Result<Q::Response> {
        let version = self.version::<Q>(max)?;
        self.send_at(request, version).await
    }

    /// Sends `request` at `version` and awaits its response (within `request.timeout.ms`).
    pub(crate) async fn send_at<Q: Request>(
        &self,
        request: Q,
        version: i16,
    ) -> Result<Q::Response> {
        self.send_at_within(request, version, self.config.request_timeout)
            .await
    }

    /// Sends `request` at `version`, waiting up to `timeout` for the answer (a long-poll
    /// fetch waits longer than `request.timeout.ms`).
    pub(crate) async fn send_at_within<Q: Request>(
        &self,
        request: Q,
        version: i16,
        timeout: Duration,
    ) -> Result<Q::Response> {
        let (frame, correlation_id) = self.encode(&request, version)?;
        let (reply, rx) = oneshot::channel();
        self.submit(Outgoing {
            frame,
            correlation_id,
            reply: Some(reply),
        })
        .await?;
        let mut frame = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer?,
            Ok(Err(_)) => return Err(ClientError::Disconnected(self.addr.clone())),
            Err(_) => {
                // The connection's order is lost with this answer: close it.
                self.closed.store(true, Ordering::Release);
                return Err(ClientError::Timeout(
                    timeout,
                    format!("{} to {}", api_name(Q::KEY), self.addr),
                ));
            }
        };
        let header_version = if Q::KEY == ApiKey::ApiVersions as i16 {
            0
        } else {
            Q::Response::header_version(version)
        };
        let protocol = |reason: String| ClientError::Protocol {
            addr: self.addr.clone(),
            reason,
        };
        let header = ResponseHeader::decode(&mut frame, header_version)
            .map_err(|e| protocol(format!("response header: {e}")))?;
        if header.correlation_id != correlation_id {
            self.closed.store(true, Ordering::Release);
            return Err(protocol(format!(
                "correlation id {} answered where {correlation_id} was expected",
                header.correlation_id
            )));
        }
        Q::Response::decode(&mut frame, version)
            .map_err(|e| protocol(format!("{} v{version} response: {e}", api_name(Q::KEY))))
    }

    /// Sends `request` at `version` without waiting for an answer (acks=0 produce: the
    /// broker sends none).
    pub(crate) async fn send_no_response<Q: Request>(
        &self,
        request: Q,
        version: i16,
    ) -> Result<()> {
        let (frame, correlation_id) = self.encode(&request, version)?;
        self.submit(Outgoing {
            frame,
            correlation_id,
            reply: None,
        })
        .await
    }

    fn encode<Q: Request>(&self, request: &Q, version: i16) -> Result<(Bytes, i32)> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(Q::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.config.client_id.clone())));
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&[0; 4]);
        let encode_error = |e: String| ClientError::Protocol {
            addr: self.addr.clone(),
            reason: format!("cannot encode {} v{version}: {e}", api_name(Q::KEY)),
        };
        header
            .encode(&mut buf, Q::header_version(version))
            .map_err(|e| encode_error(e.to_string()))?;
        request
            .encode(&mut buf, version)
            .map_err(|e| encode_error(e.to_string()))?;
        let size = i32::try_from(buf.len() - 4).map_err(|_| {
            ClientError::InvalidArgument(format!("a request of {} bytes", buf.len()))
        })?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        Ok((buf.freeze(), correlation_id))
    }

    async fn submit(&self, outgoing: Outgoing) -> Result<()> {
        if self.is_closed() {
            return Err(ClientError::Disconnected(self.addr.clone()));
        }
        self.tx
            .send(outgoing)
            .await
            .map_err(|_| ClientError::Disconnected(self.addr.clone()))
    }
}

async fn write_loop(
    mut write: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    pending: Arc<Mutex<VecDeque<(i32, Reply)>>>,
    closed: Arc<AtomicBool>,
    addr: String,
) {
    while let Some(out) = rx.recv().await {
        if closed.load(Ordering::Acquire) {
            break;
        }
        if let Some(reply) = out.reply {
            pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_back((out.correlation_id, reply));
        }
        if let Err(e) = write.write_all(&out.frame).await {
            tracing::debug!(%addr, error = %e, "write failed; closing the connection");
            break;
        }
        // The reader may have stopped meanwhile: nobody would answer what was queued.
        if closed.load(Ordering::Acquire) {
            break;
        }
    }
    closed.store(true, Ordering::Release);
    let _ = write.shutdown().await;
    fail_pending(&pending, &addr);
}

async fn read_loop(
    mut read: OwnedReadHalf,
    pending: Arc<Mutex<VecDeque<(i32, Reply)>>>,
    closed: Arc<AtomicBool>,
    addr: String,
    max_response_bytes: usize,
) {
    loop {
        let mut size = [0u8; 4];
        if read.read_exact(&mut size).await.is_err() {
            break;
        }
        let size = i32::from_be_bytes(size);
        let Some(size) = usize::try_from(size)
            .ok()
            .filter(|s| *s >= 4 && *s <= max_response_bytes)
        else {
            tracing::warn!(%addr, size, max_response_bytes, "response frame size out of range; closing the connection");
            break;
        };
        let mut frame = BytesMut::zeroed(size);
        if read.read_exact(&mut frame).await.is_err() {
            break;
        }
        let frame = frame.freeze();
        let correlation_id = (&frame[..4]).get_i32();
        let next = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        match next {
            Some((expected, reply)) if expected == correlation_id => {
                let _ = reply.send(Ok(frame));
            }
            Some((expected, reply)) => {
                let _ = reply.send(Err(ClientError::Protocol {
                    addr: addr.clone(),
                    reason: format!(
                        "correlation id {correlation_id} answered where {expected} was expected"
                    ),
                }));
                break;
            }
            None => {
                tracing::warn!(%addr, correlation_id, "a response nobody asked for; closing the connection");
                break;
            }
        }
        if closed.load(Ordering::Acquire) {
            break;
        }
    }
    closed.store(true, Ordering::Release);
    fail_pending(&pending, &addr);
}

fn fail_pending(pending: &Mutex<VecDeque<(i32, Reply)>>, addr: &str) {
    let drained: Vec<_> = pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .collect();
    for (_, reply) in drained {
        let _ = reply.send(Err(ClientError::Disconnected(addr.to_owned())));
    }
}

/// Kafka's name for an API key.
pub(crate) fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|()| format!("API {key}"), |k| format!("{k:?}"))
}
