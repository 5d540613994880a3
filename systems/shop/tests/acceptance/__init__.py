"""Acceptance: the spec's scenarios and invariants through the gateway, embedded and distributed."""
