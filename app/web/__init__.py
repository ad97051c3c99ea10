"""Web plumbing every feature shares: templates, middleware, error pages, health."""
