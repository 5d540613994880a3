"""social acceptance tests: the spec's scenarios on both topologies."""
