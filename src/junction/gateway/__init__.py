"""The gateway block: the edge of a system (sessions, roles, resilience, GraphQL and REST)."""
