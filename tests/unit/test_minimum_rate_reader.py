"""A large request body is read in a web thread: a client must keep sending it at a minimum rate, or the read fails
and the thread is let go (a body dripped a byte at a time held a thread for good)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from infra.web_worker import MinimumRateReader, SlowRequestBody


def _read_all(reader: MinimumRateReader) -> int:
    total = 0
    while data := reader.recv(65536):
        total += len(data)
    return total


def test_a_body_sent_steadily_is_read_whole() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        reader = MinimumRateReader(ours, grace_seconds=1.0, bytes_per_second=1000)

        def send() -> None:
            for _ in range(20):
                theirs.sendall(b"x" * 5000)
                time.sleep(0.01)
            theirs.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(1.5)  # waiting for a free thread, longer than the grace: not the client's time
        assert _read_all(reader) == 100_000
        sender.join()


def test_the_applications_time_between_reads_is_not_the_clients() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        reader = MinimumRateReader(ours, grace_seconds=0.3, bytes_per_second=1000)
        theirs.sendall(b"x" * 3000)
        theirs.shutdown(socket.SHUT_WR)
        total = 0
        while data := reader.recv(1000):
            total += len(data)
            time.sleep(0.2)  # the view working on what it read
        assert total == 3000


def test_a_dripped_body_fails_once_its_allowance_is_spent() -> None:
    ours, theirs = socket.socketpair()
    stop = threading.Event()
    with ours, theirs:
        reader = MinimumRateReader(ours, grace_seconds=0.5, bytes_per_second=1000)

        def drip() -> None:  # a byte every 0.1 s (10 a second against 1,000 wanted), 40 in all, then the end
            for _ in range(40):
                if stop.wait(0.1):
                    return
                try:
                    theirs.send(b"x")
                except OSError:
                    return
            theirs.shutdown(socket.SHUT_WR)

        dripper = threading.Thread(target=drip)
        dripper.start()
        try:
            with pytest.raises(SlowRequestBody):
                _read_all(reader)
            assert reader.received < 40  # it gave up within about the grace, not when the drip ended
        finally:
            stop.set()
            dripper.join()
