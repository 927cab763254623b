"""Request bodies, read before anything is parsed (docs/deploy.md, "Quotas and timeouts";
docs/threat-model.md): against a size limit, at a pace (never idle too long; whole within a
deadline, or at a minimum rate), in one of a few places for bodies whose signature is not yet
checked; and an answer sent before its body arrived whole closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fieldsync.errors import (
    BodyTooSlow,
    FieldsyncError,
    MalformedData,
    RequestCut,
    ServerBusy,
    TooLarge,
)

BUSY_RETRY_AFTER_S = 5  # a body being read unchecked takes seconds, or is cut at its deadline


class UnreadBodyCloses:
    """An answer sent before its request's body arrived whole says ``Connection: close``.

    Whatever the answer (a body cut, too large or too slow, a busy server, headers whose
    signature does not verify, a path or method FastAPI refuses), uvicorn would otherwise keep
    the connection and go on reading and discarding that body for as long as the caller sends
    it, each byte putting off its keep-alive timeout, with no deadline. A 500 is sent outside
    every middleware and keeps that gap (docs/threat-model.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        arrived_whole = False

        async def receiving() -> Message:
            nonlocal arrived_whole
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                arrived_whole = True
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and not arrived_whole:
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*kept, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receiving, sending)


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


def declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.isdigit() or len(declared) > 18:
        raise MalformedData("the request's Content-Length is not a number of bytes")
    return int(declared)


@dataclass(frozen=True)
class Pace:
    """How a request body must arrive: never silent for ``idle_s``; whole within
    ``deadline_s``; and, once ``grace_s`` has passed, at ``min_rate`` bytes/s on average."""

    idle_s: float
    deadline_s: float = math.inf
    min_rate: float = 0.0
    grace_s: float = 0.0

    def due(self, elapsed: float, received: int) -> tuple[float, str]:
        """When, in seconds from the body's start, its next piece is due; and which rule says
        so. At that moment, with nothing more arrived, the body breaks that rule."""
        rules = [(elapsed + self.idle_s, "idle"), (self.deadline_s, "deadline")]
        if self.min_rate > 0:
            rules.append((max(self.grace_s, received / self.min_rate), "rate"))
        return min(rules)

    def broken(self, rule: str, received: int, elapsed: float) -> FieldsyncError:
        if rule == "deadline":
            return BodyTooSlow(
                f"the request's body did not arrive whole within {self.deadline_s:g} s, the "
                "longest the server reads a body before checking its signature; nothing of it "
                "was kept"
            )
        if rule == "rate":
            rate = received / max(elapsed, 0.001)
            return BodyTooSlow(
                f"the request's body arrived at {rate:.0f} bytes/s, under the "
                f"{self.min_rate:g} bytes/s the server asks; the {received} bytes that arrived "
                "are kept",
                hint="Nothing was lost: the upload resumes from there. Push again over a "
                "faster or steadier connection.",
            )
        return RequestCut(f"the request's body stopped arriving for {self.idle_s:g} s")


async def body_as_it_arrives(request: Request, pace: Pace) -> AsyncIterator[bytes]:
    """The request body piece by piece, cut (``RequestCut``, or ``BodyTooSlow`` for one that
    keeps arriving but too slowly) when it breaks ``pace``, or when the client leaves."""
    loop = asyncio.get_running_loop()
    started, received = loop.time(), 0
    pieces = request.stream()
    while True:
        due, rule = pace.due(loop.time() - started, received)
        try:
            async with asyncio.timeout_at(started + due):  # no task per piece, as wait_for makes
                piece = await anext(pieces)
        except StopAsyncIteration:
            return
        except ClientDisconnect as exc:
            raise RequestCut("the connection ended before the request's body did") from exc
        except TimeoutError as exc:
            raise pace.broken(rule, received, loop.time() - started) from exc
        received += len(piece)
        if piece:
            yield piece


class UnauthenticatedBodies:
    """The bodies this process is reading before their signature is checked, at most ``cap``:
    one more is refused at once (``ServerBusy``), never queued, so that callers holding
    bodies open cannot tie up more than ``cap`` connections and their bodies' memory."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.reading = 0
        self._free = asyncio.Semaphore(cap)  # bound to no loop until waited on, and never is

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._free.locked():  # tried, never waited for
            raise ServerBusy(
                f"the server is already reading {self.cap} request bodies whose signature it "
                "has not yet checked, the most it takes at once; this one was not read",
                details={"retry_after_s": BUSY_RETRY_AFTER_S},
            )
        await self._free.acquire()  # free: taken at once, with no other request run between
        self.reading += 1
        try:
            yield
        finally:
            self.reading -= 1
            self._free.release()


async def read_limited(
    request: Request, limit: int, pace: Pace, unauthenticated: UnauthenticatedBodies
) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit``, read
    within ``pace`` and in one of the ``unauthenticated`` slots (a caller holding bodies open
    holds the server)."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise TooLarge(f"the request body is larger than {limit} bytes")
    chunks, size = [], 0
    async with unauthenticated.slot():
        async for chunk in body_as_it_arrives(request, pace):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the request body is larger than {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)
