//! gRPC plumbing shared by every service.
//!
//! [`GrpcServer`] is a tonic server that always comes with:
//! * `grpc.health.v1.Health`, reporting SERVING for each registered service until shutdown,
//!   when it flips to NOT_SERVING so load balancers drain the replica;
//! * server reflection, both `grpc.reflection.v1` and the older `v1alpha` that many clients
//!   still speak (older grpcurl, grpcui, Postman, Python's grpcio-reflection), listing exactly
//!   the services this port hosts — not every service of the shared descriptor set, which a
//!   client would then call and get UNIMPLEMENTED (`grpcurl <certificates> localhost:50051 list`,
//!   README); open, like health, to every authenticated peer;
//! * the [`observe`] layer: trace context extraction, a request span with the trace id, and RED
//!   metrics per method, labelled only with methods this port hosts (`unknown` otherwise, so a
//!   client cannot grow the metric set with made-up paths);
//! * the [`deadline`] layer: the caller's `grpc-timeout`, answered with DEADLINE_EXCEEDED;
//! * the [`authz`] layer: with mutual TLS, each method only for the callers its service's table
//!   names (`crate::tls` for the identities).
//!
//! Deadlines: the [`deadline`] layer honours the caller's `grpc-timeout` header and answers
//! DEADLINE_EXCEEDED when it passes; [`client`] sets one on every outgoing call.

pub mod authz;
pub mod client;
pub mod deadline;
pub mod observe;
pub mod upstream;

use std::{collections::HashSet, sync::Arc};

use prost::Message as _;
use tonic::{body::Body, server::NamedService, service::RoutesBuilder, transport::Server};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::Shutdown;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The health and reflection services every port hosts beside its own.
pub(crate) const HEALTH: &str = "grpc.health.v1.Health";
pub(crate) const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
pub(crate) const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// A tonic server with health, reflection and observability built in.
pub struct GrpcServer {
    routes: RoutesBuilder,
    health: HealthReporter,
    descriptor_set: &'static [u8],
    service_names: Vec<&'static str>,
    callers: Vec<(&'static str, authz::Callers)>,
}

impl GrpcServer {
    /// `descriptor_set` is the encoded `FileDescriptorSet` served by reflection
    /// (`contracts::FILE_DESCRIPTOR_SET`); only the services added with
    /// [`GrpcServer::add_service`] are listed.
    pub fn new(descriptor_set: &'static [u8]) -> Result<Self, BoxError> {
        // Checked here, so a broken set fails at start rather than at `serve`.
        prost_types::FileDescriptorSet::decode(descriptor_set)?;
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        Ok(Self {
            routes,
            health,
            descriptor_set,
            service_names: Vec::new(),
            callers: Vec::new(),
        })
    }

    /// The full names of the services this port answers: its own, health and reflection.
    fn hosted(&self) -> Vec<&'static str> {
        let mut names = self.service_names.clone();
        names.extend([HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA]);
        names
    }

    /// Reflection (v1 and v1alpha) listing only the hosted services.
    fn add_reflection(&mut self) -> Result<(), BoxError> {
        let configure = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(self.descriptor_set)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
            for name in self.hosted() {
                builder = builder.with_service_name(name);
            }
            builder
        };
        let v1 = configure().build_v1()?;
        let v1alpha = configure().build_v1alpha()?;
        self.routes.add_service(v1).add_service(v1alpha);
        Ok(())
    }

    /// Registers a service with its authorization table ([`authz`]); health reports it
    /// SERVING while the server runs.
    pub fn add_service<S>(mut self, service: S, callers: authz::Callers) -> Self
    where
        S: tower::Service<
                http::Request<Body>,
                Response = http::Response<Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME);
        self.callers.push((S::NAME, callers));
        self.routes.add_service(service);
        self
    }

    /// Every method path (`/shop.users.v1.UsersService/Register`) this port answers.
    pub fn known_methods(&self) -> observe::KnownMethods {
        let hosted = self.hosted();
        let mut paths = HashSet::new();
        let sets = [self.descriptor_set, tonic_health::pb::FILE_DESCRIPTOR_SET];
        for set in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
                continue;
            };
            for file in set.file {
                let package = file.package().to_owned();
                for service in file.service {
                    let full = format!("{package}.{}", service.name());
                    if !hosted.contains(&full.as_str()) {
                        continue;
                    }
                    for method in service.method {
                        paths.insert(format!("/{full}/{}", method.name()));
                    }
                }
            }
        }
        for reflection in [REFLECTION_V1, REFLECTION_V1ALPHA] {
            paths.insert(format!("/{reflection}/ServerReflectionInfo"));
        }
        observe::KnownMethods(Arc::new(paths))
    }

    /// Who may call each hosted method, from the services' tables; an error names a method
    /// without a rule or a rule without a method.
    pub fn policy(&self) -> Result<authz::Policy, String> {
        authz::Policy::build(&self.callers, &self.known_methods())
    }

    /// Serves the connections of `incoming` until `shutdown` fires, then stops accepting and
    /// lets in-flight calls finish. `authorize` (mutual TLS only, where callers have
    /// identities) enforces [`GrpcServer::policy`].
    pub async fn serve<I, IO, IE>(
        mut self,
        incoming: I,
        shutdown: Shutdown,
        authorize: bool,
    ) -> Result<(), BoxError>
    where
        I: futures::Stream<Item = Result<IO, IE>>,
        IO: tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + tonic::transport::server::Connected
            + Unpin
            + Send
            + 'static,
        IE: Into<BoxError>,
    {
        let policy = if authorize {
            Some(self.policy()?)
        } else {
            None
        };
        self.add_reflection()?;
        let known = self.known_methods();
        for name in &self.service_names {
            self.health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        let health = self.health.clone();
        let names = self.service_names.clone();
        let drained = async move {
            shutdown.wait().await;
            for name in names.into_iter().chain([""]) {
                health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
        };
        Server::builder()
            .layer(observe::ObserveLayer::new(known))
            .layer(deadline::DeadlineLayer)
            .layer(authz::AuthorizeLayer::new(policy))
            .serve_with_incoming_shutdown(self.routes.routes().prepare(), incoming, drained)
            .await?;
        Ok(())
    }
}
