"""The inventory service's gRPC contract: the reference proto's messages and service, generated at build
time from ``inventory-service.proto`` (``junction.grpc.codegen``), gathered here under readable names."""

from __future__ import annotations

from shop.contracts.inventory_service_pb2 import InventoryRequest, InventoryResponse
from shop.contracts.inventory_service_pb2_grpc import InventoryServiceStub, add_InventoryServiceServicer_to_server

GRPC_PORT = 50051  # the reference's

# The reference's answers (lab4 InventoryGrpcService)
REDUCED = "Inventory reduced successfully"
INSUFFICIENT = "Insufficient inventory or product not found"
RESTORED = "Inventory restored successfully"
NOT_FOUND = "Product not found"
INVALID = "Invalid request parameters: SKU code cannot be empty and quantity must be positive"

__all__ = ["GRPC_PORT", "INSUFFICIENT", "INVALID", "NOT_FOUND", "REDUCED", "RESTORED", "InventoryRequest",
           "InventoryResponse", "InventoryServiceStub", "add_InventoryServiceServicer_to_server"]
