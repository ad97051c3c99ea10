"""Webhooks from the shop to host applications: an outbox written with the ledger, delivered later."""
