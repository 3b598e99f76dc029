"""Evolutionary clustering of the analyzed library into playlists: pure domain code (no Flask, no RQ)."""
