"""Acceptance: the spec's scenarios through the gateway, embedded and distributed."""
