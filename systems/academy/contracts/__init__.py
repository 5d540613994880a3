"""The academy's contracts: events between services and the public API's shapes."""
