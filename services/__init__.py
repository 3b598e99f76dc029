"""The web process's use cases: each module turns what a route asks into calls of the domain packages, the index and
db/, and keeps the web process's caches (the map, text search, search facets, the chat's name index)."""
