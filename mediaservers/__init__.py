"""One module per media server, each implementing mediaserver.MediaServer."""
