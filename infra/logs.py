"""Logging for every entry point: one format, one line a record, and credentials never written.

Libraries log what they see: urllib3 logs the full URL of every retried request, and a Subsonic URL carries the
user's token and salt (`t=`, `s=`) or, for old servers, the password itself (`p=enc:…`). Every log record is
therefore redacted when it is made (a record factory, so no handler, pytest's included, ever sees the secret), and
its control characters escaped (a request path or a file name with a newline cannot forge a log line).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Query parameters and headers that carry credentials.
# (also with a prefix, as the reference's clients send `jellyfin_token` and `navidrome_password`)
_SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:t|s|p|(?:[a-z]+_)?(?:token|api_?key|key|access_token|password|secret|auth))=)[^&\s'\"#]*")
_SECRET_HEADERS = re.compile(
    r"(?i)((?:x-emby-token|x-mediabrowser-token|x-goog-api-key|authorization|x-api-key)['\"]?\s*[:=]\s*['\"]?)"
    r"(?:(?:bearer|basic)\s+)?[^'\"\s,}]+")
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/:@\s]*:)[^@/\s]+@")


# Control characters but the tab: a newline in a request path or a track title must not start a forged log line.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def escape_controls(text: str) -> str:
    """`text` on one line: newlines as \\n, carriage returns as \\r, other control characters as \\xNN."""
    return _CONTROLS.sub(lambda m: {"\n": "\\n", "\r": "\\r"}.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def redact(text: str) -> str:
    """`text` with credentials in URLs, query strings and header dumps replaced by '***'."""
    text = _SECRET_PARAMS.sub(r"\1***", text)
    text = _SECRET_HEADERS.sub(r"\1***", text)
    return _USERINFO.sub(r"\1***@", text)


_installed = False


def install_redaction() -> None:
    """Redact every log record of this process from now on (idempotent)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: leave it to logging's own error report
            return record
        cleaned = escape_controls(redact(message))
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(redacted_record)
    _installed = True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, and the exception's traceback if any
    (its newlines escaped by JSON, so a record stays one line)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str = "text") -> None:
    """The process's logging: level, format (LOG_FORMAT: "text" or "json"), and redaction."""
    install_redaction()
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level, handlers=[handler])
    else:
        logging.basicConfig(level=level, format=FORMAT)
