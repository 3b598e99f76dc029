"""The one exception root of the clustering package."""

from __future__ import annotations


class ClusteringError(ValueError):
    """The library or the request cannot be clustered; the message says why."""
