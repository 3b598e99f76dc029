"""Blueprints: one per page or API area. Views validate input, call one function, and return JSON or a page."""
