"""Connections to our own infrastructure (PostgreSQL, Redis) and the embedded fallbacks for a bare machine."""
