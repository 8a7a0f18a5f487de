//! Where each integration event goes: routing key and aggregate, in one table.
//!
//! Routing keys follow `<service>.<aggregate>.<event>` on the topic exchange `shop.events`, so a
//! consumer binds to exactly what it needs (`orders.order.*`, `payments.#`).

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
    use prost::Name as _;

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
