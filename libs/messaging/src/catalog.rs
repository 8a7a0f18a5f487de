//! Every integration event, in one table: its routing key and aggregate, for publishing, and its
//! variant of [`Event`], for consuming.
//!
//! Routing keys follow `<service>.<aggregate>.<event>` on the topic exchange `shop.events`, so a
//! consumer binds to exactly what it needs (`orders.order.*`, `payments.#`).
//!
//! **Consumers match, they do not compare strings.** The consumer decodes each delivery's
//! payload once, by the type its envelope names, into an [`Event`]; a handler matches on the
//! variants it cares about. A type name compared by hand in every handler (`if event_type ==
//! X::full_name()`, then decode, then the next `else if`) is four copies of one mechanism and a
//! typo away from silently ignoring an event.

use contracts::events;

/// An event that can be published: a protobuf message that knows its route.
pub trait IntegrationEvent: prost::Message + prost::Name + Sized {
    /// e.g. `orders.order.confirmed`.
    const ROUTING_KEY: &'static str;
    /// e.g. `order`; with [`IntegrationEvent::aggregate_id`] it names the event's stream.
    const AGGREGATE_TYPE: &'static str;
    fn aggregate_id(&self) -> String;
}

macro_rules! integration_events {
    ($($event:ident => $key:literal, $aggregate:literal, $id:ident;)*) => {
        $(
            impl IntegrationEvent for events::$event {
                const ROUTING_KEY: &'static str = $key;
                const AGGREGATE_TYPE: &'static str = $aggregate;
                fn aggregate_id(&self) -> String {
                    self.$id.clone()
                }
            }
        )*

        /// Every routing key, for topology declarations and documentation.
        pub const ROUTING_KEYS: &[&str] = &[$($key),*];

        /// An integration event, decoded: one variant per message of `shop.events.v1`.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $($event(events::$event),)*
        }

        impl Event {
            /// Decodes `payload` as the message `event_type` names (`shop.events.v1.…`);
            /// `None` for a type this build does not know.
            pub fn decode(
                event_type: &str,
                payload: &[u8],
            ) -> Option<Result<Self, prost::DecodeError>> {
                use prost::{Message as _, Name as _};
                $(
                    if event_type == events::$event::full_name() {
                        return Some(events::$event::decode(payload).map(Self::$event));
                    }
                )*
                None
            }

            /// The routing key it is published with.
            pub fn routing_key(&self) -> &'static str {
                match self {
                    $(Self::$event(_) => events::$event::ROUTING_KEY,)*
                }
            }

            /// The full name of its message (`shop.events.v1.OrderPlaced`).
            pub fn type_name(&self) -> String {
                use prost::Name as _;
                match self {
                    $(Self::$event(_) => events::$event::full_name(),)*
                }
            }
        }
    };
}

integration_events! {
    UserRegistered       => "users.user.registered",             "user",        user_id;
    ProductUpdated       => "inventory.product.updated",         "product",     sku;
    StockReserved        => "inventory.reservation.reserved",    "reservation", order_id;
    StockReleased        => "inventory.reservation.released",    "reservation", order_id;
    ReservationCommitted => "inventory.reservation.committed",   "reservation", order_id;
    ReservationExpired   => "inventory.reservation.expired",     "reservation", order_id;
    StockRestocked       => "inventory.reservation.restocked",   "reservation", order_id;
    OrderPlaced          => "orders.order.placed",               "order",       order_id;
    OrderConfirmed       => "orders.order.confirmed",            "order",       order_id;
    OrderCancelled       => "orders.order.cancelled",            "order",       order_id;
    PaymentAuthorized    => "payments.payment.authorized",       "payment",     payment_id;
    PaymentDeclined      => "payments.payment.declined",         "payment",     payment_id;
    PaymentCaptured      => "payments.payment.captured",         "payment",     payment_id;
    PaymentRefunded      => "payments.payment.refunded",         "payment",     payment_id;
    PaymentVoided        => "payments.payment.voided",           "payment",     payment_id;
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::{Message as _, Name as _};

    #[test]
    fn events_decode_by_the_type_their_envelope_names() {
        let confirmed = events::OrderConfirmed {
            order_id: "o-1".into(),
            ..Default::default()
        };
        let decoded = Event::decode(
            &events::OrderConfirmed::full_name(),
            &confirmed.encode_to_vec(),
        );
        assert_eq!(decoded, Some(Ok(Event::OrderConfirmed(confirmed))));
        assert_eq!(
            decoded
                .and_then(Result::ok)
                .map(|event| event.routing_key()),
            Some("orders.order.confirmed")
        );
        assert!(Event::decode("shop.events.v1.Nope", &[]).is_none());
        assert!(matches!(
            Event::decode(&events::OrderConfirmed::full_name(), &[0xff, 0xff]),
            Some(Err(_))
        ));
    }

    #[test]
    fn routing_keys_follow_the_naming_convention_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for key in ROUTING_KEYS {
            let parts: Vec<_> = key.split('.').collect();
            assert_eq!(parts.len(), 3, "{key} is not <service>.<aggregate>.<event>");
            assert!(
                ["users", "inventory", "orders", "payments"].contains(&parts[0]),
                "{key}: unknown service"
            );
            assert!(seen.insert(*key), "{key} appears twice");
        }
    }

    #[test]
    fn event_types_are_fully_qualified() {
        assert_eq!(
            events::OrderPlaced::full_name(),
            "shop.events.v1.OrderPlaced"
        );
        let placed = events::OrderPlaced {
            order_id: "o-1".into(),
            ..Default::default()
        };
        assert_eq!(placed.aggregate_id(), "o-1");
    }
}
