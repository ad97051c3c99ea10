"""Email: an outbox written with the event that causes a message, and a worker that sends it."""
