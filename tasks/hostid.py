"""Which machine, boot and process namespace this process runs in.

Two containers can share a hostname (host networking, identical names) without sharing process ids, so a pid is
only comparable when all three match.
"""

from __future__ import annotations

import functools
import os
import socket


@functools.cache
def host_identity() -> str:
    parts = [socket.gethostname()]
    try:
        parts.append(open("/proc/sys/kernel/random/boot_id").read().strip()[:8])
    except OSError:
        parts.append("-")
    try:
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        parts.append("-")
    return "/".join(parts)
