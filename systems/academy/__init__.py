"""The academy reference system (spec: ../shared/specs/academy.md)."""
