"""Real network faults between the project and PostgreSQL: a TCP proxy and a listener that never accepts.

`TcpProxy` listens on 127.0.0.1 and forwards every connection to the server with two threads per
connection. It can be

- `pause()`d: nothing is forwarded either way and new connections are accepted but not passed on,
  like a server or middlebox that stops answering while the kernel still acknowledges the bytes;
  `resume()` forwards everything that queued up, so connections that waited carry on;
- `blackhole()`d: every byte is read and thrown away, so nothing is ever answered; `resume()` then
  closes the connections that lost bytes and forwards new ones again;
- `drop_all()`: every open connection is cut at once (a reset), new ones keep working.

`DeafListener` binds and listens but never accepts, and fills its accept queue first, so a
client's connection attempt is never even answered at the TCP level.
"""

from __future__ import annotations

import enum
import socket
import threading
from types import TracebackType

_CHUNK_BYTES = 64 * 1024
_TICK_S = 0.05


class Mode(enum.Enum):
    FORWARD = "forward"
    PAUSED = "paused"
    BLACKHOLE = "blackhole"


class _Link:
    """One client connection and its upstream, pumped by two threads."""

    def __init__(self, proxy: "TcpProxy", client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.swallowed = False  # bytes were thrown away: the stream cannot be resumed
        self.closed = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="proxy-link", daemon=True).start()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            try:
                # SO_LINGER 0: close with a reset, as a cut network or a killed middlebox does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            sock.close()

    def _run(self) -> None:
        try:
            if not self._wait_forwarding():
                return
            self.upstream = socket.create_connection(self.proxy.target, timeout=5)
            self.upstream.settimeout(_TICK_S)
            self.client.settimeout(_TICK_S)
            back = threading.Thread(target=self._pump, args=(self.upstream, self.client), name="proxy-pump", daemon=True)
            back.start()
            self._pump(self.client, self.upstream)
            back.join()
        except OSError:
            pass
        finally:
            self.close()
            self.proxy._forget(self)

    def _wait_forwarding(self) -> bool:
        """A new connection waits (paused) or is swallowed (blackhole) until the proxy forwards."""
        self.client.settimeout(_TICK_S)
        while not self.closed.is_set():
            mode = self.proxy.mode
            if mode is Mode.FORWARD:
                return True
            if mode is Mode.BLACKHOLE:
                self.swallowed = True
                try:
                    if not self.client.recv(_CHUNK_BYTES):
                        return False
                except TimeoutError:
                    pass
            else:
                self.proxy.idle()
        return False

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while not self.closed.is_set():
            mode = self.proxy.mode
            if mode is Mode.PAUSED:
                self.proxy.idle()  # leave the bytes in the kernel's buffers
                continue
            try:
                data = source.recv(_CHUNK_BYTES)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if self.proxy.mode is Mode.BLACKHOLE:
                self.swallowed = True
                continue
            while self.proxy.mode is Mode.PAUSED and not self.closed.is_set():
                self.proxy.idle()
            try:
                sink.sendall(data)
            except OSError:
                return


class TcpProxy:
    """`with TcpProxy(("127.0.0.1", port)) as proxy:` then connect to `proxy.port`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = Mode.FORWARD
        self.changed = threading.Condition()
        self.accepted = 0
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(_TICK_S)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)

    def __enter__(self) -> "TcpProxy":
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._set(Mode.FORWARD)
        self._thread.join()
        self._listener.close()
        self.drop_all()

    def pause(self) -> None:
        """Stop forwarding in both directions; connections stay open, nothing is lost."""
        self._set(Mode.PAUSED)

    def blackhole(self) -> None:
        """Read and discard everything; no connection is ever answered."""
        self._set(Mode.BLACKHOLE)

    def resume(self) -> None:
        """Forward again; connections whose bytes were discarded are cut, since their streams are broken."""
        with self._lock:
            broken = [link for link in self._links if link.swallowed]
        for link in broken:
            link.close()
        self._set(Mode.FORWARD)

    def drop_all(self) -> int:
        """Cut every open connection with a reset; returns how many were cut."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()
        return len(links)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._links)

    def idle(self) -> None:
        """Wait one tick, or less when the mode changes."""
        with self.changed:
            self.changed.wait(_TICK_S)

    def _set(self, mode: Mode) -> None:
        with self.changed:
            self.mode = mode
            self.changed.notify_all()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            link = _Link(self, client)
            with self._lock:
                self._links.add(link)
                self.accepted += 1
            link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)


class DeafListener:
    """A port that is listening but never accepts, with its accept queue already full.

    Linux completes the handshake for up to backlog + 1 connections without the application;
    those are taken by filler sockets here, so a later client's SYN is never answered and its
    connection attempt can only end by its own timeout.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._fillers: list[socket.socket] = []

    def __enter__(self) -> "DeafListener":
        for _ in range(4):  # more than backlog + 1: the queue is surely full
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(filler)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()
