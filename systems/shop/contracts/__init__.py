"""The shop's contracts: the reference's gRPC proto and Avro schema (files here), events, REST bodies."""

from pathlib import Path

CONTRACTS = Path(__file__).parent  # inventory-service.proto, order-placed.avsc
