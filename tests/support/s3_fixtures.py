"""Helpers for the S3 tests: fast retries, and proxies between boto3 and the moto server, on 127.0.0.1.

* :class:`CuttingProxy` forwards TCP and cuts a connection after it has sent
  ``cut_after`` bytes of response, to simulate a connection dropped mid-transfer.
* :class:`RecordingProxy` forwards HTTP requests one by one and records them in
  order (method, path, status), so a test can check the order of uploads; it
  can also answer chosen requests with an error instead of forwarding them, or
  change the headers of chosen responses (a HEAD reporting another size or
  checksum than the stored object's).
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

RETRY_ENV = {
    "CALDP_S3_RETRIES": "3",
    "CALDP_S3_RETRY_SECONDS": "0.01",
    "AWS_MAX_ATTEMPTS": "1",
    "CALDP_REFERENCE_RETRIES": "3",
    "CALDP_REFERENCE_RETRY_SECONDS": "0.01",
    "CALDP_ASTROQUERY_RETRIES": "3",
    "CALDP_ASTROQUERY_RETRY_SECONDS": "0.01",
}


def use_fast_retries(monkeypatch) -> None:
    """Tiny retry waits, and botocore's own retries off, so failure tests stay fast."""
    for key, value in RETRY_ENV.items():
        monkeypatch.setenv(key, value)


def s3_client(endpoint: str):
    """A boto3 client on the moto server at ``endpoint``."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint)


def _split(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


class CuttingProxy:
    """TCP proxy to ``target`` that resets connections after ``cut_after`` response bytes.

    Only the first ``cuts`` connections that reach the limit are cut (all if None).
    """

    def __init__(self, target: str, cut_after: int, cuts: int | None = None):
        self.target = _split(target)
        self.cut_after = cut_after
        self.remaining = cuts
        self.cut_count = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _may_cut(self) -> bool:
        with self._lock:
            if self.remaining is not None and self.remaining <= 0:
                return False
            if self.remaining is not None:
                self.remaining -= 1
            self.cut_count += 1
            return True

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return

        def pump_up() -> None:
            try:
                while data := client.recv(65536):
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    upstream.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        threading.Thread(target=pump_up, daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                if sent + len(data) > self.cut_after and self._may_cut():
                    client.sendall(data[: max(0, self.cut_after - sent)])
                    # RST rather than FIN: the client sees a dropped connection.
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            # shutdown() first: a plain close() is deferred while pump_up is in recv().
            for sock in (client, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


Rule = Callable[[str, str], int | None]
Headers = list[tuple[str, str]]
Alter = Callable[[str, str, Headers], Headers]


class RecordingProxy:
    """HTTP reverse proxy to ``target`` recording (method, path, status) in order.

    ``rule(method, path)`` may return an HTTP status to answer with instead of
    forwarding (a simulated S3 failure); ``alter(method, path, headers)`` returns
    the headers to answer with instead of the server's.
    """

    def __init__(self, target: str, rule: Rule | None = None, alter: Alter | None = None):
        self.target = _split(target)
        self.rule = rule
        self.alter = alter
        self.log: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def requests(self, method: str | None = None) -> list[tuple[str, str, int]]:
        with self._lock:
            return [r for r in self.log if method is None or r[0] == method]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                status = proxy.rule(self.command, self.path) if proxy.rule else None
                if status is not None:
                    payload = (
                        b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
                        b"<Message>simulated failure</Message></Error>"
                    )
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    with proxy._lock:
                        proxy.log.append((self.command, self.path, status))
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("expect", "transfer-encoding", "connection")
                }
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(*proxy.target, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    self.send_response(response.status)
                    answer = list(response.getheaders())
                    if proxy.alter is not None:
                        answer = proxy.alter(self.command, self.path, answer)
                    length = None
                    for key, value in answer:
                        if key.lower() == "content-length":
                            length = value
                        elif key.lower() not in ("transfer-encoding", "connection"):
                            self.send_header(key, value)
                    if self.command == "HEAD" and length is not None:
                        self.send_header("Content-Length", length)
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    with proxy._lock:
                        proxy.log.append((self.command, self.path, response.status))
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler


def head_reports(key_suffix: str, *, size_delta: int = 0, checksum: str | None = None) -> Alter:
    """An ``alter`` for :class:`RecordingProxy`: the HEAD of every key ending in
    ``key_suffix`` reports the stored size plus ``size_delta``, and ``checksum`` as its
    SHA-256 when given (a store that kept other bytes than those sent)."""

    def alter(method: str, path: str, headers: Headers) -> Headers:
        if method != "HEAD" or not path.split("?")[0].endswith(key_suffix):
            return headers
        out = []
        for key, value in headers:
            if key.lower() == "content-length":
                value = str(int(value) + size_delta)
            elif key.lower() == "x-amz-checksum-sha256" and checksum is not None:
                value = checksum
            out.append((key, value))
        return out

    return alter
