"""Request bodies are read in full, within a deadline and a size limit, before any view runs.

A client that sends headers and then stalls in its body (or trickles it) waits
in its own greenlet without holding anything the shop needs, and is answered
408 once BODY_TIMEOUT_S passed. A body that cannot be read (a malformed chunked
encoding, a connection cut short) is a 400, an oversized one a 413, in the
caller's language (JSON under /api/, a page elsewhere), never a 500.
"""

from __future__ import annotations

import io

import gevent
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, RequestTimeout

from kafka_common.logging import get_logger

BODY_TIMEOUT_S = 10.0
BODY_ERROR = "pizza.body_error"
READ_SIZE = 64 * 1024
log = get_logger("webapp")


class BufferedBody:
    """WSGI middleware: replace wsgi.input by the whole body, or record why it could not be read."""

    def __init__(self, app, max_bytes: int, timeout_s: float = BODY_TIMEOUT_S):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def __call__(self, environ, start_response):
        if _has_body(environ):
            try:
                body = self._read(environ)
            except HTTPException as exc:
                log.info("request body refused", path=environ.get("PATH_INFO"), status=exc.code, reason=exc.description)
                environ[BODY_ERROR] = exc
                body = b""
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ["wsgi.input_terminated"] = True
        return self.app(environ, start_response)

    def _read(self, environ) -> bytes:
        declared = environ.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise RequestEntityTooLarge(f"request body is larger than {self.max_bytes} bytes")
        stream = environ["wsgi.input"]
        parts: list[bytes] = []
        size = 0
        try:
            with gevent.Timeout(self.timeout_s):
                while True:
                    part = stream.read(min(READ_SIZE, self.max_bytes + 1 - size))
                    if not part:
                        break
                    parts.append(part)
                    size += len(part)
                    if size > self.max_bytes:
                        raise RequestEntityTooLarge(f"request body is larger than {self.max_bytes} bytes")
        except gevent.Timeout:
            raise RequestTimeout(f"the request body did not arrive within {self.timeout_s:.0f} s") from None
        except HTTPException:
            raise
        except Exception as exc:  # gunicorn's chunked-encoding errors, a connection cut short, ...
            raise BadRequest(f"the request body could not be read: {type(exc).__name__}") from None
        return b"".join(parts)


def _has_body(environ) -> bool:
    if environ.get("HTTP_TRANSFER_ENCODING"):
        return True
    length = environ.get("CONTENT_LENGTH")
    return bool(length) and length != "0"


def raise_body_error(environ) -> None:
    """Called before every view: a body that could not be read ends the request here."""
    error = environ.get(BODY_ERROR)
    if error is not None:
        raise error
