//! The {{name}} service layer: what each API call does, between the gRPC decoding and the
//! store.

use uuid::Uuid;

use crate::{
    domain::{Record, Reference},
    error::{{Pascal}}Error,
    events,
    store::{self, Created, RecordStore},
};

#[derive(Clone, Debug)]
pub struct Records {
    store: RecordStore,
}

impl Records {
    pub fn new(store: RecordStore) -> Self {
        Self { store }
    }

    /// The record of `reference`: created (and announced) on the first call, found on the next.
    pub async fn create(&self, reference: Reference) -> Result<Created, {{Pascal}}Error> {
        let record = Record::new(Uuid::now_v7(), reference, store::now());
        self.store.create(&record, &events::created(&record)).await
    }

    pub async fn get(&self, id: Uuid) -> Result<Record, {{Pascal}}Error> {
        self.store.get(id).await?.ok_or({{Pascal}}Error::NotFound)
    }
}
