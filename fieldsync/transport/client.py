"""The client side of the sync protocol: the only module that talks HTTP.

httpx's failures become fieldsync's at this edge (keeping the cause): no answer at all is
``ServerUnreachable``; an error the server explains is raised as the same fieldsync error class
it names (``fieldsync.core.wire.ERRORS``), so a device shows the server's own words; anything
else is ``ServerError``. Every JSON answer is returned as its shape in ``fieldsync.core.wire``,
checked key by key. Every request the protocol makes is idempotent, so failures that may be
passing (no answer, 502, 503, 504) are retried with exponential backoff and jitter, a bounded
number of times.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from types import TracebackType

import httpx

from fieldsync import errors
from fieldsync.core import crypto, httpsig, invite
from fieldsync.core.wire import (
    BackupStored,
    BlobState,
    DeviceInfo,
    DeviceListing,
    EnrolAnswer,
    ErrorAnswer,
    FeedPage,
    OrgLogPage,
    RevokeAnswer,
    ServerInfo,
)
from fieldsync.errors import FieldsyncError, ServerError, ServerUnreachable

RETRYABLE_STATUS = frozenset({502, 503, 504})
# The largest answer the protocol gives is a feed page (4 MiB of versions past its first, which
# may be 8 MiB, in base64, with its receipts); anything far beyond that is an impostor or a
# broken proxy, and reading it whole would exhaust the device's memory.
MAX_ANSWER_BYTES = 64 * 1024 * 1024


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
        signer: crypto.SigningPair | None = None,
        clock: Callable[[], float] = time.time,
        max_answer: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_url = invite.checked_server_url(base_url).rstrip("/")
        self._max_answer = max_answer
        self._signer = signer
        self._clock = clock
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

    def backoff(self, attempt: int) -> None:
        """Wait before try number ``attempt`` + 1: exponential, with full jitter, so retries
        from many devices spread out."""
        self._sleep(random.uniform(0, self._backoff * 2 ** (attempt - 1)))  # noqa: S311

    def pause(self, seconds: float) -> None:
        self._sleep(seconds)

    def info(self) -> ServerInfo:
        """Who the server is: its receipt key and its organisation's keys."""
        return ServerInfo.from_json(self._json(self._request("GET", "/v1/info")), self._source)

    def enrol(self, body: bytes) -> EnrolAnswer:
        answer = self._json(self._request("POST", "/v1/enrol", content=body))
        return EnrolAnswer.from_json(answer, self._source)

    def blob_state(self, blob_id: str) -> BlobState | None:
        """How much of a blob the server holds; None if no upload has started."""
        try:
            answer = self._json(self._request("GET", f"/v1/blobs/{blob_id}", signed=True))
        except errors.NotFound:
            return None
        return BlobState.from_json(answer, self._source)

    def blob_create(self, blob_id: str, size: int) -> BlobState:
        answer = self._json(self._request("PUT", f"/v1/blobs/{blob_id}/{size}", signed=True))
        return BlobState.from_json(answer, self._source)

    def blob_append(
        self, blob_id: str, offset: int, body: Iterable[bytes], *, length: int, digest: str
    ) -> BlobState:
        """Stream ``length`` bytes of a blob from ``offset`` in one request, tried once: a body
        cannot be replayed, and the server keeps what arrived of a cut one, so the caller asks
        where the upload got to and sends the rest from there."""
        path = f"/v1/blobs/{blob_id}/{offset}"
        headers = self._signature_of("PATCH", path, digest) | {"content-length": str(length)}
        answer = self._json(self._send("PATCH", path, body, lambda: headers, attempts=1))
        return BlobState.from_json(answer, self._source)

    def devices(self) -> tuple[DeviceInfo, ...]:
        """The device registry (needs the admin key as signer)."""
        answer = self._json(self._request("GET", "/v1/admin/devices", signed=True))
        return DeviceListing.from_json(answer, self._source).devices

    def revoke(self, device: str) -> RevokeAnswer:
        path = f"/v1/admin/devices/{device}/revoke"
        answer = self._json(self._request("POST", path, signed=True))
        return RevokeAnswer.from_json(answer, self._source)

    def put_backup(self, sealed: bytes) -> BackupStored:
        """Give the server the organisation's sealed backup (needs the admin key as signer)."""
        answer = self._json(self._request("PUT", "/v1/admin/backup", sealed, signed=True))
        return BackupStored.from_json(answer, self._source)

    def backup(self) -> bytes:
        """The organisation's sealed backup as the server holds it (the caller parses it;
        ``NotFound`` if it holds none). Unsigned: the one recovering holds no key yet."""
        return self._request("GET", "/v1/org/backup").content

    def feed(self, after: int) -> FeedPage:
        """One page of the versions stored after position ``after`` that this signer may read."""
        answer = self._json(self._request("GET", f"/v1/feed/{int(after)}", signed=True))
        return FeedPage.from_json(answer, self._source)

    def blob_content(self, blob_id: str, sink: Callable[[bytes], None]) -> None:
        """Stream a complete blob's encrypted bytes into ``sink`` (the caller checks its hash)."""
        path = f"/v1/blobs/{blob_id}/content"
        headers = self._signature_of("GET", path, httpsig.content_digest(b""))
        try:
            with self._http.stream("GET", path, headers=headers) as response:
                if not response.is_success:  # an error's words, read only up to the bound
                    raise _server_error(self.base_url, self._read_limited(response))
                for chunk in response.iter_bytes():
                    sink(chunk)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"the server at {self.base_url} did not answer ({_reason(exc)})",
                hint="Nothing was changed. Run the command again when the connection is back.",
            ) from exc

    def put_bundle(self, member: str, raw: bytes) -> None:
        """Give the server a member's key bundle (needs the admin key as signer)."""
        self._request("PUT", f"/v1/admin/bundles/{member}", content=raw, signed=True)

    def bundle(self) -> bytes:
        """This signer's own key bundle, exactly as the administrator made it (the caller
        verifies and opens it: core/bundle.py)."""
        return self._request("GET", "/v1/org/bundle", signed=True).content

    def org_log(self) -> OrgLogPage:
        """The organisation's log and its forks, as the server holds them (the caller
        follows and verifies them: core/orglog.py)."""
        answer = self._json(self._request("GET", "/v1/org/log", signed=True))
        return OrgLogPage.from_json(answer, self._source)

    def send_statement(self, raw: bytes) -> OrgLogPage:
        """Deliver the next statement of the organisation's log; the log as it now stands."""
        answer = self._json(self._request("POST", "/v1/org/statements", content=raw))
        return OrgLogPage.from_json(answer, self._source)

    def send_batch(self, raw: bytes) -> bytes:
        """Deliver a batch; returns the receipt exactly as received (the caller verifies it)."""
        return self._request("POST", "/v1/batches", content=raw).content

    def _request(
        self, method: str, path: str, content: bytes | None = None, *, signed: bool = False
    ) -> httpx.Response:
        digest = httpsig.content_digest(content or b"") if signed else ""

        def headers() -> dict[str, str] | None:
            # Signed afresh on every try: the signature carries the time it was made.
            return self._signature_of(method, path, digest) if signed else None

        return self._send(method, path, content, headers, attempts=self._attempts)

    def _send(
        self,
        method: str,
        path: str,
        content: bytes | Iterable[bytes] | None,
        headers: Callable[[], dict[str, str] | None],
        *,
        attempts: int,
    ) -> httpx.Response:
        last: FieldsyncError | None = None
        for attempt in range(attempts):
            if attempt:
                self.backoff(attempt)
            try:
                request = self._http.build_request(method, path, content=content, headers=headers())
                response = self._read_limited(self._http.send(request, stream=True))
            except httpx.TransportError as exc:
                last = ServerUnreachable(
                    f"the server at {self.base_url} did not answer ({_reason(exc)}, "
                    f"{attempt + 1} tries)",
                    hint="Nothing was changed. Run the command again when the connection is back.",
                )
                last.__cause__ = exc
                continue
            if response.status_code in RETRYABLE_STATUS and attempt + 1 < attempts:
                continue
            if response.is_success:
                return response
            raise _server_error(self.base_url, response)
        assert last is not None
        raise last

    def _read_limited(self, response: httpx.Response) -> httpx.Response:
        """The answer, read whole only if it stays within ``max_answer`` bytes (as decoded, so
        a compressed bomb counts at its real size)."""
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self._max_answer:
                    raise ServerError(
                        f"the server at {self.base_url} sent an answer of more than "
                        f"{self._max_answer} bytes, far more than any the protocol gives",
                        hint="Nothing was changed. Check that the address is your "
                        "organisation's server; tell your administrator.",
                    )
        finally:
            response.close()
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-encoding", "content-length")
        }
        return httpx.Response(
            response.status_code, headers=headers, content=bytes(body), request=response.request
        )

    def sign_with(self, signer: crypto.SigningPair) -> None:
        """Sign what follows with ``signer``: an administrator's store whose admin key was
        just succeeded goes on with the key in force."""
        self._signer = signer

    def _signature_of(self, method: str, path: str, digest: str) -> dict[str, str]:
        if self._signer is None:
            raise ValueError("this request must be signed, and the client has no key")
        return httpsig.sign_digest(self._signer, method, path, digest, int(self._clock()))

    @property
    def _source(self) -> str:
        """How an error names this server."""
        return f"the server at {self.base_url}"

    def _json(self, response: httpx.Response) -> object:
        try:
            value: object = response.json()
            # RecursionError: nested past what the decoder follows, as a hostile server may send
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ServerError(f"{self._source} sent an answer that is not JSON") from exc
        return value


def _server_error(base_url: str, response: httpx.Response) -> FieldsyncError:
    """The server's own error, as the same class, when it names a fieldsync error."""
    try:
        answer = ErrorAnswer.from_json(response.json())
    except (ValueError, RecursionError, ServerError):
        return ServerError(
            f"the server at {base_url} answered {response.status_code} {response.reason_phrase}"
        )
    return answer.raised()


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or no route"
    return "the connection dropped"
