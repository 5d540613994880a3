"""The pipeline reference system (spec: ../shared/specs/pipeline.md)."""
