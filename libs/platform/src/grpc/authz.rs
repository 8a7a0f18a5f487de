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
//!
//! ## The admin scope
//!
//! Some answers depend on who the *person* behind a call is, not only which service relays it:
//! orders shows every customer's orders to an administrator, and only their own to a customer.
//! Only the edge knows the person (it verified their token), so it says so in the call's
//! metadata: [`grant_admin`] adds `x-shop-scope: admin` ([`SCOPE_HEADER`]). The layer checks the
//! presenter before any handler runs: only the service named by [`SCOPE_PRESENTER`] (the
//! gateway) may present a scope; from any other caller the call is refused with
//! PERMISSION_DENIED and counted in `grpc_authz_denied_total` like any refusal, so a service
//! that is compromised cannot widen its own view. An accepted scope becomes the [`AdminScope`]
//! extension, which handlers read with [`has_admin_scope`]: a handler never trusts the header
//! itself. (With TLS off there is no presenter to check, and the scope is taken as given.)

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

/// The metadata key that carries a scope.
pub const SCOPE_HEADER: &str = "x-shop-scope";

/// The one scope there is: the person behind the call is an administrator.
pub const ADMIN: &str = "admin";

/// The only identity that may present a scope: the edge, which authenticated the person.
pub const SCOPE_PRESENTER: &str = "gateway";

/// A call's proof, checked by the [`AuthorizeLayer`], that its presenter may act for an
/// administrator (a request extension; see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminScope;

/// Marks an outgoing `request` as made for an administrator (the caller side of the scope).
pub fn grant_admin<T>(request: &mut tonic::Request<T>) {
    request.metadata_mut().insert(
        SCOPE_HEADER,
        tonic::metadata::MetadataValue::from_static(ADMIN),
    );
}

/// Whether the layer accepted an admin scope on this incoming `request` (the server side).
pub fn has_admin_scope<T>(request: &tonic::Request<T>) -> bool {
    request.extensions().get::<AdminScope>().is_some()
}

/// What a call's scope metadata asks for.
#[derive(Debug, PartialEq, Eq)]
enum Scope {
    /// No scope: the call acts for whoever its fields name.
    None,
    /// The admin scope.
    Admin,
    /// A value that is no scope we know: refused, never ignored.
    Unknown(String),
}

fn scope<B>(request: &http::Request<B>) -> Scope {
    match request.headers().get(SCOPE_HEADER) {
        None => Scope::None,
        Some(value) if value.as_bytes() == ADMIN.as_bytes() => Scope::Admin,
        Some(value) => Scope::Unknown(String::from_utf8_lossy(value.as_bytes()).into_owned()),
    }
}

/// Counts and logs a refusal; the answer is `status`.
fn refuse(path: &str, caller: &str, status: Status) -> http::Response<Body> {
    metrics::counter!(
        "grpc_authz_denied_total",
        "method" => path.to_owned(),
        "caller" => caller.to_owned()
    )
    .increment(1);
    tracing::warn!(%caller, method = %path, reason = %status.message(), "call refused");
    status.into_http()
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

    /// The `method` label for a refusal on `path`: the path itself if the table has it,
    /// `unknown` otherwise, so no caller can grow the metric set with made-up paths.
    fn label<'a>(&self, path: &'a str) -> &'a str {
        if self.rules.contains_key(path) {
            path
        } else {
            "unknown"
        }
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

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let Some(policy) = &self.policy else {
            // No identities: a scope is taken as given (see the module docs).
            if scope(&request) == Scope::Admin {
                request.extensions_mut().insert(AdminScope);
            }
            return self.inner.call(request).boxed();
        };
        let identity = caller(&request);
        let named = identity.clone().unwrap_or_else(|| "unknown".to_owned());
        match scope(&request) {
            Scope::None => {}
            Scope::Unknown(value) => {
                let status = Status::invalid_argument(format!(
                    "{SCOPE_HEADER}: {value:?} is not a scope (the only one is {ADMIN:?})"
                ));
                let label = policy.label(&path);
                return futures::future::ready(Ok(refuse(label, &named, status))).boxed();
            }
            Scope::Admin if identity.as_deref() == Some(SCOPE_PRESENTER) => {
                request.extensions_mut().insert(AdminScope);
            }
            Scope::Admin => {
                let status = Status::permission_denied(format!(
                    "{named} may not present the {ADMIN} scope ({SCOPE_HEADER}) on {path}: \
                     only {SCOPE_PRESENTER} may"
                ));
                let label = policy.label(&path);
                return futures::future::ready(Ok(refuse(label, &named, status))).boxed();
            }
        }
        if policy.allows(&path, identity.as_deref()) {
            self.inner.call(request).boxed()
        } else {
            let status = Status::permission_denied(format!("{named} may not call {path}"));
            futures::future::ready(Ok(refuse(&path, &named, status))).boxed()
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
