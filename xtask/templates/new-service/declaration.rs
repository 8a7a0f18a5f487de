//! {{name}}: records, one per reference, each announced with an event through the outbox.

use crate::{Api, Service};

pub const {{PREFIX}}: Service = Service {
    name: "{{name}}",
    api: Api::Grpc,
    api_port: {{grpc_port}},
    admin_port: {{admin_port}},
    database: Some("{{snake}}"),
    runtime: true,
    // Its own settings, as `Setting::new("RETRY_AFTER", "`5s`", "what it means")`; the shared
    // ones (`declarations::RUNTIME`) come with `runtime: true`.
    settings: &[],
    broker: true,
    cache: false,
    upstreams: &[],
    callers: &[{{#if expose}}"gateway"{{/if}}],
};
