"""social tests."""
