//! Client-side plumbing: every outgoing call carries a deadline and the caller's trace context.
//!
//! ```text
//! let channel = platform::grpc::client::connect_lazy("http://inventory:50052", tls.as_ref())?;
//! let client = InventoryServiceClient::with_interceptor(channel, CallContext::new(Duration::from_secs(2)));
//! ```

use std::time::Duration;

use tonic::{
    Request, Status,
    service::Interceptor,
    transport::{Channel, Endpoint},
};

use crate::{
    tls::ClientTls,
    trace_context::{self, MetadataInjector},
};

/// Adds `grpc-timeout` and `traceparent` to each request. The timeout is the call's own (or
/// `default_timeout`), cut down to what is left of the deadline of the call being served, if any
/// (see [`crate::grpc::deadline`]); with nothing left the call fails DEADLINE_EXCEEDED unsent.
#[derive(Clone, Copy, Debug)]
pub struct CallContext {
    /// The deadline of calls that did not set one.
    pub default_timeout: Duration,
}

impl CallContext {
    pub fn new(default_timeout: Duration) -> Self {
        Self { default_timeout }
    }
}

impl Interceptor for CallContext {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let own = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(crate::grpc::deadline::parse_grpc_timeout)
            .unwrap_or(self.default_timeout);
        let timeout = match crate::grpc::deadline::remaining() {
            Some(left) if left.is_zero() => {
                return Err(Status::deadline_exceeded(
                    "the deadline of the call being served has passed",
                ));
            }
            Some(left) => own.min(left),
            None => own,
        };
        if timeout != own || !request.metadata().contains_key("grpc-timeout") {
            request.set_timeout(timeout);
        }
        trace_context::inject_current(&mut MetadataInjector(request.metadata_mut()));
        Ok(request)
    }
}

/// A channel that connects on first use and reconnects after failures, so a service can start
/// before its dependencies are up. With `tls`, every connection is mutual TLS towards the
/// service `tls` expects (`crate::tls::ClientTls`); the URL stays `http://host:port`.
pub fn connect_lazy(
    uri: &str,
    tls: Option<&ClientTls>,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(uri.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    Ok(match tls {
        Some(tls) => endpoint.connect_with_connector_lazy(tls.clone()),
        None => endpoint.connect_lazy(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_deadline_is_added() {
        let mut context = CallContext::new(Duration::from_millis(1500));
        let request = context.call(Request::new(())).unwrap();
        assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "1500000u");
    }

    #[test]
    fn an_explicit_deadline_is_kept() {
        let mut context = CallContext::new(Duration::from_secs(5));
        let mut request = Request::new(());
        request.set_timeout(Duration::from_millis(20));
        let request = context.call(request).unwrap();
        assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "20000000n");
    }
}
