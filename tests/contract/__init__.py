"""One contract suite for the store port, run against every store adapter."""
