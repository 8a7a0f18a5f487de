//! The {{name}} service's records, read through the gateway.
//!
//! A public, idempotent read: retried on transient failures and spread over the service's
//! replicas (`crate::upstream`). The id is checked here, so a malformed one is a 400 naming the
//! field rather than a call.

use actix_web::{HttpResponse, get, web};
use contracts::{{snake}}::{GetRecordRequest, {{Pascal}}ServiceClient};
use serde::Serialize;
use utoipa::ToSchema;

use super::wire::timestamp;
use crate::{
    problem::{ApiError, Problem},
    state::Gateway,
};

/// One record of the {{name}} service.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct {{Pascal}}Record {
    pub id: String,
    /// The key the record was created for (an order id, a request id).
    pub reference: String,
    /// RFC 3339, UTC.
    pub created_at: Option<String>,
}

impl From<contracts::{{snake}}::Record> for {{Pascal}}Record {
    fn from(record: contracts::{{snake}}::Record) -> Self {
        Self {
            id: record.id,
            reference: record.reference,
            created_at: timestamp(record.created_at),
        }
    }
}

/// Get a {{name}} record
#[utoipa::path(
    tag = "{{name}}",
    params(("id" = String, Path, description = "The record's id (a UUID)")),
    responses(
        (status = 200, description = "The record", body = {{Pascal}}Record),
        (status = 404, description = "No such record", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/{{name}}/records/{id}")]
pub async fn get_{{snake}}_record(
    gateway: web::Data<Gateway>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = uuid::Uuid::parse_str(id.trim())
        .map_err(|_| ApiError::invalid("id", "must be a UUID"))?
        .to_string();
    let response = gateway
        .upstreams
        .{{snake}}
        .call(true, |endpoint| {
            let request = GetRecordRequest { id: id.clone() };
            async move { {{Pascal}}ServiceClient::new(endpoint).get_record(request).await }
        })
        .await
        .map_err(ApiError::upstream("{{name}}"))?;
    Ok(HttpResponse::Ok().json({{Pascal}}Record::from(response.record.unwrap_or_default())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_shown_with_an_rfc3339_time() {
        let record = {{Pascal}}Record::from(contracts::{{snake}}::Record {
            id: "r-1".into(),
            reference: "ref-1".into(),
            created_at: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
        });
        assert_eq!(record.created_at.as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(record.reference, "ref-1");
    }
}
