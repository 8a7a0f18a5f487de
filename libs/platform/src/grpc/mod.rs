//! gRPC plumbing shared by every service.
//!
//! [`GrpcServer`] is a tonic server that always comes with:
//! * `grpc.health.v1.Health`, reporting SERVING for each registered service until shutdown,
//!   when it flips to NOT_SERVING so load balancers drain the replica;
//! * server reflection (`grpcurl -plaintext localhost:50051 list` works out of the box);
//! * the [`observe`] layer: trace context extraction, a request span with the trace id, and RED
//!   metrics per method;
//! * the [`deadline`] layer: the caller's `grpc-timeout`, answered with DEADLINE_EXCEEDED.
//!
//! Deadlines: the [`deadline`] layer honours the caller's `grpc-timeout` header and answers
//! DEADLINE_EXCEEDED when it passes; [`client`] sets one on every outgoing call.

pub mod client;
pub mod deadline;
pub mod observe;

use tonic::{
    body::Body,
    server::NamedService,
    service::RoutesBuilder,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::Shutdown;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A tonic server with health, reflection and observability built in.
pub struct GrpcServer {
    routes: RoutesBuilder,
    health: HealthReporter,
    service_names: Vec<&'static str>,
}

impl GrpcServer {
    /// `descriptor_set` is the encoded `FileDescriptorSet` served by reflection
    /// (`contracts::FILE_DESCRIPTOR_SET`).
    pub fn new(descriptor_set: &'static [u8]) -> Result<Self, BoxError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service).add_service(reflection);
        Ok(Self {
            routes,
            health,
            service_names: Vec::new(),
        })
    }

    /// Registers a service; health reports it SERVING while the server runs.
    pub fn add_service<S>(mut self, service: S) -> Self
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
        self.routes.add_service(service);
        self
    }

    /// Serves until `shutdown` fires, then stops accepting and lets in-flight calls finish.
    pub async fn serve(
        self,
        incoming: TcpIncoming,
        shutdown: Shutdown,
    ) -> Result<(), tonic::transport::Error> {
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
            .layer(observe::ObserveLayer)
            .layer(deadline::DeadlineLayer)
            .serve_with_incoming_shutdown(self.routes.routes().prepare(), incoming, drained)
            .await
    }
}
