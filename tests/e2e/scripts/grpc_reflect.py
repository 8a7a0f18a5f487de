"""What a gRPC client that is not ours sees of one service port: Python's grpcio with the
reflection (v1alpha, what grpcio-reflection, older grpcurl, grpcui and Postman speak) and health
packages.

    grpc_reflect.py HOST:PORT SERVICE

prints one JSON object: the services the port lists, the methods reflection describes for
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


def main(target: str, service: str) -> None:
    with grpc.insecure_channel(target) as channel:
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
    main(sys.argv[1], sys.argv[2])
