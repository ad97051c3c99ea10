"""Webhooks from the shop to host applications: an outbox written with the ledger, delivered later.

``outbox`` (``emit()``, called by the money core in its transaction), ``models``, ``service``
(endpoints and the delivery log: the CLI's and the admin console's functions), ``delivery``
(fan-out, leased claims, signed POSTs with backoff; the app's lifespan task), ``cli``
(``storefront webhooks``) and ``signature`` (``verify_signature`` for hosts; standard library only).
"""
