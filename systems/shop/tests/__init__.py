"""The shop's tests: services through their contracts, and acceptance through the gateway on both topologies."""
