"""Database wiring: the SQLAlchemy config, the model registry and migrations."""
