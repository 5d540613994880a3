"""social browser tests."""
