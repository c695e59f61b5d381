//! The `Controller` actor: every broker runs one; the one elected through the
//! coordination service (`/controller`, epochs in `/controller_epoch`, candidate value =
//! the broker id) acts for the cluster — partition assignment, leader/ISR/epoch state,
//! topic creation, deletion and growth — and the others answer `NotController`.
//!
//! Shape: the actor is the broker's handle (handlers send it [`CreateTopics`],
//! [`DeleteTopics`], [`CreatePartitions`], [`IsActive`]); the work happens in one task,
//! the event loop, which campaigns and, once elected, serves requests, `/admin` requests
//! and broker changes one at a time through an [`ActiveController`]. The actor's handlers
//! only forward (`ResponseFuture`): the loop is what serialises decisions, so the actor
//! never blocks its arbiter while a large topic is written.
//!
//! Files: `mod.rs` (the actor), `messages.rs`, `event_loop.rs` (campaign / act / campaign
//! again), `active.rs` (the elected controller's state, fenced writes, `/admin`
//! requests), `topics.rs` (CreateTopics, DeleteTopics, CreatePartitions),
//! `broker_changes.rs` (leaders and ISRs as brokers come and go), `assignment.rs`
//! (Kafka's replica assignment), `leader_election.rs` (Kafka's partition leader election).
//!
//! The loop reads the cluster from this broker's [`MetadataCache`] (partition states and
//! live brokers for elections) and from the coordination service directly where it must
//! be current (existence checks, live brokers for an assignment). Every write is fenced
//! by the leadership's guard; see [`active`].
//!
//! Lifecycle: start it inside an actix System (`Controller::new(..).start()`). When the
//! actor stops, the loop resigns if it leads and ends. When the coordination session
//! ends, the loop ends and every request answers `NotController`: the broker makes a new
//! client, cache and controller.

pub mod active;
pub mod assignment;
mod broker_changes;
mod event_loop;
pub mod leader_election;
pub mod messages;
mod topics;

use std::sync::Arc;

use actix::{Actor, Context, Handler, MessageResult, ResponseFuture};
use sluice_coordination::Coordination;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

pub use active::ActiveController;
pub use messages::{
    CreatePartitions, CreateTopics, CreatedTopic, DeleteTopics, IsActive, NewPartitions, NewTopic,
    TopicResults,
};

use self::event_loop::{Command, LoopContext};
use crate::log::config::LogConfig;
use crate::metadata::MetadataCache;
use crate::{Error, Result};

/// Requests queued for the loop before senders wait.
const COMMAND_QUEUE: usize = 64;

/// The broker settings the controller needs, with Kafka's names.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// `broker.id`: this broker's candidate value in the election.
    pub broker_id: i32,
    /// `num.partitions`: partitions of a topic created without a count (default 1).
    pub num_partitions: i32,
    /// `default.replication.factor` (default 1).
    pub default_replication_factor: i16,
    /// The broker-level topic config defaults (`LogConfig::from_broker_props` of the
    /// broker's config): new topics' overrides are validated on top of them, and
    /// `unclean.leader.election.enable` is read from them unless a topic overrides it.
    pub log_defaults: LogConfig,
}

impl ControllerConfig {
    /// Kafka's defaults for broker `broker_id`.
    pub fn new(broker_id: i32) -> ControllerConfig {
        ControllerConfig {
            broker_id,
            num_partitions: 1,
            default_replication_factor: 1,
            log_defaults: LogConfig::default(),
        }
    }
}

/// The controller actor; see the module doc.
#[derive(Debug)]
pub struct Controller {
    commands: mpsc::Sender<Command>,
    active: watch::Receiver<bool>,
    /// The loop's half, until `started` spawns it.
    pending: Option<(LoopContext, mpsc::Receiver<Command>, watch::Sender<bool>)>,
}

impl Controller {
    /// A controller for the broker `config.broker_id`, using its coordination client and
    /// metadata cache. Nothing runs until the actor is started.
    pub fn new(
        coord: Arc<dyn Coordination>,
        cache: MetadataCache,
        config: ControllerConfig,
    ) -> Controller {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (active_tx, active_rx) = watch::channel(false);
        let ctx = LoopContext {
            coord,
            cache,
            config,
        };
        Controller {
            commands: tx,
            active: active_rx,
            pending: Some((ctx, rx, active_tx)),
        }
    }

    /// Forwards a request to the loop and waits for its answer. A loop that is gone
    /// (session ended) answers `NotController`.
    fn forward<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<TopicResults<T>>>) -> Command,
    ) -> ResponseFuture<Result<TopicResults<T>>> {
        let commands = self.commands.clone();
        let (reply, answer) = oneshot::channel();
        let command = make(reply);
        Box::pin(async move {
            commands
                .send(command)
                .await
                .map_err(|_| Error::NotController)?;
            answer.await.map_err(|_| Error::NotController)?
        })
    }
}

/// The deadline for a request's `timeout` (none for zero: see [`CreateTopics`]).
fn deadline(timeout: std::time::Duration) -> Option<Instant> {
    (!timeout.is_zero()).then(|| Instant::now() + timeout)
}

impl Actor for Controller {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        if let Some((ctx, commands, active)) = self.pending.take() {
            actix::spawn(event_loop::run(ctx, commands, active));
        }
    }
}

impl Handler<CreateTopics> for Controller {
    type Result = ResponseFuture<Result<TopicResults<CreatedTopic>>>;

    fn handle(&mut self, msg: CreateTopics, _ctx: &mut Context<Self>) -> Self::Result {
        let deadline = deadline(msg.timeout);
        self.forward(|reply| Command::CreateTopics {
            msg,
            deadline,
            reply,
        })
    }
}

impl Handler<DeleteTopics> for Controller {
    type Result = ResponseFuture<Result<TopicResults<()>>>;

    fn handle(&mut self, msg: DeleteTopics, _ctx: &mut Context<Self>) -> Self::Result {
        let deadline = deadline(msg.timeout);
        self.forward(|reply| Command::DeleteTopics {
            msg,
            deadline,
            reply,
        })
    }
}

impl Handler<CreatePartitions> for Controller {
    type Result = ResponseFuture<Result<TopicResults<()>>>;

    fn handle(&mut self, msg: CreatePartitions, _ctx: &mut Context<Self>) -> Self::Result {
        let deadline = deadline(msg.timeout);
        self.forward(|reply| Command::CreatePartitions {
            msg,
            deadline,
            reply,
        })
    }
}

impl Handler<IsActive> for Controller {
    type Result = MessageResult<IsActive>;

    fn handle(&mut self, _msg: IsActive, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(*self.active.borrow())
    }
}
