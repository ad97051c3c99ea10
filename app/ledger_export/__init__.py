"""The ledger as a CSV file with a hash chain: exported streamed, verified later by anyone."""
