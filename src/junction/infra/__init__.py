"""Local servers the distributed topology and its tests need, installed and started by the project itself."""
