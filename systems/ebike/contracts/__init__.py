"""ebike's published contracts: the events every service may consume, and shared domain constants.

Services import these, never each other's modules.
"""
