"""The pipeline's services: one module each, sharing nothing but ``pipeline.contracts``."""
