//! The container health check of every Ferroshop image: `GET /healthz` on the service's admin
//! port, exit 0 on HTTP 200 and 1 otherwise.
//!
//! The runtime image is distroless (no shell, curl or wget), so the Dockerfile compiles this
//! file with plain `rustc` (std only, no crates) and copies the binary next to the service.
//! `cargo xtask deploy-check` compiles it too, so a broken edit fails before an image build.
//!
//! The port comes from the service's own `<SERVICE>_ADMIN_ADDR` when set (the same variable the
//! service listens on), else from `FERROSHOP_ADMIN_PORT`, which the image sets at build time.

use std::{
    env,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::ExitCode,
    time::Duration,
};

fn admin_port() -> Result<u16, String> {
    if let Ok(service) = env::var("FERROSHOP_SERVICE") {
        let variable = format!("{}_ADMIN_ADDR", service.to_ascii_uppercase());
        if let Ok(address) = env::var(&variable) {
            let port = address.rsplit_once(':').map_or("", |(_, port)| port);
            return port
                .trim()
                .parse()
                .map_err(|_| format!("{variable}={address:?} has no port"));
        }
    }
    let port = env::var("FERROSHOP_ADMIN_PORT")
        .map_err(|_| "neither <SERVICE>_ADMIN_ADDR nor FERROSHOP_ADMIN_PORT is set".to_owned())?;
    port.trim()
        .parse()
        .map_err(|_| format!("FERROSHOP_ADMIN_PORT={port:?} is not a port"))
}

fn healthz(address: SocketAddr) -> std::io::Result<bool> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut status_line = [0_u8; 12];
    stream.read_exact(&mut status_line)?;
    Ok(status_line.starts_with(b"HTTP/1.0 200") || status_line.starts_with(b"HTTP/1.1 200"))
}

fn main() -> ExitCode {
    let port = match admin_port() {
        Ok(port) => port,
        Err(reason) => {
            eprintln!("healthcheck: {reason}");
            return ExitCode::FAILURE;
        }
    };
    match healthz(SocketAddr::from(([127, 0, 0, 1], port))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("healthcheck: /healthz on port {port} did not answer 200");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("healthcheck: /healthz on port {port}: {err}");
            ExitCode::FAILURE
        }
    }
}
