"""ledger feature."""
