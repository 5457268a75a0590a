"""A TCP proxy that breaks connections on purpose: cut, reset, or stall them at random moments.

Sits between the device and the broker (netem is not available). TLS passes through untouched, so
the device sees exactly what a bad LTE link does to it: connections that end cleanly (``cut``),
abruptly (``reset``: RST via SO_LINGER 0), or go silent for a while (``stall``: nothing forwarded in
either direction, so keepalives and PUBACKs stop). :meth:`FaultProxy.run_faults` injects them from a
named thread at random intervals; counts are kept per kind. Every socket is closed at :meth:`close`.
"""

from __future__ import annotations

import collections
import random
import select
import socket
import struct
import threading
import time

HOST = "127.0.0.1"


class _Pipe:
    """One client connection and its upstream connection, pumped by one thread."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket):
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.stalled_until = 0.0
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._pump, name="FaultProxyPipe", daemon=True)

    def _pump(self) -> None:
        socks = [self.client, self.upstream]
        try:
            while not self.closed.is_set():
                if time.monotonic() < self.stalled_until:
                    time.sleep(0.02)
                    continue
                readable, _, _ = select.select(socks, [], [], 0.05)
                for s in readable:
                    data = s.recv(64 * 1024)
                    if not data:
                        return
                    other = self.upstream if s is self.client else self.client
                    other.sendall(data)
                    self.proxy.bytes[("up" if s is self.client else "down")] += len(data)
                    if self.proxy.rate:
                        time.sleep(len(data) / self.proxy.rate)
        except OSError:
            return
        finally:
            self.close(reset=False)

    def close(self, reset: bool) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self.client, self.upstream):
            try:
                if reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass


class FaultProxy:
    """Listen on 127.0.0.1:<port>, forward to ``upstream_port``; break connections on request."""

    def __init__(self, upstream_port: int, seed: int = 1, rate: float = 0.0):
        self.upstream_port = upstream_port
        #: Bytes per second each connection may carry (0: unlimited), to make transfers last long enough to hit.
        self.rate = rate
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.random = random.Random(seed)
        self.faults: collections.Counter = collections.Counter()
        self.bytes: collections.Counter = collections.Counter()
        self.connections = 0
        self._pipes: list[_Pipe] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._faults_off = threading.Event()
        self._accept_thread = threading.Thread(target=self._accept, name="FaultProxyAccept", daemon=True)
        self._fault_thread: threading.Thread | None = None
        self._accept_thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                readable, _, _ = select.select([self.listener], [], [], 0.1)
                if not readable:
                    continue
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.upstream_port), timeout=2)
                upstream.settimeout(None)
            except OSError:
                client.close()  # broker down: the device sees a refused/closed connection
                continue
            pipe = _Pipe(self, client, upstream)
            with self._lock:
                self._pipes = [p for p in self._pipes if not p.closed.is_set()] + [pipe]
                self.connections += 1
            pipe.thread.start()

    def live(self) -> list[_Pipe]:
        with self._lock:
            return [p for p in self._pipes if not p.closed.is_set()]

    def inject(self, kind: str, stall_s: float = 2.0) -> bool:
        """Apply one fault to every live connection; False when there was none to break."""
        pipes = self.live()
        if not pipes:
            return False
        for p in pipes:
            if kind == "stall":
                p.stalled_until = time.monotonic() + stall_s
            else:
                p.close(reset=(kind == "reset"))
        self.faults[kind] += 1
        return True

    def run_faults(self, every: tuple[float, float] = (0.3, 1.5), stall: tuple[float, float] = (0.5, 4.0),
                   kinds: tuple[str, ...] = ("cut", "reset", "stall")) -> None:
        """Inject a random fault every ``every`` seconds (uniform) until :meth:`stop_faults`."""
        self._faults_off.clear()

        def loop():
            while not self._faults_off.wait(self.random.uniform(*every)):
                self.inject(self.random.choice(kinds), self.random.uniform(*stall))
        self._fault_thread = threading.Thread(target=loop, name="FaultInjector", daemon=True)
        self._fault_thread.start()

    def stop_faults(self) -> None:
        self._faults_off.set()
        if self._fault_thread is not None:
            self._fault_thread.join(5)
        for p in self.live():
            p.stalled_until = 0.0

    def close(self) -> None:
        self._closing.set()
        self._faults_off.set()
        try:
            self.listener.close()
        except OSError:
            pass
        for p in self.live():
            p.close(reset=False)
        self._accept_thread.join(5)
        if self._fault_thread is not None:
            self._fault_thread.join(5)
