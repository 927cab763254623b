"""Bodies that arrive too slowly to be honest, on a real server over a real socket: a body read
before its signature is checked has a deadline for the whole of it, and only so many are read
at once; a streamed blob upload must keep up a minimum rate (what arrived is kept)."""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI

from fieldsync.core import batch as batch_format
from fieldsync.core.wire import BlobState
from fieldsync.server import data
from fieldsync.server.app import create_app
from fieldsync.server.limits import KIB, SLOW_LINK, Limits
from fieldsync.server.tables import StoredEntry
from fieldsync.services import uploads
from fieldsync.transport.client import SyncClient
from tests.faults.proxy import FaultProxy
from tests.live import free_port, running
from tests.server.conftest import NOW, Device, Live, Org, enrol_body, make_invite
from tests.server.test_blobs import offset_of, open_body, sealed_blob, signed
from tests.server.test_server_run import fieldsync

TIGHT = Limits(
    body_idle_s=5.0,
    body_deadline_s=1.0,
    body_min_rate=1000.0,
    body_rate_grace_s=1.0,
    unauthenticated_bodies=3,
)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, object] = field(default_factory=dict)


@dataclass
class Served:
    app: FastAPI
    live: Live

    @property
    def address(self) -> tuple[str, int]:
        url = self.live.http.base_url
        assert url.port is not None
        return url.host, url.port


@contextmanager
def serving(server: data.ServerData, database_url: str | None, limits: Limits) -> Iterator[Served]:
    app = create_app(server, database_url=database_url, now_ms=lambda: NOW, limits=limits)
    try:
        with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
            yield Served(app, Live(http, app.state.engine, server))
    finally:
        app.state.engine.dispose()


@pytest.fixture
def tight(server: data.ServerData, database_url: str | None) -> Iterator[Served]:
    with serving(server, database_url, TIGHT) as served:
        yield served


def open_request(address: tuple[str, int], method: str, path: str, length: int) -> socket.socket:
    """A request whose headers (none of them signed) are sent and whose body of ``length``
    bytes is still to come."""
    sock = socket.create_connection(address)
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
    sock.sendall(head.encode())
    return sock


def open_post(address: tuple[str, int], path: str, length: int) -> socket.socket:
    return open_request(address, "POST", path, length)


def read_answer(sock: socket.socket, timeout: float) -> Answer:
    """The HTTP answer on ``sock`` (headers and the JSON body its Content-Length gives)."""
    sock.settimeout(timeout)
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += _received(sock)
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:])}
    while len(rest) < int(headers.get("content-length", "0")):
        rest += _received(sock)
    return Answer(int(lines[0].split()[1]), headers, json.loads(rest) if rest else {})


def _received(sock: socket.socket) -> bytes:
    got = sock.recv(65_536)
    assert got, "the server closed the connection without an answer"
    return got


def trickle(
    sock: socket.socket, body: bytes, piece: int, every: float, give_up: float
) -> tuple[int, float]:
    """Send ``body`` ``piece`` bytes every ``every`` seconds (never idle) until the server
    answers, or ``give_up`` seconds pass; returns the bytes sent and the seconds until the
    answer."""
    started, sent = time.monotonic(), 0
    while time.monotonic() - started < give_up and sent < len(body):
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            return sent, time.monotonic() - started
        try:
            sock.sendall(body[sent : sent + piece])
        except OSError:  # the server has closed it: its answer is waiting
            return sent, time.monotonic() - started
        sent += piece
    raise AssertionError(f"no answer to a body trickled for {time.monotonic() - started:.1f} s")


def closed_by_server(sock: socket.socket, within: float = 2.0) -> bool:
    """Whether the server lets the connection go after its answer, while the caller goes on
    trickling its body (each byte used to put off uvicorn's keep-alive timeout)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"F")
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable and sock.recv(65_536) == b"":
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def reading(app: FastAPI) -> int:
    """Unchecked bodies the server is reading now (-1 if it does not count them)."""
    slots = getattr(app.state, "unauthenticated_bodies", None)
    return -1 if slots is None else int(slots.reading)


def wait_until(condition: Callable[[], bool], up_to: float = 3.0) -> None:
    """Poll ``condition`` for up to ``up_to`` seconds; the test's own asserts say what failed."""
    deadline = time.monotonic() + up_to
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("path", ["/v1/batches", "/v1/enrol"])
def test_a_body_trickled_without_ever_going_idle_is_refused_at_its_deadline(
    tight: Served, path: str
) -> None:
    """A byte every 0.2 s never trips the 5 s idle limit: before the deadline it held the
    request, its connection and its memory for the whole 4,000 bytes (800 s)."""
    sock = open_post(tight.address, path, 4000)
    try:
        _, took = trickle(sock, b"F" * 4000, 1, every=0.2, give_up=6)
        answer = read_answer(sock, 5)
        assert answer.status == 408, answer
        assert answer.body["error"] == "BodyTooSlow"
        assert "did not arrive whole within 1 s" in str(answer.body["message"])
        assert "faster" in str(answer.body["hint"])
        assert 0.9 < took < 2.5
        assert closed_by_server(sock)
        assert answer.headers.get("connection") == "close"
    finally:
        sock.close()
    assert tight.live.count(StoredEntry) == 0
    assert reading(tight.app) == 0
    assert tight.live.http.get("/v1/health").status_code == 200


@pytest.mark.parametrize("path", ["/v1/batches", "/v1/enrol"])
def test_a_body_refused_as_too_large_does_not_keep_its_connection(tight: Served, path: str) -> None:
    """Refused at once (413) on its declared length, its body is never read; uvicorn used to
    keep the connection, discarding that body for as long as the caller trickled it."""
    sock = open_post(tight.address, path, 20_000_000)
    try:
        answer = read_answer(sock, 5)
        assert answer.status == 413 and answer.body["error"] == "TooLarge"
        assert closed_by_server(sock)
        assert answer.headers.get("connection") == "close"
    finally:
        sock.close()


def test_one_body_past_the_cap_is_refused_at_once_while_the_others_are_held(
    server: data.ServerData, database_url: str | None, org: Org
) -> None:
    limits = Limits(body_idle_s=8.0, body_deadline_s=8.0, unauthenticated_bodies=3)
    with serving(server, database_url, limits) as served:
        held = [open_post(served.address, "/v1/batches", 4000) for _ in range(3)]
        try:
            for sock in held:
                sock.sendall(b"F" * 100)
            wait_until(lambda: reading(served.app) == 3)
            one_more = open_post(served.address, "/v1/enrol", 4000)
            started = time.monotonic()
            try:
                answer = read_answer(one_more, 4)
                took = time.monotonic() - started
                assert answer.status == 503, answer
                assert answer.body["error"] == "ServerBusy"
                assert "3 request bodies" in str(answer.body["message"])
                assert "Try again" in str(answer.body["hint"])
                assert answer.headers.get("retry-after", "").isdigit()
                assert took < 1.0  # at once, not queued behind the three
                assert closed_by_server(one_more)
            finally:
                one_more.close()
            assert served.live.http.get("/v1/health").status_code == 200  # no body: served
            for sock in held:  # the three were still being read all along
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
        finally:
            for sock in held:
                sock.close()
        # every slot is given back, whatever ended the body (here: the caller left)
        wait_until(lambda: reading(served.app) == 0)
        assert reading(served.app) == 0
        device = Device()
        body = enrol_body(make_invite(org, served.live.server), device.signer, device.box)
        assert served.live.http.post("/v1/enrol", content=body).status_code == 200


def test_of_many_bodies_arriving_together_exactly_the_cap_are_read(
    server: data.ServerData, database_url: str | None
) -> None:
    """Twelve slow bodies sent at the same moment against a cap of 3: exactly 3 are read and
    held, and the other 9 are answered 503 at once."""
    limits = Limits(body_idle_s=8.0, body_deadline_s=8.0, unauthenticated_bodies=3)
    with serving(server, database_url, limits) as served:
        socks = [socket.create_connection(served.address) for _ in range(12)]
        head = b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\nFF"
        try:
            for sock in socks:  # headers and a first piece, all before the server reads any
                sock.sendall(head)
            waiting, refused = list(socks), 0
            deadline = time.monotonic() + 2  # well before the held bodies' own deadline
            while waiting and time.monotonic() < deadline:
                readable, _, _ = select.select(waiting, [], [], 0.1)
                for sock in readable:
                    assert read_answer(sock, 1).status == 503
                    waiting.remove(sock)
                    refused += 1
            assert refused == 9, f"{refused} refused"
            assert reading(served.app) == 3
        finally:
            for sock in socks:
                sock.close()
        wait_until(lambda: reading(served.app) == 0)
        assert reading(served.app) == 0


def test_a_streamed_upload_below_the_minimum_rate_is_cut_and_keeps_what_arrived(
    tight: Served, org: Org
) -> None:
    """20 bytes every 0.1 s is 200 bytes/s, under the 1,000 the server asks after 1 s: the body
    is cut (it used to be read for as long as the caller liked) and its bytes are kept."""
    live = tight.live
    device = Device()
    enrolled = enrol_body(make_invite(org, live.server), device.signer, device.box)
    assert live.http.post("/v1/enrol", content=enrolled).status_code == 200
    data_, blob_id = sealed_blob(20_000)
    signed(live, device.signer, "PUT", f"/v1/blobs/{blob_id}/{len(data_)}")
    sock = open_body(live, device.signer, f"/v1/blobs/{blob_id}/0", data_)
    try:
        sent, took = trickle(sock, data_, 20, every=0.1, give_up=6)
        answer = read_answer(sock, 5)
    finally:
        sock.close()
    assert answer.status == 408, answer
    assert answer.body["error"] == "BodyTooSlow"
    assert "under the 1000 bytes/s" in str(answer.body["message"])
    assert "kept" in str(answer.body["message"])
    assert 0.9 < took < 2.5
    kept = offset_of(live, device.signer, blob_id)
    assert sent - 40 <= kept <= sent and kept > 0
    assert (live.server.folder / "blobs" / "partial" / blob_id).read_bytes() == data_[:kept]
    rest = signed(live, device.signer, "PATCH", f"/v1/blobs/{blob_id}/{kept}", data_[kept:])
    assert rest.status_code == 200 and rest.json()["complete"] is True  # the rest completes it


def test_a_normal_push_is_unaffected_and_a_busy_server_is_tried_again(
    tight: Served, org: Org
) -> None:
    """Under the same tight limits, four devices at once enrol, upload a 3 MB attachment and
    deliver a batch naming it: a body refused while three others are read is sent again by the
    device, and arrives."""
    live = tight.live
    url = str(live.http.base_url)
    failures: list[BaseException] = []

    def push() -> None:
        try:
            device = Device()
            client = SyncClient(url, signer=device.signer, clock=lambda: NOW / 1000, backoff=0.1)
            with client:
                client.enrol(enrol_body(make_invite(org, live.server), device.signer, device.box))
                data_, blob_id = sealed_blob(3_000_000)
                uploads.upload(client, blob_id, len(data_), lambda o, n: data_[o : o + n])
                batch = device.batch(device.record(20), blobs=((blob_id, len(data_)),))
                assert json.loads(client.send_batch(batch))["receipt"]["last_seq"] == 20
        except BaseException as exc:  # reported below, from the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=push) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert live.count(StoredEntry) == 80
    assert reading(tight.app) == 0


class CountingClient(SyncClient):
    """A real client that counts the append requests an upload takes."""

    appends = 0

    def blob_append(self, *args: object, **kwargs: object) -> BlobState:
        self.appends += 1
        return super().blob_append(*args, **kwargs)  # type: ignore[arg-type]


def test_a_device_on_a_link_below_the_minimum_rate_still_delivers_its_attachment(
    server: data.ServerData, database_url: str | None, org: Org
) -> None:
    """A link carrying 30 KB/s to a server asking 60 KB/s after 0.3 s: each append is cut,
    what crossed is kept, and the device resumes from there until the upload is whole."""
    limits = Limits(body_min_rate=60_000, body_rate_grace_s=0.3)
    with serving(server, database_url, limits) as served:
        live = served.live
        device = Device()
        enrolled = enrol_body(make_invite(org, live.server), device.signer, device.box)
        assert live.http.post("/v1/enrol", content=enrolled).status_code == 200
        data_, blob_id = sealed_blob(120_000)
        assert served.address[1] is not None
        with FaultProxy(served.address[1], trickle=300) as proxy:
            client = CountingClient(proxy.url, signer=device.signer, clock=lambda: NOW / 1000)
            with client:
                sent = uploads.upload(client, blob_id, len(data_), lambda o, n: data_[o : o + n])
        assert sent == len(data_)
        assert client.appends > 1  # cut for its rate, and resumed
        assert (live.server.folder / "blobs" / blob_id[:2] / blob_id).read_bytes() == data_


def test_the_default_deadline_lets_the_largest_batch_cross_a_slow_link() -> None:
    assert Limits().body_deadline_s >= batch_format.MAX_BATCH_BYTES / SLOW_LINK
    assert SLOW_LINK == 20 * KIB
    assert Limits().body_min_rate <= SLOW_LINK / 10  # a slow device is never cut


def test_server_run_takes_the_body_limits_from_options_and_the_environment(
    server: data.ServerData,
) -> None:
    port = free_port()
    env = os.environ.copy() | {"FIELDSYNC_MAX_UNAUTHENTICATED_BODIES": "1"}
    run = fieldsync(
        "server",
        "run",
        "--data",
        str(server.folder),
        "--port",
        str(port),
        "--body-deadline",
        "1",
        "--body-min-rate",
        "1KiB",
        "--body-rate-grace",
        "1",
        env=env,
    )
    address = ("127.0.0.1", port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).is_success:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and run.poll() is None, run.communicate()
                time.sleep(0.05)
        slow = open_post(address, "/v1/enrol", 4000)
        try:
            slow.sendall(b"F")
            time.sleep(0.3)
            busy = open_post(address, "/v1/batches", 4000)
            try:
                assert read_answer(busy, 4).status == 503  # one unchecked body at a time
            finally:
                busy.close()
            _, took = trickle(slow, b"F" * 4000, 1, every=0.2, give_up=6)
            assert read_answer(slow, 5).status == 408 and took < 2.5
        finally:
            slow.close()
    finally:
        run.terminate()
        run.communicate(timeout=30)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("PATCH", "/v1/blobs/" + "ab" * 32 + "/0", 400, id="unsigned-append"),
        pytest.param("POST", "/v1/nowhere", 404, id="unknown-path"),
        pytest.param("PUT", "/v1/health", 405, id="refused-method"),
    ],
)
def test_an_answer_given_before_the_body_is_read_does_not_keep_its_connection(
    tight: Served, method: str, path: str, status: int
) -> None:
    """Answered before its body was read, the request used to keep its connection for as long
    as the caller trickled that body: uvicorn read and discarded it, each byte putting off
    its keep-alive timeout, with no deadline."""
    sock = open_request(tight.address, method, path, 10_000_000)
    try:
        sock.sendall(b"F" * 100)
        answer = read_answer(sock, 5)
        assert answer.status == status, answer
        assert answer.headers.get("connection") == "close"
        assert closed_by_server(sock)
    finally:
        sock.close()
    assert tight.live.http.get("/v1/health").status_code == 200


def test_an_answer_to_a_whole_body_keeps_its_connection(tight: Served) -> None:
    """Only a body left unread closes: a refusal after the whole body arrived keeps alive."""
    sock = open_request(tight.address, "POST", "/v1/batches", 10)
    try:
        sock.sendall(b"F" * 10)
        answer = read_answer(sock, 5)
        assert 400 <= answer.status < 500, answer
        assert answer.headers.get("connection") != "close"
    finally:
        sock.close()
