"""Discovery: similar songs, mixable tracks, song path, song alchemy, sonic fingerprint. Pure domain code: it works
on vectors and track metadata through the small interfaces in discovery.types, never on Flask, RQ or SQL."""
