"""The control socket's client: one request, one reply (what ``ctl`` uses)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from .control_protocol import MAX_REPLY_BYTES, REQUEST_TIMEOUT

__all__ = ["ControlClient"]


class ControlClient:
    """Send requests to a `ControlServer` (what ``supervised-loops ctl`` uses).

    Args:
        path: the server's socket.
        timeout: seconds to wait for a reply; a little longer than the
            server's own `REQUEST_TIMEOUT`, so that a request the tree
            is slow to acknowledge comes back as the server's error reply.
    """

    def __init__(self, path: Path | str, *, timeout: float = REQUEST_TIMEOUT + 5.0) -> None:
        self._path = Path(path)
        self._timeout = timeout

    async def request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request and return the decoded reply.

        Raises:
            ConnectionError: nothing listens on the socket, the service hung
                up without replying, or its reply is not a JSON object.
            TimeoutError: no reply came within the timeout.

        Cancelled, the connection is closed; the request may still take
        effect in the service.
        """
        async with self._connection(request) as reader:
            return await self._reply(reader)

    async def stream(self, request: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Send a streaming request (``events``); yield its reply, then each item.

        The first item is the reply (an error reply ends the stream); the
        rest are the lines the service streams, until it closes the
        connection. No timeout applies once the reply has come: a quiet
        tree sends nothing for as long as it is quiet.

        Raises:
            ConnectionError, TimeoutError: as `request` does, for the reply.

        Closing or cancelling the iteration closes the connection, which
        ends the stream in the service.
        """
        async with self._connection(request) as reader:
            reply = await self._reply(reader)
            yield reply
            if not reply.get("ok"):
                return
            while line := await reader.readline():
                yield _decoded(line)

    @contextlib.asynccontextmanager
    async def _connection(self, request: Mapping[str, Any]) -> AsyncIterator[asyncio.StreamReader]:
        """Connect, send ``request``, give the reader; close the connection on the way out.

        A reset or a broken pipe while talking becomes the one
        `ConnectionError` a caller sees for a service that hung up.
        """
        try:
            reader, writer = await asyncio.open_unix_connection(
                str(self._path), limit=MAX_REPLY_BYTES
            )
        except (FileNotFoundError, ConnectionRefusedError) as error:
            raise ConnectionError(f"no service listens on {str(self._path)!r}") from error
        try:
            writer.write(json.dumps(dict(request)).encode() + b"\n")
            await writer.drain()
            yield reader
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as error:
            raise ConnectionError(_HUNG_UP) from error
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _reply(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(reader.readline(), self._timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no reply from {str(self._path)!r} within {self._timeout} seconds"
            ) from None
        if not line:
            raise ConnectionError(_HUNG_UP)
        return _decoded(line)


_HUNG_UP = "the service closed the connection without replying"


def _decoded(line: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(line)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise ConnectionError(f"the service sent a malformed reply: {line[:80]!r}")
    return reply
