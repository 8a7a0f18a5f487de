//! Compiles `proto/**/*.proto` into Rust at build time.
//!
//! `protox` is a pure-Rust protobuf compiler, so neither a system `protoc` nor a downloaded one is
//! needed: the build works offline on a fresh machine. The encoded descriptor set is written to
//! `OUT_DIR` as well, for gRPC server reflection.

use std::{
    env, fs,
    path::{Path, PathBuf},
};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not when it is compiled: the compiled script may be shared by
    // checkouts of the workspace that build into one target directory.
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let mut files = Vec::new();
    collect_protos(&proto_root, &mut files)?;
    files.sort();

    let descriptors = protox::compile(&files, [&proto_root])?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("ferroshop_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    let mut config = prost_build::Config::new();
    // `prost::Name` gives every message its fully qualified name, which the event envelope uses
    // as the event type.
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .include_file("ferroshop.rs")
        .compile_fds_with_config(descriptors, config)?;

    // Relative to this package, which is how cargo reads them: a copy of the workspace building
    // into the same target directory (whose units cargo shares, their paths being hashed relative
    // to the workspace) watches its own protos, not those of whichever checkout built last.
    let relative = Path::new("../../proto");
    println!("cargo:rerun-if-changed={}", relative.display());
    for file in &files {
        if let Ok(inside) = file.strip_prefix(&proto_root) {
            println!("cargo:rerun-if-changed={}", relative.join(inside).display());
        }
    }
    Ok(())
}

fn collect_protos(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    Ok(())
}
