"""The one exception root of the audio package, and the one sample rate everything is decoded to."""

from __future__ import annotations

# musicnn's input rate; decoding, the mel front end and the signal features all work at it.
SAMPLE_RATE = 16000


class AudioError(ValueError):
    """Root of the audio errors; the message names the file or the bad value and the cause."""


class DecodeError(AudioError):
    """The file could not be decoded to audio."""


class DecodeTimeout(DecodeError):
    """Decoding took longer than the allowed time and was stopped."""


class TrackTooLong(DecodeError):
    """The file is longer than the configured maximum and is not decoded."""
