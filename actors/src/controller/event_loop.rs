//! The controller's event loop: one task per broker that campaigns in the controller
//! election and, once elected, runs the [`ActiveController`] — one operation at a time —
//! until leadership is lost, then campaigns again.
//!
//! While campaigning it answers every request `NotController`. While active it serves, in
//! one `select!`: loss of leadership (stop acting at once), requests from the
//! [`super::Controller`] actor, `/admin` requests (auto-creation, deletion), changes of
//! the metadata cache (brokers coming and going), and a retry timer after a failed step.
//! It ends when the actor is gone (resigning if it leads) or the session ends.

use std::sync::Arc;
use std::time::Duration;

use sluice_coordination::election::{Election, Leadership};
use sluice_coordination::{Coordination, WatchEvent};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::active::ActiveController;
use super::messages::{CreatePartitions, CreateTopics, CreatedTopic, DeleteTopics, TopicResults};
use super::ControllerConfig;
use crate::metadata::{paths, records, MetadataCache};
use crate::{Error, Result};

/// How long after a failed step (coordination trouble) the controller tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A reply channel.
type Reply<T> = oneshot::Sender<Result<TopicResults<T>>>;

/// A request from the actor to the loop.
#[derive(Debug)]
pub(crate) enum Command {
    CreateTopics {
        msg: CreateTopics,
        deadline: Option<Instant>,
        reply: Reply<CreatedTopic>,
    },
    DeleteTopics {
        msg: DeleteTopics,
        deadline: Option<Instant>,
        reply: Reply<()>,
    },
    CreatePartitions {
        msg: CreatePartitions,
        deadline: Option<Instant>,
        reply: Reply<()>,
    },
}

impl Command {
    /// Answers the whole request with `error()`.
    fn refuse(self, error: impl Fn() -> Error) {
        // A requester that gave up dropped its receiver: nothing to tell.
        match self {
            Command::CreateTopics { reply, .. } => drop(reply.send(Err(error()))),
            Command::DeleteTopics { reply, .. } => drop(reply.send(Err(error()))),
            Command::CreatePartitions { reply, .. } => drop(reply.send(Err(error()))),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Command::CreateTopics { deadline, .. }
            | Command::DeleteTopics { deadline, .. }
            | Command::CreatePartitions { deadline, .. } => *deadline,
        }
    }
}

/// What the loop needs.
#[derive(Debug)]
pub(crate) struct LoopContext {
    pub(crate) coord: Arc<dyn Coordination>,
    pub(crate) cache: MetadataCache,
    pub(crate) config: ControllerConfig,
}

/// Why an active period ended.
enum Outcome {
    /// Leadership lost (or never usable): campaign again.
    Lost,
    /// Could not act (e.g. no watch on `/admin`): resign so another broker can, then
    /// campaign again.
    Resign,
    /// The actor is gone: resign and stop.
    Shutdown,
    /// The coordination session ended: stop (the broker makes a new client and a new
    /// controller).
    SessionEnded,
}

/// Runs until the actor is gone or the session ends; `active` tells the actor whether
/// this broker is the controller now.
pub(crate) async fn run(
    ctx: LoopContext,
    mut commands: mpsc::Receiver<Command>,
    active: watch::Sender<bool>,
) {
    let election = match Election::new(
        Arc::clone(&ctx.coord),
        paths::CONTROLLER,
        paths::CONTROLLER_EPOCH,
    ) {
        Ok(election) => election,
        Err(e) => {
            tracing::error!(error = %e, "controller: cannot set up the election");
            return;
        }
    };
    loop {
        let Some(leadership) = campaign(&election, ctx.config.broker_id, &mut commands).await
        else {
            return;
        };
        tracing::info!(
            broker = ctx.config.broker_id,
            epoch = leadership.epoch(),
            "this broker is the controller"
        );
        active.send_replace(true);
        let (outcome, leadership) = act(&ctx, leadership, &mut commands).await;
        active.send_replace(false);
        match outcome {
            Outcome::Lost => {
                tracing::warn!(broker = ctx.config.broker_id, "no longer the controller");
            }
            Outcome::Resign => {
                tracing::warn!(broker = ctx.config.broker_id, "controller resigning");
                if let Err(e) = leadership.resign().await {
                    tracing::warn!(error = %e, "controller: resigning failed");
                }
            }
            Outcome::Shutdown => {
                if let Err(e) = leadership.resign().await {
                    tracing::warn!(error = %e, "controller: resigning failed");
                }
                return;
            }
            Outcome::SessionEnded => return,
        }
    }
}

/// Campaigns until elected, answering requests `NotController` meanwhile. `None` when
/// the actor is gone or the session ended.
async fn campaign(
    election: &Election,
    broker_id: i32,
    commands: &mut mpsc::Receiver<Command>,
) -> Option<Leadership> {
    let election = election.clone();
    // In its own task: a campaign dropped just after winning would leave the leader key
    // held by nobody who acts on it.
    let mut task = tokio::spawn(async move {
        loop {
            match election
                .campaign(records::controller_candidate(broker_id))
                .await
            {
                Err(e) if e.is_retriable() => {
                    tracing::warn!(error = %e, "controller election: retrying");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                other => return other,
            }
        }
    });
    loop {
        tokio::select! {
            result = &mut task => {
                return match result {
                    Ok(Ok(leadership)) => Some(leadership),
                    Ok(Err(e)) => {
                        tracing::info!(error = %e, "controller: campaign ended");
                        None
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "controller: campaign task failed");
                        None
                    }
                };
            }
            command = commands.recv() => match command {
                Some(command) => command.refuse(|| Error::NotController),
                None => {
                    task.abort();
                    // Won just before the abort: step down rather than hold the key.
                    if let Ok(Ok(leadership)) = task.await {
                        let _ = leadership.resign().await;
                    }
                    return None;
                }
            },
        }
    }
}

/// Acts as the controller until leadership is lost, the actor is gone or the session
/// ends. Gives the leadership back to resign it if asked to.
async fn act(
    ctx: &LoopContext,
    mut leadership: Leadership,
    commands: &mut mpsc::Receiver<Command>,
) -> (Outcome, Leadership) {
    // Watch first, then read: no request falls between the two.
    let mut admin = match ctx.coord.watch(paths::ADMIN).await {
        Ok(watch) => watch,
        Err(e) => {
            tracing::warn!(error = %e, "controller: cannot watch /admin");
            let outcome = if e.is_retriable() {
                Outcome::Resign
            } else {
                Outcome::SessionEnded
            };
            return (outcome, leadership);
        }
    };
    let mut changes = ctx.cache.subscribe();
    let mut controller = ActiveController::new(
        Arc::clone(&ctx.coord),
        ctx.cache.clone(),
        ctx.config.clone(),
        &leadership,
    );
    let mut retry_at = None;
    note(catch_up(&mut controller).await, &mut retry_at);
    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Checked first: once leadership is lost, nothing else is done.
            biased;
            () = leadership.lost() => return (Outcome::Lost, leadership),
            command = commands.recv() => match command {
                Some(command) => serve(&mut controller, command).await,
                None => return (Outcome::Shutdown, leadership),
            },
            event = admin.next() => {
                let result = match event {
                    Some(WatchEvent::Put { key, .. }) => controller.process_admin_key(&key).await,
                    Some(WatchEvent::Resync) => controller.process_admin_requests().await,
                    Some(WatchEvent::Delete { .. }) => Ok(()),
                    None => return (Outcome::SessionEnded, leadership),
                };
                note(result, &mut retry_at);
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    // The cache stops only when the session ends.
                    return (Outcome::SessionEnded, leadership);
                }
                note(controller.maybe_reconcile().await, &mut retry_at);
            }
            () = retry => {
                retry_at = None;
                controller.force_reconcile();
                note(catch_up(&mut controller).await, &mut retry_at);
            }
        }
    }
}

/// Brings the cluster in line after an election or a failure: partition leadership for
/// the live brokers (and half-written topics completed), then pending `/admin` requests.
async fn catch_up(controller: &mut ActiveController) -> Result<()> {
    controller.maybe_reconcile().await?;
    controller.process_admin_requests().await
}

/// Schedules a retry after a failed step. A fenced write needs none: leadership is being
/// lost, and the loop stops on it.
fn note(result: Result<()>, retry_at: &mut Option<Instant>) {
    match result {
        Ok(()) => {}
        Err(Error::NotController) => {
            tracing::warn!("controller write fenced: another controller has been elected");
        }
        Err(e) => {
            tracing::warn!(error = %e, "controller step failed; retrying");
            retry_at.get_or_insert_with(|| Instant::now() + RETRY_AFTER);
        }
    }
}

/// Serves one request, unless its deadline passed while it waited.
async fn serve(controller: &mut ActiveController, command: Command) {
    if command.deadline().is_some_and(|d| Instant::now() >= d) {
        command.refuse(|| Error::Timeout("the request waited too long for the controller".into()));
        return;
    }
    match command {
        Command::CreateTopics { msg, reply, .. } => {
            let results = controller
                .create_topics(msg.topics, msg.validate_only)
                .await;
            let _ = reply.send(Ok(results));
        }
        Command::DeleteTopics { msg, reply, .. } => {
            let results = controller.delete_topics(msg.names).await;
            let _ = reply.send(Ok(results));
        }
        Command::CreatePartitions { msg, reply, .. } => {
            let results = controller
                .create_partitions(msg.topics, msg.validate_only)
                .await;
            let _ = reply.send(Ok(results));
        }
    }
}
