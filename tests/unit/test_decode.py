"""Decoding real files of every common format, and failing clearly (and in time) on bad ones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio.decode import TARGET_SR, DecodeError, DecodeTimeout, IsolatedDecoder, decode_file, downmix

SR = 44100


def tone(seconds: float = 3.0, hz: float = 1000.0, stereo: bool = True) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    left = 0.5 * np.sin(2 * np.pi * hz * t)
    return np.stack([left, left], axis=1).astype(np.float32) if stereo else left.astype(np.float32)


def dominant_hz(y: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * TARGET_SR / len(y))


def ffmpeg_encode(source: Path, target: Path, *codec: str) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg (Debian package) is required"
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(source), *codec, str(target)], check=True)
    return target


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    sf.write(path, tone(), SR)
    return path


@pytest.mark.parametrize(("suffix", "codec"), [
    (".flac", ()), (".ogg", ("-c:a", "libvorbis")), (".mp3", ("-b:a", "192k")), (".opus", ("-c:a", "libopus")),
    (".m4a", ("-c:a", "aac")), (".wma", ("-c:a", "wmav2")),
])
def test_common_formats_decode_to_mono_16k(tmp_path: Path, wav: Path, suffix: str, codec: tuple[str, ...]) -> None:
    path = ffmpeg_encode(wav, tmp_path / f"tone{suffix}", *codec)
    y = decode_file(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / TARGET_SR - 3.0) < 0.1
    assert abs(dominant_hz(y[TARGET_SR // 2: 2 * TARGET_SR]) - 1000.0) < 5.0
    assert 0.3 < np.abs(y).max() < 0.7


def test_wav_matches_a_reference_resample(tmp_path: Path) -> None:
    import soxr

    left, right = tone(hz=1000.0, stereo=False), tone(hz=3000.0, stereo=False)
    path = tmp_path / "two-tones.wav"
    sf.write(path, np.stack([left, right], axis=1), SR)
    y = decode_file(path)
    expected = soxr.resample((left + right) / 2, SR, TARGET_SR, quality="HQ")
    np.testing.assert_allclose(y, expected, atol=1e-4)  # streaming vs one-shot soxr differ by ~3e-5


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_downmix_is_the_channel_average(channels: int) -> None:
    frames = np.random.default_rng(channels).uniform(-1, 1, (10_001, channels)).astype(np.float32)
    mono = downmix(frames)
    assert mono.dtype == np.float32 and mono.shape == (10_001,)
    np.testing.assert_allclose(mono, frames.mean(axis=1, dtype=np.float64), atol=1e-6)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.mp3", b"", "empty file"),
    ("random.flac", np.random.default_rng(0).bytes(5000), "could not decode"),
    ("readme.ogg", b"just some text\n" * 100, "could not decode"),
])
def test_bad_files_raise_a_clear_error(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DecodeError) as err:
        decode_file(path)
    assert message in str(err.value) and name in str(err.value)


def test_zero_length_wav(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(DecodeError, match="no audio samples"):
        decode_file(path)


def test_isolated_decoder_returns_the_same_samples(wav: Path) -> None:
    with IsolatedDecoder(timeout=30) as decoder:
        np.testing.assert_array_equal(decoder.decode(wav), decode_file(wav))
        with pytest.raises(DecodeError, match="no such file"):
            decoder.decode(wav.with_name("missing.wav"))
        assert decoder.decode(wav).size > 0  # the helper survives an error


@pytest.fixture
def hanging_ffmpeg(tmp_path: Path) -> tuple[Path, Path]:
    """(an "ffmpeg" that never answers, a file libsndfile cannot read, so it goes to that ffmpeg)."""
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text("#!/bin/sh\nexec sleep 300\n")
    fake.chmod(0o755)
    odd = tmp_path / "song.m4a"
    odd.write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 2000)
    return fake, odd


def test_hung_decoder_is_killed_and_replaced(hanging_ffmpeg: tuple[Path, Path], wav: Path) -> None:
    fake, odd = hanging_ffmpeg
    with IsolatedDecoder(timeout=2, ffmpeg=str(fake)) as decoder:
        with pytest.raises(DecodeTimeout, match="longer than 2 s"):
            decoder.decode(odd)
        assert decoder.decode(wav).size > 0  # a fresh helper process took over
    leftover = subprocess.run(["pgrep", "-f", str(fake)], capture_output=True, text=True).stdout
    assert leftover == ""


def test_ffmpeg_stops_at_the_length_limit_and_decodes_at_the_model_rate(tmp_path):
    """A file libsndfile cannot read and that is far longer than allowed: ffmpeg is asked for mono 16 kHz and at
    most the limit plus a second, so the whole file never exists at its source rate in memory."""
    ffmpeg = shutil.which("ffmpeg")
    long_file = tmp_path / "long.mka"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=300", "-ac", "2",
                    "-c:a", "libopus", "-b:a", "24k", str(long_file)], check=True)
    calls = tmp_path / "calls.txt"
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {ffmpeg} "$@"\n')
    wrapper.chmod(0o755)
    from audio.decode import TrackTooLong

    with pytest.raises(TrackTooLong):
        decode_file(long_file, ffmpeg=str(wrapper), max_seconds=60)
    args = calls.read_text().split()
    assert args[args.index("-t") + 1] == "61" and args[args.index("-ac") + 1] == "1"
    assert args[args.index("-ar") + 1] == str(TARGET_SR) and "f32le" in args
    short = decode_file(long_file, ffmpeg=str(wrapper), max_seconds=400)
    assert abs(len(short) / TARGET_SR - 300) < 0.2 and abs(dominant_hz(short[:TARGET_SR * 10]) - 440) < 3


def test_the_decoder_helper_has_a_capped_address_space(tmp_path):
    path = tmp_path / "tone.flac"
    sf.write(path, tone(2.0), SR)
    with IsolatedDecoder(timeout=30, memory_limit_mb=1536) as decoder:
        assert len(decoder.decode(path)) == 2 * TARGET_SR  # works under the cap
        limits = Path(f"/proc/{decoder._process.pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max address space"))
    assert line.split()[3] == str(1536 * 1024 * 1024)
    with IsolatedDecoder(timeout=30, memory_limit_mb=64) as starved:  # cannot even start numpy: a failure
        with pytest.raises(DecodeError):
            starved.decode(path)


@pytest.mark.parametrize(("suffix", "codec"), [(".wav", None), (".flac", ()), (".m4a", ("-c:a", "aac"))])
def test_a_stream_gives_the_samples_of_the_whole_decode_a_few_seconds_at_a_time(tmp_path: Path, suffix: str,
                                                                               codec: tuple[str, ...] | None):
    source = tmp_path / "long.wav"
    sf.write(source, np.tile(tone(), (12, 1)), SR)  # 36 s
    path = source if codec is None else ffmpeg_encode(source, tmp_path / f"long{suffix}", *codec)
    from audio.decode import decode_stream

    blocks = list(decode_stream(path))
    assert all(b is not None for b in blocks) and len(blocks) >= 3
    assert max(len(b) for b in blocks) <= 20 * TARGET_SR  # never the whole file at once
    np.testing.assert_array_equal(np.concatenate(blocks), decode_file(path))
    with IsolatedDecoder(timeout=30) as decoder:
        np.testing.assert_array_equal(np.concatenate(list(decoder.stream(path))), decode_file(path))
        abandoned = decoder.stream(path)
        next(abandoned)
        abandoned.close()  # the helper still sends the rest: it is stopped, and the next request gets its own answer
        np.testing.assert_array_equal(decoder.decode(wav_of(tmp_path)), decode_file(wav_of(tmp_path)))
        with pytest.raises(DecodeError, match="no such file"):
            list(decoder.stream(tmp_path / "missing.flac"))
        assert sum(len(b) for b in decoder.stream(path)) == len(decode_file(path))


def wav_of(tmp_path: Path) -> Path:
    path = tmp_path / "short.wav"
    if not path.exists():
        sf.write(path, tone(seconds=1.0), SR)
    return path


def test_a_stream_that_hangs_is_stopped_after_the_timeout(hanging_ffmpeg: tuple[Path, Path], wav: Path) -> None:
    fake, odd = hanging_ffmpeg
    with IsolatedDecoder(timeout=2, ffmpeg=str(fake)) as decoder:
        with pytest.raises(DecodeTimeout, match="longer than 2 s"):
            list(decoder.stream(odd))
        assert sum(len(b) for b in decoder.stream(wav)) == len(decode_file(wav))


def test_a_file_libsndfile_fails_on_midway_starts_over_in_ffmpeg(tmp_path: Path, wav: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import audio.decode as decode

    def fails_midway(path: Path, sr: int, max_seconds: float | None = None):
        yield np.ones(1000, dtype=np.float32)
        yield np.ones(1000, dtype=np.float32)
        raise sf.LibsndfileError(1, "corrupt block")

    expected = np.concatenate(list(decode._ffmpeg_blocks(wav, TARGET_SR, "ffmpeg")))
    monkeypatch.setattr(decode, "_soundfile_blocks", fails_midway)
    blocks = list(decode.decode_stream(wav))
    assert [b is None for b in blocks[:3]] == [False, False, True]
    np.testing.assert_array_equal(np.concatenate(blocks[3:]), expected)
    np.testing.assert_array_equal(decode.decode_file(wav), expected)  # the void blocks are dropped


def test_a_second_ffmpeg_failure_is_reported_with_ffmpegs_reason(tmp_path: Path) -> None:
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text("#!/bin/sh\necho 'soxr: resampler not found' >&2\nexit 1\n")
    fake.chmod(0o755)
    odd = tmp_path / "song.m4a"
    odd.write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 2000)
    with pytest.raises(DecodeError, match="ffmpeg could not decode it .soxr: resampler not found"):
        decode_file(odd, ffmpeg=str(fake))
