"""Audio analysis: decoding, the mel front end, the musicnn model, signal features. Pure functions: no Flask, no RQ."""
