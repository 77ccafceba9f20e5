"""The outermost layer of the studio app: request bodies capped in bytes, and any exception
that escapes a handler answered with a one-line JSON 500 and logged as one line, never as a
traceback (Starlette's own error layer would re-raise it to the server, which prints one)."""
from __future__ import annotations

import json
import logging

log = logging.getLogger("gencore.studio")


class UploadTooLarge(Exception):
    pass


def guard(app, max_upload_bytes: int):
    async def middleware(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        cap = f"the upload is larger than the studio's {max_upload_bytes / 2**20:g} MiB"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_upload_bytes:
            await _reply(send, 413, cap)
            return
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_upload_bytes:
                    raise UploadTooLarge(cap)
            return message

        started = False

        async def tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await app(scope, counted, tracked)
        except Exception as exc:  # noqa: BLE001 -- the last line of defence: one line, no traceback
            line = " ".join(str(exc).split())[:300]
            log.error("internal error on %s %s: %s: %s", scope.get("method"), scope.get("path"), type(exc).__name__, line)
            if not started:
                await _reply(send, 500, f"internal error: {type(exc).__name__}: {line}")

    return middleware


async def _reply(send, status: int, line: str) -> None:
    body = json.dumps({"error": line}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
