"""The shop's services: one module each, sharing nothing but ``shop.contracts``."""
