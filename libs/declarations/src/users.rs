//! users: accounts, sign-in, and the keys that sign every access token.

use crate::{Api, Service, Setting};

pub const USERS: Service = Service {
    name: "users",
    api: Api::Grpc,
    api_port: 50051,
    admin_port: 9101,
    database: Some("users"),
    runtime: true,
    settings: &[
        Setting::new("JWT_ISSUER", "`ferroshop-users`", "`iss` of issued tokens"),
        Setting::new("JWT_AUDIENCE", "`ferroshop`", "`aud` of issued tokens"),
        Setting::new("JWT_TTL", "`15m`", "access token lifetime (1m to 24h)"),
        Setting::new(
            "JWT_PRIVATE_KEY",
            "generated",
            "PKCS#8 PEM Ed25519 key that signs tokens; every replica needs the same",
        )
        .secret()
        .required(),
        Setting::new(
            "JWT_PREVIOUS_KEYS",
            "none",
            "PEM blocks (public or private Ed25519 keys) still published in the JWKS during a \
             rotation",
        )
        .secret(),
        Setting::new(
            "HASH_CONCURRENCY",
            "CPUs",
            "password hashes running at once (each needs 19 MiB)",
        ),
        Setting::new(
            "HASH_QUEUE",
            "4 × `USERS_HASH_CONCURRENCY`",
            "password checks that may wait; beyond, RESOURCE_EXHAUSTED",
        ),
        Setting::new(
            "ADMIN_PASSWORD",
            "none",
            "read only by `users admin create EMAIL`",
        )
        .secret(),
    ],
    broker: true,
    cache: false,
    upstreams: &[],
    callers: &["gateway"],
};
