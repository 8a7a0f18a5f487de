//! Order-stream tickets: a short-lived credential for one order's event stream, so that the
//! bearer token never travels in a URL.
//!
//! A browser's `EventSource` cannot send an `Authorization` header, so the stream's credential
//! has to be in the URL — and URLs end up in proxy logs, browser history and `Referer` headers.
//! A bearer token there would be a full session, valid for every route until it expires. A
//! ticket is worth much less if it leaks: it opens **one order's stream**, for **one user**, for
//! **a minute** (`GATEWAY_STREAM_TICKET_TTL`). The storefront asks for one with its bearer token
//! (`POST /api/v1/orders/{id}/stream-tickets`) right before it opens the stream, and asks again
//! on each reconnect.
//!
//! A ticket is self-contained and signed, so any gateway replica can check it without a shared
//! store:
//!
//! ```text
//! v1.<user id>.<c|a>.<order id>.<expires, unix seconds>.<HMAC-SHA256 of everything before, base64url>
//! ```
//!
//! The key is `GATEWAY_STREAM_TICKET_KEY`, the same on every replica; without it each process
//! generates its own, which only works with one replica (it is logged). The MAC is compared in
//! constant time (`Mac::verify_slice`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use uuid::Uuid;

use super::{Principal, Role};

type HmacSha256 = Hmac<Sha256>;

/// Why a ticket was refused (every one is a 401 for the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("malformed stream ticket")]
    Malformed,
    #[error("stream ticket expired; ask for a new one")]
    Expired,
    #[error("stream ticket is for another order")]
    OtherOrder,
    #[error("stream ticket signature does not match")]
    BadSignature,
}

/// Issues and checks tickets with one key.
pub struct TicketSigner {
    key: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TicketSigner {
    /// Signs with `key` (at least 32 bytes: the config checks it), valid for `ttl`.
    pub fn new(key: Vec<u8>, ttl: Duration) -> Self {
        Self { key, ttl }
    }

    /// A signer with a random key of its own (one replica, locally).
    pub fn generated(ttl: Duration) -> Self {
        let key: [u8; 32] = rand::random();
        Self::new(key.to_vec(), ttl)
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A ticket for `principal` to follow `order_id`, valid from `now` for the TTL.
    pub fn issue(&self, principal: &Principal, order_id: Uuid, now: SystemTime) -> String {
        let expires = unix(now).saturating_add(self.ttl.as_secs());
        let role = match principal.role {
            Role::Customer => "c",
            Role::Admin => "a",
        };
        let claims = format!("v1.{}.{role}.{order_id}.{expires}", principal.user_id);
        let mac = URL_SAFE_NO_PAD.encode(self.mac(&claims).finalize().into_bytes());
        format!("{claims}.{mac}")
    }

    /// The principal a ticket speaks for, if it is genuine, unexpired and for `order_id`.
    pub fn verify(
        &self,
        ticket: &str,
        order_id: Uuid,
        now: SystemTime,
    ) -> Result<Principal, TicketError> {
        let (claims, mac) = ticket.rsplit_once('.').ok_or(TicketError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TicketError::Malformed)?;
        // The signature first: nothing of an unsigned ticket is believed, not even its format.
        self.mac(claims)
            .verify_slice(&mac)
            .map_err(|_| TicketError::BadSignature)?;
        let parts: Vec<&str> = claims.split('.').collect();
        let ["v1", user, role, order, expires] = parts[..] else {
            return Err(TicketError::Malformed);
        };
        let user_id = Uuid::parse_str(user).map_err(|_| TicketError::Malformed)?;
        let role = match role {
            "c" => Role::Customer,
            "a" => Role::Admin,
            _ => return Err(TicketError::Malformed),
        };
        let order = Uuid::parse_str(order).map_err(|_| TicketError::Malformed)?;
        let expires: u64 = expires.parse().map_err(|_| TicketError::Malformed)?;
        if order != order_id {
            return Err(TicketError::OtherOrder);
        }
        if unix(now) >= expires {
            return Err(TicketError::Expired);
        }
        Ok(Principal { user_id, role })
    }

    fn mac(&self, claims: &str) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
        mac.update(claims.as_bytes());
        mac
    }
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal {
            user_id: Uuid::now_v7(),
            role: Role::Customer,
        }
    }

    #[test]
    fn a_ticket_opens_its_order_for_its_user_until_it_expires() {
        let signer = TicketSigner::generated(Duration::from_secs(60));
        let (who, order, now) = (principal(), Uuid::now_v7(), SystemTime::now());
        let ticket = signer.issue(&who, order, now);
        assert_eq!(signer.verify(&ticket, order, now), Ok(who.clone()));
        assert_eq!(
            signer.verify(&ticket, order, now + Duration::from_secs(59)),
            Ok(who)
        );
        assert_eq!(
            signer.verify(&ticket, order, now + Duration::from_secs(61)),
            Err(TicketError::Expired)
        );
        assert_eq!(
            signer.verify(&ticket, Uuid::now_v7(), now),
            Err(TicketError::OtherOrder)
        );
    }

    #[test]
    fn forged_and_tampered_tickets_are_refused() {
        let signer = TicketSigner::generated(Duration::from_secs(60));
        let other = TicketSigner::generated(Duration::from_secs(60));
        let (order, now) = (Uuid::now_v7(), SystemTime::now());
        let ticket = other.issue(&principal(), order, now);
        assert_eq!(
            signer.verify(&ticket, order, now),
            Err(TicketError::BadSignature)
        );
        let mine = signer.issue(&principal(), order, now);
        let promoted = mine.replacen(".c.", ".a.", 1);
        assert_eq!(
            signer.verify(&promoted, order, now),
            Err(TicketError::BadSignature)
        );
        for garbage in ["", "v1", "a.b", "v1.x.c.y.1.!!!"] {
            assert!(signer.verify(garbage, order, now).is_err(), "{garbage:?}");
        }
    }
}
