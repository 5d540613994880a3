"""gRPC between services: servicers served by the runtime, clients that always call with a deadline.

A service declares a servicer class; its methods take the request and a unit of work, as routes do::

    @inventory.grpc(inventory_service_pb2_grpc.add_InventoryServiceServicer_to_server, port=50051)
    class InventoryService:
        async def CheckAndReduceInventory(self, request: InventoryRequest, uow: UnitOfWork) -> InventoryResponse:
            ...

The runtime serves a hosted service's servicers on its gRPC port (``<service>_grpc_port``, else the
declared one) in whichever process hosts it (``GrpcServers``); other services call it through a
``GrpcClient``, on a channel to its address (the loopback of this process, or the peer's)::

    inventory = GrpcClient("inventory", InventoryServiceStub, deadline=2.0)
    reply = await inventory(uow).CheckAndReduceInventory(request)    # DEADLINE_EXCEEDED after 2 s

The stubs come from the system's ``.proto`` files, generated at build time (``junction.grpc.codegen``).
Nothing here imports ``grpc`` until a system uses it, so systems without gRPC do not pay for it.
"""

from __future__ import annotations

from junction.grpc.client import GrpcChannels, GrpcClient
from junction.grpc.server import GrpcConfig, GrpcServers, status_of

__all__ = ["GrpcChannels", "GrpcClient", "GrpcConfig", "GrpcServers", "status_of"]
