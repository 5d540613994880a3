"""junction: a platform for event-driven microservices."""
