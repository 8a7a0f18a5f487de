//! `--expose` of `cargo xtask new-service`: the gateway's side of a new service.
//!
//! Not generated yet: the gateway's upstreams are fields of its `Config` and `Upstreams`, and
//! its routes hand-written translations (`services/gateway/src/api/`), so reaching a new
//! service from outside is done by hand, as docs/adding-a-service.md describes. The flag is
//! refused before anything is written, rather than producing half a gateway.

use anyhow::bail;

use crate::new_service::{Changes, Names};

pub fn expose(_changes: &mut Changes<'_>, names: &Names, _grpc_port: u16) -> anyhow::Result<()> {
    bail!(
        "--expose is not supported yet: generate {} without it, then add its gateway upstream \
         and route by hand (docs/adding-a-service.md, \"Reaching it from outside\"); nothing \
         was written",
        names.name
    )
}
