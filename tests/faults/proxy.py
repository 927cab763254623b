"""A fault-injecting TCP proxy on loopback, for tests and benchmarks of links that drop.

It forwards bytes between a client and an upstream server and can, by configuration:

- ``reset_every=N``: reset the connection carrying the N-th upstream byte (counted across
  connections), the way a flaky mobile link dies every so often: the bytes before it cross,
  the rest of the piece the client sent with it is lost (counted as sent);
- ``server_sees="end"`` (with a cut): the client gets the reset, but the server sees its side
  end after the bytes that crossed the link, as when a device's link dies far from the server,
  rather than a reset that also discards what already sat unread in the server's socket;
- ``drop_after=N``: reset every connection once it has carried N upstream bytes;
- ``reset_randomly=P``: reset the connection carrying each upstream piece with probability P
  (seeded by ``seed``), resets at no fixed interval;
- ``trickle=B``: forward at most B bytes per 10 ms slice, a slow link;
- ``stall=S``: hold each new connection S seconds before forwarding anything;
- ``lose_responses=N, to=b"POST /v1/batches"``: reset the first N connections whose request
  starts that way just as the server's answer comes back, after the server has acted on it.

It counts the bytes clients sent upstream, so a test can compare them with the payload.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from types import TracebackType


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        reset_every: int | None = None,
        drop_after: int | None = None,
        trickle: int | None = None,
        stall: float = 0.0,
        lose_responses: int = 0,
        to: bytes = b"POST /v1/batches",
        server_sees: str = "reset",
        reset_randomly: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.upstream_port = upstream_port
        self.reset_every = reset_every
        self.drop_after = drop_after
        self.trickle = trickle
        self.stall = stall
        self.lose_responses = lose_responses
        self.lose_to = to
        self.server_sees = server_sees
        self.reset_randomly = reset_randomly
        self._random = random.Random(seed)
        self.responses_lost = 0
        self.upstream_bytes = 0
        self.resets = 0
        self._since_reset = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            if self.stall:
                time.sleep(self.stall)
            carried = [0, 0]  # upstream bytes; 1 once a request to lose the answer of went up
            threading.Thread(
                target=self._pump, args=(client, upstream, True, carried), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, False, carried), daemon=True
            ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, up: bool, carried: list[int]
    ) -> None:
        try:
            while True:
                data = source.recv(self.trickle or 65536)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                crossing = self._cut_after(len(data), carried) if up else None
                if crossing is not None:
                    # The bytes before the cut crossed the link; the rest of this piece did not.
                    with contextlib.suppress(OSError):
                        sink.sendall(data[:crossing])
                    if self.server_sees == "end":
                        self._reset(source)
                        _close(sink)
                    else:
                        self._reset(source, sink)
                    return
                if up and self.lose_to in data:
                    carried[1] = 1
                if not up and carried[1] and self._lose_this_response():
                    self._reset(source, sink)
                    return
                sink.sendall(data)
                if self.trickle:
                    time.sleep(0.01)
        except OSError:
            _close(source)
            _close(sink)

    def _cut_after(self, size: int, carried: list[int]) -> int | None:
        """How many bytes of a piece of ``size`` upstream bytes cross before the link is cut,
        or None if it is not cut. All ``size`` count as sent by the client."""
        with self._lock:
            self.upstream_bytes += size
            carried[0] += size
            self._since_reset += size
            over = []
            if self.reset_every is not None and self._since_reset >= self.reset_every:
                over.append(self._since_reset - self.reset_every)
            if self.drop_after is not None and carried[0] >= self.drop_after:
                over.append(carried[0] - self.drop_after)
            if self.reset_randomly > 0 and self._random.random() < self.reset_randomly:
                over.append(self._random.randrange(size))
            if not over:
                return None
            self._since_reset = 0
            self.resets += 1
            return size - max(over)

    def _lose_this_response(self) -> bool:
        with self._lock:
            if self.responses_lost >= self.lose_responses:
                return False
            self.responses_lost += 1
            return True

    def _reset(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            # SO_LINGER 0: close with a TCP reset, as a dying link looks to both ends. SHUT_RD
            # first wakes the other pump's blocked recv; until it returns, the kernel would
            # hold the socket open and the reset would wait for it.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)
            _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked on it in another thread
    with contextlib.suppress(OSError):
        sock.close()
