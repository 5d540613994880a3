"""The social system's published contracts: its HTTP API (spec section 2) and its events."""
