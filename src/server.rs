//! The Kafka listener: accepts connections and hands each to its own task
//! ([`crate::connection::run`]), and shuts down gracefully.
//!
//! Shutdown (mini-redis's pattern): when `shutdown` completes the accept loop stops, every
//! connection is told through a watch channel to stop reading, answers what it has read and
//! closes; [`run`] returns once the last connection has dropped its completion sender.
//! `max.connections` bounds the open connections with a semaphore: the accept loop waits
//! for a permit before accepting. `max.connections.per.ip` closes a connection at once when
//! its address already has that many (Kafka does the same). `queued.max.request.bytes` is
//! one semaphore of bytes shared by every connection: a connection takes a request's size
//! from it before reading the request's body and gives it back when the response is
//! written, so the requests in memory never exceed it and a broker out of budget stops
//! reading sockets instead of growing.
//!
//! Everything runs on the actix System's thread (`spawn_local`): handlers talk to actors
//! whose addresses and replies need not be `Send`, and the heavy work (log I/O) happens on
//! the replicas' own arbiters.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::Instrument;

use crate::connection::{self, ConnectionSettings, RequestBudget};
use crate::handlers::Context;

/// Listener settings, from `[config]`.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// `max.connections`.
    pub max_connections: usize,
    /// `max.connections.per.ip`.
    pub max_connections_per_ip: usize,
    /// `queued.max.request.bytes`; `None`: unbounded.
    pub queued_max_request_bytes: Option<usize>,
    /// What every connection gets.
    pub connection: ConnectionSettings,
}

/// Serves Kafka clients on `listener` until `shutdown` completes, then waits for the open
/// connections to finish the requests they have read.
pub async fn run(
    listener: TcpListener,
    ctx: Context,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let (notify_shutdown, _) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let limit = Arc::new(Semaphore::new(
        settings.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    tokio::select! {
        () = accept_loop(&listener, &ctx, settings, &limit, &notify_shutdown, &done_tx) => {}
        () = shutdown => tracing::info!("shutting down: no new connections"),
    }
    drop(listener);
    let _ = notify_shutdown.send(true);
    drop(done_tx);
    // Every connection holds a sender; `recv` answers `None` once they are all gone.
    let _ = done_rx.recv().await;
    tracing::info!("all connections closed");
}

async fn accept_loop(
    listener: &TcpListener,
    ctx: &Context,
    settings: ServerSettings,
    limit: &Arc<Semaphore>,
    notify_shutdown: &watch::Sender<bool>,
    done: &mpsc::Sender<()>,
) {
    let mut backoff = Duration::from_millis(10);
    let budget = settings.queued_max_request_bytes.map(RequestBudget::new);
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let Ok(permit) = Arc::clone(limit).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = Duration::from_millis(10);
                accepted
            }
            Err(e) => {
                // Out of file descriptors and the like: wait and try again, as Kafka's
                // acceptor does, rather than give up the listener.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let ip = peer.ip();
        {
            let mut counts = per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            let count = counts.entry(ip).or_insert(0);
            if *count >= settings.max_connections_per_ip {
                tracing::info!(%peer, limit = settings.max_connections_per_ip, "max.connections.per.ip reached; closing the new connection");
                drop(stream);
                continue;
            }
            *count += 1;
        }
        tracing::debug!(%peer, "connection accepted");
        let ctx = ctx.clone();
        let shutdown = notify_shutdown.subscribe();
        let done = done.clone();
        let budget = budget.clone();
        let per_ip = Arc::clone(&per_ip);
        actix::spawn(
            async move {
                connection::run(stream, ctx, settings.connection, budget, shutdown).await;
                tracing::debug!("connection closed");
                let mut counts = per_ip.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(count) = counts.get_mut(&ip) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        counts.remove(&ip);
                    }
                }
                drop(counts);
                drop(permit);
                drop(done);
            }
            .instrument(tracing::info_span!("connection", %peer)),
        );
    }
}
