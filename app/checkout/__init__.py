"""checkout feature."""
