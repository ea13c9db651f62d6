"""A fault-injecting TCP proxy for tests: it sits between processes and a real Redis on
127.0.0.1 and can cut, stall and restore their connections, at once or at the moment a client
sends a chosen command (``arm``), so an outage can be placed in any phase of a worker's loop.

- ``cut()``: every connection is closed and new ones are refused (Redis down, or restarting).
- ``stall()``: connections stay open but nothing flows (a network black hole).
- ``restore()``: traffic flows again; new connections are accepted.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from ops.redis_server import free_port


@dataclass
class Trigger:
    """Fire ``action`` ("cut" or "stall") when a client sends bytes containing ``pattern``;
    ``forward``: let that data through first (the command runs, its reply is lost) or drop it."""

    pattern: bytes
    action: str
    forward: bool
    delay: float = 0.0
    fired: threading.Event = field(default_factory=threading.Event)


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._trigger: Trigger | None = None
        self._closed = False

    def __enter__(self) -> FaultProxy:
        self._listen()
        return self

    def __exit__(self, *exc) -> None:
        self._closed = True
        self._flowing.set()
        self._close_all()

    def arm(self, pattern: bytes, action: str = "cut", *, forward: bool = False, delay: float = 0.0) -> Trigger:
        self._trigger = Trigger(pattern, action, forward, delay)
        return self._trigger

    def cut(self) -> None:
        self._flowing.set()
        self._close_all()

    def stall(self) -> None:
        self._flowing.clear()

    def restore(self) -> None:
        self._flowing.set()
        if self._listener is None:
            self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _close_all(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            doomed = list(self._sockets) + ([listener] if listener else [])
            self._sockets.clear()
        _close(*doomed)

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed by cut()
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut() ran meanwhile: this connection is cut too
                    _close(client, server)
                    return
                self._sockets.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        tail = b""
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._lock:
                    self._sockets.difference_update((source, sink))
                _close(source, sink)
                return
            trigger = self._trigger
            hit = from_client and trigger is not None and trigger.pattern in tail + data
            tail = data[-64:]
            if hit:
                self._trigger = None
                if not trigger.forward:
                    self._fire(trigger)
                    continue
            self._flowing.wait()
            try:
                sink.sendall(data)
            except OSError:
                pass
            if hit:
                self._fire(trigger)

    def _fire(self, trigger: Trigger) -> None:
        def act() -> None:
            (self.cut if trigger.action == "cut" else self.stall)()
            trigger.fired.set()

        if trigger.delay:
            threading.Timer(trigger.delay, act).start()
        else:
            act()


def _close(*sockets: socket.socket) -> None:
    """Shut down, then close: a bare close() leaves the connection open while another thread
    is still blocked reading it."""
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
