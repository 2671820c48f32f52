"""A gunicorn worker that reads each request whole before it serves it, so slow clients never hold a process.

gunicorn's sync worker reads a request with blocking calls: a client that sends half a request and waits holds that
process until the worker timeout, and 2 × cores + 1 such clients stop the whole site (three half-sent requests kept
`/healthz` waiting for 60 s under `make run`). This worker serves exactly as the sync worker does, one request at a
time per process, taken from the kernel's queue only while the process is idle (crossfeed/gunicorn_conf.py says why
that order matters), but it *reads* without blocking: an accepted connection joins a selector loop, its bytes are
collected as they come (the body in a spooled temporary file: memory up to SPOOL_MEMORY_BYTES, disk beyond), and the
request is handed to gunicorn's own parser and the application only once its head and its Content-Length body have
arrived. An unfinished request costs a socket and its bytes so far, never a process.

Bounds, per connection: the head must arrive within WEB_CLIENT_TIMEOUT seconds of the accept (408 otherwise) and stay
within gunicorn's header limits (431); a body may pause at most WEB_CLIENT_TIMEOUT seconds between two reads (408) and
be at most WEB_MAX_BODY_BYTES long (413). A chunked body (no Content-Length; Django reads none of it) is handed over
after the head, with the same pause limit on the socket. Plain HTTP only: terminate TLS in the proxy.

Select it with `worker_class = "crossfeed.gunicorn_worker.BufferedSyncWorker"` (crossfeed/gunicorn_conf.py does).
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import tempfile
import time

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

# Seconds a client may take to send its request head, and may pause between two parts of its body.
CLIENT_TIMEOUT_S = float(os.environ.get("WEB_CLIENT_TIMEOUT", "30"))
# Larger bodies are refused with 413 before they are read. The largest we accept are item imports (a 150,000-item
# JSONL file is about 100 MB); Django's own limits (DATA_UPLOAD_MAX_MEMORY_SIZE) still apply to what it parses.
MAX_BODY_BYTES = int(os.environ.get("WEB_MAX_BODY_BYTES", str(1024**3)))
# A body is kept in memory up to this size and spooled to a temporary file beyond it, so that many large uploads in
# flight cost disk, not memory.
SPOOL_MEMORY_BYTES = 1024 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HEAD_END = b"\r\n\r\n"


class BufferedSyncWorker(SyncWorker):
    def init_process(self):
        if self.cfg.is_ssl:
            raise RuntimeError("BufferedSyncWorker reads plain HTTP only: terminate TLS in the proxy in front, or set "
                               "WEB_WORKER_CLASS=sync to let gunicorn do it")
        # gunicorn's limits on the request line and headers, plus the line ends: a longer head is refused unread.
        self.max_head_bytes = (self.cfg.limit_request_line + 2
                               + self.cfg.limit_request_fields * (self.cfg.limit_request_field_size + 2) + 2)
        self.selector = selectors.DefaultSelector()
        self.unfinished: set[_UnfinishedRequest] = set()
        self.accepting = False
        super().init_process()

    def run(self):
        self.selector.register(self.PIPE[0], selectors.EVENT_READ, None)
        for listener in self.sockets:
            listener.setblocking(False)
        self._accept_enabled(True)
        stop_by = None
        while True:
            if not self.alive:
                # Stopping (max_requests reached, reload, TERM): accept nothing new, but serve what clients are still
                # sending for up to graceful_timeout, as the sync worker finishes its one request.
                self._accept_enabled(False)
                stop_by = stop_by or time.monotonic() + self.cfg.graceful_timeout
                if not self.unfinished or time.monotonic() > stop_by:
                    break
            self.notify()
            if not self.is_parent_alive():
                break
            self._accept_enabled(self.alive and len(self.unfinished) < self.cfg.worker_connections)
            for key, _ in self.selector.select(timeout=self._select_timeout()):
                if key.data is None:
                    _drain_pipe(key.fileobj)
                elif isinstance(key.data, _UnfinishedRequest):
                    self._read(key.data)
                else:
                    self._accept(key.data)
            self._expire()
        for request in list(self.unfinished):
            self._forget(request)
            util.close(request.sock)

    # --- connections -----------------------------------------------------------------------------------------

    def _accept_enabled(self, enabled: bool) -> None:
        if enabled == self.accepting:
            return
        for listener in self.sockets:
            if enabled:
                self.selector.register(listener, selectors.EVENT_READ, listener)
            else:
                self.selector.unregister(listener)
        self.accepting = enabled

    def _accept(self, listener) -> None:
        # One connection per wake-up, as the sync worker takes one: an idle process takes the next connection, and a
        # burst spreads over the idle processes instead of queueing behind one of them.
        try:
            sock, address = listener.accept()
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return  # another process took it
            raise
        sock.setblocking(False)
        util.close_on_exec(sock)
        request = _UnfinishedRequest(sock, address, listener, self.max_head_bytes)
        self.unfinished.add(request)
        # A client usually sends its request with the connection, so it is most often complete already.
        if self._read(request):
            self.selector.register(sock, selectors.EVENT_READ, request)
            request.registered = True

    def _read(self, request: _UnfinishedRequest) -> bool:
        """Take what the client has sent; serve the request once whole. True while it is still unfinished."""
        while True:
            try:
                data = request.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                self._close(request)
                return False
            if not data:  # the client went away before finishing its request: there is nobody to answer
                self._close(request)
                return False
            refusal = request.feed(data)
            if refusal:
                self._refuse(request, refusal)
                return False
            if request.complete:
                self._serve(request)
                return False

    def _serve(self, request: _UnfinishedRequest) -> None:
        self._forget(request)
        sock = request.sock
        # Blocking from here on, as gunicorn's parser and response expect, but never waiting on a silent client (a
        # chunked body, a response nobody reads) for longer than the client timeout.
        sock.settimeout(CLIENT_TIMEOUT_S)
        try:
            self.handle(request.listener, _BufferedSocket(sock, request), request.address)
        finally:
            request.discard_body()

    def _refuse(self, request: _UnfinishedRequest, status: str) -> None:
        self._forget(request)
        request.discard_body()
        with contextlib.suppress(OSError):
            request.sock.sendall(f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".encode())
        util.close(request.sock)

    def _close(self, request: _UnfinishedRequest) -> None:
        self._forget(request)
        request.discard_body()
        util.close(request.sock)

    def _forget(self, request: _UnfinishedRequest) -> None:
        self.unfinished.discard(request)
        if request.registered:
            self.selector.unregister(request.sock)
            request.registered = False

    def _expire(self) -> None:
        now = time.monotonic()
        for request in [request for request in self.unfinished if request.deadline() <= now]:
            self._refuse(request, "408 Request Timeout")

    def _select_timeout(self) -> float:
        # Wake at least once a second to tell the arbiter this process is alive (it kills a silent one).
        soonest = min((request.deadline() for request in self.unfinished), default=time.monotonic() + 1.0)
        return max(0.0, min(1.0, soonest - time.monotonic()))


class _UnfinishedRequest:
    """The bytes of one request as they arrive: the head in memory, the body in a spooled temporary file."""

    def __init__(self, sock, address, listener, max_head_bytes: int) -> None:
        self.sock = sock
        self.address = address
        self.listener = listener
        self.max_head_bytes = max_head_bytes
        self.registered = False
        self.accepted_at = self.last_read_at = time.monotonic()
        self.head = bytearray()
        self.body: tempfile.SpooledTemporaryFile[bytes] | None = None  # a file once the head is complete
        self.body_length: int | None = None  # None: unknown (chunked), handed over after the head
        self.received = 0
        self.complete = False
        self.continued = False

    def deadline(self) -> float:
        if self.body is None:
            return self.accepted_at + CLIENT_TIMEOUT_S
        return self.last_read_at + CLIENT_TIMEOUT_S

    def feed(self, data: bytes) -> str:
        """Add bytes; returns the status line of a refusal, or "" (see `complete`)."""
        self.last_read_at = time.monotonic()
        if self.body is None:
            searched = max(0, len(self.head) - len(HEAD_END) + 1)
            self.head += data
            end = self.head.find(HEAD_END, searched)
            if end < 0:
                return "431 Request Header Fields Too Large" if len(self.head) > self.max_head_bytes else ""
            data = bytes(self.head[end + len(HEAD_END):])
            del self.head[end + len(HEAD_END):]
            if len(self.head) > self.max_head_bytes:
                return "431 Request Header Fields Too Large"
            self.body_length, expects_continue = _framing(bytes(self.head))
            if self.body_length is not None and self.body_length > MAX_BODY_BYTES:
                return "413 Content Too Large"
            self.body = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - closed in discard_body
            if expects_continue and self.body_length and not data:
                # The client waits for this before it sends the body (curl does for bodies over 1 KB).
                self.sock.sendall(CONTINUE)
                self.continued = True
        if data:
            assert self.body is not None
            self.body.write(data)
            self.received += len(data)
        self.complete = self.body_length is None or self.received >= self.body_length
        return ""

    def discard_body(self) -> None:
        if self.body is not None:
            self.body.close()


class _BufferedSocket:
    """The client's socket with the request's bytes already read put back in front of it, for gunicorn's parser."""

    def __init__(self, sock: socket.socket, request: _UnfinishedRequest) -> None:
        self._sock = sock
        self._head = memoryview(bytes(request.head))
        self._body = request.body
        if self._body is not None:
            self._body.seek(0)
        self._continued = request.continued

    def recv(self, size: int, *flags) -> bytes:
        if self._head:
            chunk, self._head = self._head[:size], self._head[size:]
            return bytes(chunk)
        if self._body is not None:
            spooled = self._body.read(size)
            if spooled:
                return spooled
            self._body = None
        return self._sock.recv(size, *flags)

    def send(self, data, *flags) -> int:
        # gunicorn answers "Expect: 100-continue" when it parses the head; this worker has answered it already.
        if self._continued and bytes(data) == CONTINUE:
            self._continued = False
            return len(data)
        return self._sock.send(data, *flags)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _framing(head: bytes) -> tuple[int | None, bool]:
    """(Content-Length, or 0 without a body, or None when only gunicorn's parser can tell; Expect: 100-continue)."""
    length: int | None = 0
    lengths = 0
    expects_continue = False
    lines = head.split(b"\r\n")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"transfer-encoding":
            return None, False
        if name == b"content-length":
            lengths += 1
            length = int(value) if value.isdigit() else None
        elif name == b"expect":
            expects_continue = value.lower() == b"100-continue" and lines[0].endswith(b"HTTP/1.1")
    if lengths > 1:
        return None, False  # gunicorn refuses the ambiguity itself
    return length, expects_continue


def _drain_pipe(pipe: int) -> None:
    with contextlib.suppress(OSError):
        os.read(pipe, 4096)
