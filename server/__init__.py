"""Rollcall server: app assembly, configuration, database, domain services, admin UI and CLI."""
