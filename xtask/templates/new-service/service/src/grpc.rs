//! The gRPC API: decode → service → encode, nothing else.
//!
//! Every handler runs within the caller's deadline: the platform's gRPC server ends a call whose
//! `grpc-timeout` has passed with DEADLINE_EXCEEDED (`platform::grpc::deadline`).

use contracts::{{snake}}::{
    self as api, CreateRecordRequest, CreateRecordResponse, GetRecordRequest, GetRecordResponse,
};
use messaging::envelope::timestamp;
use platform::grpc::authz::Callers;
use tonic::{Request, Response, Status};

use crate::{
    domain::{self, Record, Reference},
    error::{{Pascal}}Error,
    service::Records,
};

/// Who may call what (`platform::grpc::authz`, enforced with mutual TLS){{#if expose}}: the gateway, for
/// the clients it has authenticated{{else}}: nobody yet; a caller is added here, to `callers` in
/// `libs/declarations/src/{{snake}}.rs` and to the network policy{{/if}}. Every method must be listed,
/// or the service does not start.
pub const CALLERS: Callers = &[
    ("CreateRecord", &[{{#if expose}}"gateway"{{/if}}]),
    ("GetRecord", &[{{#if expose}}"gateway"{{/if}}]),
];

pub struct {{Pascal}}Api {
    records: Records,
}

impl {{Pascal}}Api {
    pub fn new(records: Records) -> Self {
        Self { records }
    }
}

#[tonic::async_trait]
impl api::{{Pascal}}Service for {{Pascal}}Api {
    async fn create_record(
        &self,
        request: Request<CreateRecordRequest>,
    ) -> Result<Response<CreateRecordResponse>, Status> {
        let reference =
            Reference::parse(&request.get_ref().reference).map_err({{Pascal}}Error::from)?;
        let created = self.records.create(reference).await?;
        Ok(Response::new(CreateRecordResponse {
            record: Some(encode(created.record())),
        }))
    }

    async fn get_record(
        &self,
        request: Request<GetRecordRequest>,
    ) -> Result<Response<GetRecordResponse>, Status> {
        let id = domain::parse_id("id", &request.get_ref().id).map_err({{Pascal}}Error::from)?;
        let record = self.records.get(id).await?;
        Ok(Response::new(GetRecordResponse {
            record: Some(encode(&record)),
        }))
    }
}

/// The wire form of a record.
pub fn encode(record: &Record) -> api::Record {
    api::Record {
        id: record.id.to_string(),
        reference: record.reference.as_str().to_owned(),
        created_at: Some(timestamp(record.created_at)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_callers_table_admits_exactly_the_declared_callers() {
        platform::grpc::authz::check_declared(super::CALLERS, &declarations::{{snake}}::{{PREFIX}})
            .unwrap();
    }
}
