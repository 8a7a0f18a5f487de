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

/// Who may call what (`platform::grpc::authz`, enforced with mutual TLS): the gateway, for the
/// clients it has authenticated. Every method must be listed, or the service does not start.
pub const CALLERS: Callers = &[
    ("CreateRecord", &["gateway"]),
    ("GetRecord", &["gateway"]),
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
