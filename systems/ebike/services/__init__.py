"""The ebike services: each module is one service's domain code and declarations."""
