//! Events the users service publishes. It consumes none.
//!
//! | event | routing key | when |
//! |---|---|---|
//! | `UserRegistered` | `users.user.registered` | an account was created |
//!
//! Events are never sent directly: they are recorded in the outbox with the state change and
//! published by the relay (`libs/messaging`).

use contracts::events::UserRegistered;
use messaging::{Envelope, envelope::timestamp};

use crate::domain::User;

pub fn user_registered(user: &User) -> Envelope {
    Envelope::new(&UserRegistered {
        user_id: user.id.to_string(),
        email: user.email.to_string(),
        display_name: user.display_name.as_str().to_owned(),
        registered_at: Some(timestamp(user.created_at)),
    })
}
