"""The client side of the sync protocol: the only module that talks HTTP.

httpx's failures become fieldsync's at this edge (keeping the cause): no answer at all is
``ServerUnreachable``; an error the server explains is raised as the same fieldsync error class
it names, so a device shows the server's own words; anything else is ``ServerError``. Every
request the protocol makes is idempotent, so failures that may be passing (no answer, 502, 503,
504) are retried with exponential backoff and jitter, a bounded number of times.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx

from fieldsync import errors
from fieldsync.errors import FieldsyncError, ServerError, ServerUnreachable

RETRYABLE_STATUS = frozenset({502, 503, 504})


class SyncClient:
    def __init__(
        self,
        base_url: str,
        *,
        attempts: int = 4,
        timeout: float = 30.0,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            headers={"user-agent": "fieldsync"},
        )

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def info(self) -> dict[str, Any]:
        """Who the server is: its receipt key and its organisation's keys."""
        return self._json(self._request("GET", "/v1/info"))

    def enrol(self, body: bytes) -> dict[str, Any]:
        return self._json(self._request("POST", "/v1/enrol", content=body))

    def _request(self, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        last: FieldsyncError | None = None
        for attempt in range(self._attempts):
            if attempt:
                # Exponential backoff with full jitter: retries from many devices spread out.
                self._sleep(random.uniform(0, self._backoff * 2 ** (attempt - 1)))  # noqa: S311
            try:
                response = self._http.request(method, path, content=content)
            except httpx.TransportError as exc:
                last = ServerUnreachable(
                    f"the server at {self.base_url} did not answer ({_reason(exc)}, "
                    f"{attempt + 1} tries)",
                    hint="Nothing was changed. Run the command again when the connection is back.",
                )
                last.__cause__ = exc
                continue
            if response.status_code in RETRYABLE_STATUS and attempt + 1 < self._attempts:
                continue
            if response.is_success:
                return response
            raise _server_error(self.base_url, response)
        assert last is not None
        raise last

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            value = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ServerError(
                f"the server at {self.base_url} sent an answer that is not JSON"
            ) from exc
        if not isinstance(value, dict):
            raise ServerError(f"the server at {self.base_url} sent an unexpected answer")
        return value


def _server_error(base_url: str, response: httpx.Response) -> FieldsyncError:
    """The server's own error, as the same class, when it names a fieldsync error."""
    try:
        body = response.json()
        name, message = str(body["error"]), str(body["message"])
        hint = body.get("hint")
    except (ValueError, KeyError, TypeError):
        return ServerError(
            f"the server at {base_url} answered {response.status_code} {response.reason_phrase}"
        )
    kind = getattr(errors, name, None)
    text = f"the server refused: {message[:1].lower()}{message[1:]}"
    if isinstance(kind, type) and issubclass(kind, FieldsyncError):
        error = kind.__new__(kind)
        FieldsyncError.__init__(error, text, hint=hint if isinstance(hint, str) else None)
        return error
    return ServerError(text)


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or no route"
    return "the connection dropped"
