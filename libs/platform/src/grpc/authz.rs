//! Per-method authorization by the caller's identity: least privilege between services.
//!
//! Every service declares, next to its gRPC handlers, which services may call each of its
//! methods ([`Callers`]), and registers it with its API (`ServiceBuilder::serve(api, CALLERS)`):
//!
//! ```text
//! pub const CALLERS: Callers = &[
//!     ("CapturePayment", &["orders"]),
//!     ("GetPayment", &["gateway"]),
//! ];
//! ```
//!
//! The table must name every method of the service and nothing else; the service refuses to
//! start otherwise, so a new RPC cannot slip in unguarded. With mutual TLS on
//! (`platform::tls`), the [`AuthorizeLayer`] reads the caller's service name from its verified
//! certificate and answers PERMISSION_DENIED, naming caller and method, to a caller the table
//! does not list; each refusal is counted in `grpc_authz_denied_total{method,caller}`. Health and
//! reflection stay open to every authenticated peer. (A caller's upstream stack counts
//! PERMISSION_DENIED as an answer about the request, never against the endpoint or its
//! breaker: `resilience::grpc::is_upstream_failure`.)
//!
//! With TLS explicitly off there are no identities, and so no authorization: the layer lets
//! every call through.

use std::{
    collections::HashMap,
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{BoxFuture, FutureExt as _};
use tonic::{
    Status,
    body::Body,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};

/// One service's table: each method (`"CapturePayment"`) and the services that may call it.
pub type Callers = &'static [(&'static str, &'static [&'static str])];

/// Whether `table` admits exactly the callers `service` declares (`libs/declarations`): the
/// services named anywhere in the table are its declared `callers`. Each service's unit tests
/// check it, so the declaration that docs and network policies follow cannot drift from what
/// the port enforces.
pub fn check_declared(table: Callers, service: &declarations::Service) -> Result<(), String> {
    let in_table: std::collections::BTreeSet<&str> = table
        .iter()
        .flat_map(|(_, callers)| callers.iter().copied())
        .collect();
    let declared: std::collections::BTreeSet<&str> = service.callers.iter().copied().collect();
    if in_table == declared {
        return Ok(());
    }
    Err(format!(
        "{}: the CALLERS table admits {in_table:?}, libs/declarations declares callers \
         {declared:?}",
        service.name
    ))
}

/// Services open to every authenticated peer.
const OPEN: [&str; 3] = [
    super::HEALTH,
    super::REFLECTION_V1,
    super::REFLECTION_V1ALPHA,
];

/// Every hosted method's path (`/shop.payments.v1.PaymentsService/CapturePayment`) and who may
/// call it.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Arc<HashMap<String, &'static [&'static str]>>,
}

impl Policy {
    /// The policy of `tables` (each service's full name and its table), checked against the
    /// methods the port hosts (`known`, every method path): a method without a rule or a rule
    /// for no method is an error naming it.
    pub fn build(
        tables: &[(&'static str, Callers)],
        known: &super::observe::KnownMethods,
    ) -> Result<Self, String> {
        let mut rules = HashMap::new();
        for (service, callers) in tables {
            for (method, allowed) in *callers {
                let path = format!("/{service}/{method}");
                if !known.0.contains(&path) {
                    return Err(format!(
                        "the authorization table of {service} names {method}, which it does not have"
                    ));
                }
                rules.insert(path, *allowed);
            }
            let prefix = format!("/{service}/");
            if let Some(missing) = known
                .0
                .iter()
                .find(|path| path.starts_with(&prefix) && !rules.contains_key(*path))
            {
                return Err(format!(
                    "{missing} has no entry in the authorization table of {service}"
                ));
            }
        }
        Ok(Self {
            rules: Arc::new(rules),
        })
    }

    /// Whether `caller` may call `path`. Only methods of the table are ever refused, so the
    /// metric's `method` label stays within them; a path the port does not host passes, and
    /// tonic answers UNIMPLEMENTED.
    fn allows(&self, path: &str, caller: Option<&str>) -> bool {
        let service = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        if OPEN.contains(&service) {
            return true;
        }
        match self.rules.get(path) {
            Some(allowed) => caller.is_some_and(|caller| allowed.contains(&caller)),
            None => true,
        }
    }
}

/// The service the caller's verified certificate names, if the connection is mutual TLS.
pub fn caller<B>(request: &http::Request<B>) -> Option<String> {
    let certs = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()?;
    crate::tls::peer_identity(certs.first()?)
}

/// The tower layer that enforces a [`Policy`]; `None` (TLS off) lets every call through.
#[derive(Clone, Debug, Default)]
pub struct AuthorizeLayer {
    policy: Option<Policy>,
}

impl AuthorizeLayer {
    pub fn new(policy: Option<Policy>) -> Self {
        Self { policy }
    }
}

impl<S> tower::Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            policy: self.policy.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Authorize<S> {
    inner: S,
    policy: Option<Policy>,
}

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for Authorize<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let Some(policy) = &self.policy else {
            return self.inner.call(request).boxed();
        };
        let identity = caller(&request);
        let path = request.uri().path().to_owned();
        if policy.allows(&path, identity.as_deref()) {
            self.inner.call(request).boxed()
        } else {
            {
                let caller = identity.unwrap_or_else(|| "unknown".to_owned());
                metrics::counter!(
                    "grpc_authz_denied_total",
                    "method" => path.clone(),
                    "caller" => caller.clone()
                )
                .increment(1);
                tracing::warn!(%caller, method = %path, "call refused: the caller may not call this method");
                let status = Status::permission_denied(format!("{caller} may not call {path}"));
                futures::future::ready(Ok(status.into_http())).boxed()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::grpc::observe::KnownMethods;

    const SERVICE: &str = "shop.payments.v1.PaymentsService";

    fn known(methods: &[&str]) -> KnownMethods {
        let mut paths: HashSet<String> = methods
            .iter()
            .map(|method| format!("/{SERVICE}/{method}"))
            .collect();
        paths.insert("/grpc.health.v1.Health/Check".to_owned());
        KnownMethods(Arc::new(paths))
    }

    const TABLE: Callers = &[
        ("CapturePayment", &["orders"]),
        ("GetPayment", &["gateway"]),
    ];

    #[test]
    fn only_the_listed_callers_may_call_a_method_and_health_is_open() {
        let policy = Policy::build(
            &[(SERVICE, TABLE)],
            &known(&["CapturePayment", "GetPayment"]),
        )
        .unwrap();
        let capture = format!("/{SERVICE}/CapturePayment");
        assert!(policy.allows(&capture, Some("orders")));
        assert!(!policy.allows(&capture, Some("gateway")));
        assert!(!policy.allows(&capture, None), "no identity, no call");
        assert!(policy.allows(&format!("/{SERVICE}/GetPayment"), Some("gateway")));
        assert!(policy.allows("/grpc.health.v1.Health/Check", Some("anyone")));
        assert!(
            policy.allows("/shop.users.v1.UsersService/GetJwks", Some("orders")),
            "not hosted here: left to UNIMPLEMENTED"
        );
    }

    #[test]
    fn a_table_must_name_every_method_and_only_those() {
        let err = Policy::build(
            &[(SERVICE, TABLE)],
            &known(&["CapturePayment", "GetPayment", "RefundPayment"]),
        )
        .unwrap_err();
        assert!(err.contains("RefundPayment"), "{err}");
        let err = Policy::build(&[(SERVICE, TABLE)], &known(&["GetPayment"])).unwrap_err();
        assert!(err.contains("CapturePayment"), "{err}");
    }
}
