//! The parking queue, for the operator: what is parked and why, and putting it back.
//!
//! A message lands in `<queue>.parking` when it can never succeed as it is (undecodable, an
//! invariant it violates), when it failed `max_attempts` times, or when it crashed its consumer
//! again and again (the quorum queue's delivery limit). Once the cause is fixed (a bug fixed and
//! deployed, data repaired), the messages are replayed:
//!
//! ```text
//! cargo xtask parked list inventory      # each parked message: id, type, attempts, error
//! cargo xtask parked replay inventory    # back to inventory.orders, attempts reset
//! ```
//!
//! **A replay is idempotent.** It republishes each message to its consumer's main queue (with
//! publisher confirms, before the parked copy is acknowledged) with its attempt count reset; the
//! consumer's inbox recognises any message it has already handled, so replaying twice, or
//! replaying a duplicate that was parked after its twin succeeded, changes nothing.
//!
//! **Listing does not consume.** [`list`] takes every message without acknowledging it and then
//! closes its channel, which hands them all back to the queue.

use contracts::events::EventEnvelope;
use lapin::{
    BasicProperties, Channel, Connection,
    message::Delivery,
    options::{
        BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
        QueueDeclareOptions,
    },
    types::{FieldTable, ShortString},
};
use prost::Message as _;

use crate::{
    amqp,
    consumer::{ATTEMPTS_HEADER, ERROR_HEADER, ORIGINAL_ROUTING_KEY_HEADER},
    topology::ConsumerTopology,
};

/// One parked message, as an operator needs to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The event id of its envelope (empty for a body that is no envelope).
    pub event_id: String,
    /// The event's protobuf name, from its envelope.
    pub event_type: String,
    /// The routing key it was first published with.
    pub routing_key: String,
    /// Failed attempts before it was parked.
    pub attempts: u32,
    /// The last handler error.
    pub error: String,
}

/// Why the parking queue could not be read or replayed.
#[derive(Debug, thiserror::Error)]
pub enum ParkingError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker did not confirm the replayed message {0}")]
    NotConfirmed(String),
}

/// Every message parked for `topology`'s queue, oldest first, leaving them parked.
pub async fn list(
    connection: &Connection,
    topology: &ConsumerTopology,
) -> Result<Vec<Parked>, ParkingError> {
    let channel = connection.create_channel().await?;
    let parked = take_parked(&channel, &topology.parking_queue())
        .await?
        .iter()
        .map(|delivery| describe(&delivery.data, &delivery.properties, &delivery.routing_key))
        .collect();
    // Closing without acknowledging hands every message back to the queue.
    channel.close(200, "parked messages listed".into()).await?;
    Ok(parked)
}

/// Moves the messages parked for `topology`'s queue back to it, with their attempt count reset;
/// only those whose message id is in `only`, when given. Returns the messages replayed.
pub async fn replay(
    connection: &Connection,
    topology: &ConsumerTopology,
    only: Option<&[String]>,
) -> Result<Vec<Parked>, ParkingError> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut replayed = Vec::new();
    for delivery in take_parked(&channel, &topology.parking_queue()).await? {
        let parked = describe(&delivery.data, &delivery.properties, &delivery.routing_key);
        if only.is_some_and(|ids| !ids.contains(&parked.event_id)) {
            // Not asked for: it goes back when the channel closes.
            continue;
        }
        // A fresh start: no attempts spent, no error; trace context and the rest are kept.
        let headers: FieldTable = delivery
            .properties
            .headers()
            .clone()
            .unwrap_or_default()
            .inner()
            .iter()
            .filter(|(key, _)| key.as_str() != ATTEMPTS_HEADER && key.as_str() != ERROR_HEADER)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into();
        let properties: BasicProperties = delivery.properties.clone().with_headers(headers);
        // The default exchange routes by queue name: straight back to the consumer's queue.
        let confirmation = channel
            .basic_publish(
                ShortString::from(""),
                ShortString::from(topology.queue.as_str()),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &delivery.data,
                properties,
            )
            .await?
            .await?;
        match confirmation {
            lapin::Confirmation::Ack(None) => {
                delivery.ack(BasicAckOptions::default()).await?;
                replayed.push(parked);
            }
            _ => return Err(ParkingError::NotConfirmed(parked.event_id)),
        }
    }
    channel
        .close(200, "parked messages replayed".into())
        .await?;
    Ok(replayed)
}

/// Takes, unacknowledged, every message waiting in the parking `queue` now: bounded by the depth
/// seen first, so messages parked meanwhile wait for the next call. Each goes back to the queue
/// unless acknowledged before the channel closes.
async fn take_parked(channel: &Channel, queue: &str) -> Result<Vec<Delivery>, lapin::Error> {
    let waiting = depth(channel, queue).await?;
    let mut taken = Vec::new();
    for _ in 0..waiting {
        let Some(message) = channel
            .basic_get(ShortString::from(queue), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        taken.push(message.delivery);
    }
    Ok(taken)
}

async fn depth(channel: &Channel, queue: &str) -> Result<u32, lapin::Error> {
    let declared = channel
        .queue_declare(
            ShortString::from(queue),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(declared.message_count())
}

fn describe(body: &[u8], properties: &BasicProperties, routing_key: &ShortString) -> Parked {
    let headers = properties.headers().clone().unwrap_or_default();
    let envelope = EventEnvelope::decode(body).unwrap_or_default();
    Parked {
        event_id: envelope.event_id,
        event_type: envelope.event_type,
        routing_key: amqp::header_str(&headers, ORIGINAL_ROUTING_KEY_HEADER)
            .map_or_else(|| routing_key.to_string(), str::to_owned),
        attempts: amqp::header_u32(&headers, ATTEMPTS_HEADER).unwrap_or(0),
        error: amqp::header_str(&headers, ERROR_HEADER)
            .unwrap_or_default()
            .to_owned(),
    }
}
