"""The social reference system (spec: ../shared/specs/social.md)."""
