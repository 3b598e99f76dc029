"""Small local HTTP servers that implement media-server APIs with their documented response shapes."""
