//! Client-side plumbing: every outgoing call carries a deadline and the caller's trace context.
//!
//! ```text
//! let channel = platform::grpc::client::connect_lazy("http://inventory:50052")?;
//! let client = InventoryServiceClient::with_interceptor(channel, CallContext::new(Duration::from_secs(2)));
//! ```

use std::time::Duration;

use tonic::{
    Request, Status,
    service::Interceptor,
    transport::{Channel, Endpoint},
};

use crate::trace_context::{self, MetadataInjector};

/// Adds `grpc-timeout` (unless the call set its own) and `traceparent` to each request.
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
        if !request.metadata().contains_key("grpc-timeout") {
            request.set_timeout(self.default_timeout);
        }
        trace_context::inject_current(&mut MetadataInjector(request.metadata_mut()));
        Ok(request)
    }
}

/// A channel that connects on first use and reconnects after failures, so a service can start
/// before its dependencies are up.
pub fn connect_lazy(uri: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(uri.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .connect_lazy())
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
