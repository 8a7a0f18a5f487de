"""What a gRPC client that is not ours sees of one service port: Python's grpcio with the
reflection (v1alpha, what grpcio-reflection, older grpcurl, grpcui and Postman speak) and health
packages.

    grpc_reflect.py HOST:PORT SERVICE [CA CERT KEY SERVER_NAME]

over mutual TLS with the PEM files CA, CERT and KEY, expecting the server's certificate to name
SERVER_NAME (the development certificates' DNS name), or plaintext without them; prints one JSON
object: the services the port lists, the methods reflection describes for
SERVICE, and the health of the whole server and of SERVICE. Used by tests/e2e/tests/grpc_clients.rs.
"""

import json
import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def open_channel(target: str, tls: list[str]) -> grpc.Channel:
    if not tls:
        return grpc.insecure_channel(target)
    ca, cert, key, server_name = tls
    with open(ca, "rb") as root, open(cert, "rb") as chain, open(key, "rb") as private:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=root.read(),
            private_key=private.read(),
            certificate_chain=chain.read(),
        )
    return grpc.secure_channel(
        target, credentials, options=[("grpc.ssl_target_name_override", server_name)]
    )


def main(target: str, service: str, tls: list[str]) -> None:
    with open_channel(target, tls) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        database = ProtoReflectionDescriptorDatabase(channel)
        listed = sorted(database.get_services())
        described = DescriptorPool(database).FindServiceByName(service)
        health = health_pb2_grpc.HealthStub(channel)
        statuses = {
            name: health_pb2.HealthCheckResponse.ServingStatus.Name(
                health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
            )
            for name in ["", service]
        }
    print(
        json.dumps(
            {
                "services": listed,
                "methods": sorted(method.name for method in described.methods),
                "health": statuses,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
