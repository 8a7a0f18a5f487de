# syntax=docker/dockerfile:1.7
#
# One image per service; the build argument SERVICE picks which (the crate under services/):
#
#   docker build --build-arg SERVICE=users --build-arg API_PORT=50051 --build-arg ADMIN_PORT=9101 \
#     -t ferroshop/users:dev .
#
# API_PORT is the port clients call (gRPC for the services, HTTP for an HTTP edge), ADMIN_PORT
# the one with /healthz, /readyz and /metrics. infra/compose.yaml passes all three for every
# service; the ports are the defaults of each service's src/config.rs, and `cargo xtask
# deploy-check` fails when they drift apart.
#
# Stages: cargo-chef plans the dependency graph from the manifests only, so the layer that
# compiles every dependency is rebuilt only when Cargo.toml/Cargo.lock change, not on every
# source edit. The runtime image is distroless (glibc, CA certificates, no shell), runs as an
# unprivileged user and works with a read-only root filesystem.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<one of services/*>" >&2; exit 1; }
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: cached until the recipe (manifests and lock file) changes.
RUN cargo chef cook --release --locked --package "${SERVICE}" --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --package "${SERVICE}" --bin "${SERVICE}" \
 && install -D -m 0755 "target/release/${SERVICE}" /out/ferroshop-service \
 && rustc --edition 2024 -O -C strip=symbols -o /out/healthcheck infra/docker/healthcheck.rs \
 && mkdir -p /out/static \
 && if [ -d "services/${SERVICE}/static" ]; then cp -R "services/${SERVICE}/static/." /out/static/; fi

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG SERVICE
ARG API_PORT
ARG ADMIN_PORT
LABEL org.opencontainers.image.title="ferroshop-${SERVICE}" \
      org.opencontainers.image.description="Ferroshop ${SERVICE} service" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
# FERROSHOP_* are read by the health check only; the service reads its <SERVICE>_* settings.
ENV FERROSHOP_SERVICE=${SERVICE} \
    FERROSHOP_ADMIN_PORT=${ADMIN_PORT} \
    LOG_FORMAT=json
COPY --from=builder /out/ferroshop-service /usr/local/bin/ferroshop-service
COPY --from=builder /out/healthcheck /usr/local/bin/healthcheck
# Static files of services that serve some (the gateway's storefront, GATEWAY_STATIC_DIR);
# empty for the others.
COPY --from=builder /out/static /usr/share/ferroshop/static
# distroless' "nonroot" user; the Kubernetes manifests run the pods with the same ids.
USER 65532:65532
EXPOSE ${API_PORT} ${ADMIN_PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/healthcheck"]
ENTRYPOINT ["/usr/local/bin/ferroshop-service"]
