"""A static file server for benchmarks: HEAD and GET with one `Range: bytes=…` each, the body
sent with sendfile(2) so the server costs little CPU next to the client being measured.

    python3 range_server.py DIR   # prints `listening on http://127.0.0.1:PORT` once bound

Binds 127.0.0.1 only, on a port the kernel picks. Serves regular files directly under DIR
(no listing, no subfolders). Gives Content-Length, ETag (size and mtime), Last-Modified and
Accept-Ranges, answers a satisfiable range with 206 and Content-Range, an unsatisfiable one with
416. Keep-alive (HTTP/1.1), one thread a connection.
"""

import email.utils
import http.server
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1])
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: a line a request would cost the measurement
        pass

    def _open(self):
        name = self.path.split("?", 1)[0].lstrip("/")
        path = os.path.join(ROOT, name)
        if "/" in name or not name or not os.path.isfile(path):
            self.send_error(404)
            return None
        return path

    def _head(self, path, status, start, length, size):
        st = os.stat(path)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{st.st_size:x}-{st.st_mtime_ns:x}"')
        self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + length - 1}/{size}")
        self.end_headers()

    def _span(self, size):
        """(status, start, length) for the request's Range header, or None when unsatisfiable."""
        header = self.headers.get("Range")
        if not header:
            return 200, 0, size
        m = RANGE.match(header.strip())
        if not m or (not m.group(1) and not m.group(2)):
            return 200, 0, size  # not a single byte range: the whole file, as RFC 9110 allows
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:  # a suffix: the last N bytes
            start, end = max(size - int(m.group(2)), 0), size - 1
        if start >= size or end < start:
            return None
        return 206, start, end - start + 1

    def do_HEAD(self):
        path = self._open()
        if path:
            size = os.path.getsize(path)
            self._head(path, 200, 0, size, size)

    def do_GET(self):
        path = self._open()
        if not path:
            return
        size = os.path.getsize(path)
        span = self._span(size)
        if span is None:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, start, length = span
        self._head(path, status, start, length, size)
        self.wfile.flush()
        with open(path, "rb") as f:
            sent = 0
            while sent < length:
                n = os.sendfile(self.connection.fileno(), f.fileno(), start + sent, length - sent)
                if n == 0:
                    break
                sent += n


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
