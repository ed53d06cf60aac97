"""SQLAlchemy store: schema, migrations and the Store implementation."""
