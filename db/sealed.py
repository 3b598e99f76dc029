"""Secrets at rest: values of app_settings that hold credentials (the media-server settings, the session key) are
stored sealed with a key that is not in the database, so a dump or a read-only database account does not reveal
them.

The key is SETTINGS_KEY (any long random string; needed by every process, so set it when web and workers run on
different hosts), or else a key file `DATA_DIR/settings.key` made on first use, readable by its owner only. A
stored value is `sealed:v1:` + a Fernet token (AES-128-CBC + HMAC-SHA256, from the cryptography package); a value
without that prefix is one stored before sealing existed, read as it is and sealed at the next start
(`seal_plaintext`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from config import Config

PREFIX = "sealed:v1:"
KEY_FILE = "settings.key"

_cache: dict[str, Fernet] = {}
_lock = threading.Lock()


class SealError(RuntimeError):
    """A sealed value cannot be opened: the key is not the one it was sealed with."""


def _key_from_file(path: Path) -> bytes:
    """The key in `path`, made (0600, exclusively, so two processes starting together agree) when absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it this very moment
            text = path.read_bytes().strip()
            if text:
                return text
            time.sleep(0.02)
        raise SealError(f"the key file {path} is empty") from None
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    return key


def _fernet(config: Config) -> Fernet:
    source = f"env:{hashlib.sha256(config.SETTINGS_KEY.encode()).hexdigest()}" if config.SETTINGS_KEY \
        else f"file:{Path(config.DATA_DIR).resolve() / KEY_FILE}"
    with _lock:
        box = _cache.get(source)
        if box is None:
            if config.SETTINGS_KEY:  # any passphrase: SHA-256 makes it the 32 bytes Fernet wants
                key = base64.urlsafe_b64encode(hashlib.sha256(config.SETTINGS_KEY.encode()).digest())
            else:
                key = _key_from_file(Path(config.DATA_DIR) / KEY_FILE)
            box = _cache[source] = Fernet(key)
        return box


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def seal(config: Config, plain: str) -> str:
    return PREFIX + _fernet(config).encrypt(plain.encode()).decode("ascii")


def unseal(config: Config, stored: str) -> str:
    """The plain value of a stored one (a value stored before sealing comes back unchanged)."""
    if not is_sealed(stored):
        return stored
    try:
        return _fernet(config).decrypt(stored[len(PREFIX):].encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise SealError("a sealed setting cannot be opened with this key: SETTINGS_KEY (or DATA_DIR/settings.key) "
                        "differs from the one it was saved with") from None
