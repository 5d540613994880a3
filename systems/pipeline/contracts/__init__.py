"""The pipeline's contracts: its events (``events``) and its public API's bodies and answers (``api``)."""
