"""reconcile feature."""
