"""A server that is never the bottleneck: just enough of GitFlic's release API for one
upload, whose body it reads and throws away.

It shows the ceiling of a client on a fast link. It hashes nothing: the SHA-256 it
reports for a file is the one the benchmark computed beforehand and passed as
``--sha256 NAME=HEX`` (a file it was not told about is reported without a hash). The
file's size is what arrived between its part header and the closing boundary.

    python benchmarks/sink.py --port 0 --sha256 big.bin=ab12...   # prints "sink at http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import socketserver
import threading
import uuid

PIECE = 1 << 20
RELEASE = re.compile(r"^/rest-api/project/[^/]+/[^/]+/release(?:/(?P<id>[^/?]+)(?P<file>/file)?)?(?:\?.*)?$")
FILENAME = re.compile(rb'filename="((?:[^"\\]|\\.)*)"')


class Sink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, digests: dict[str, str]):
        super().__init__(("127.0.0.1", port), Handler)
        self.digests = digests
        self.releases: list[dict] = []
        self.lock = threading.Lock()


class Handler(socketserver.BaseRequestHandler):
    server: Sink

    def handle(self) -> None:
        self.sock: socket.socket = self.request
        self.buffer = bytearray(PIECE)
        self.pending = b""
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        head = self._read_head()
        if head is None:
            return False
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {
            name.strip().lower(): value.strip()
            for name, value in (line.split(":", 1) for line in header_lines if ":" in line)
        }
        length = int(headers.get("content-length", "0"))
        if headers.get("expect", "").lower() == "100-continue":  # curl waits a second for this before a large body
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        match = RELEASE.match(target)
        if match is None:
            self._discard(length)
            return self._answer(404, {"title": "Not Found", "detail": target})
        if match["file"]:
            return self._answer(200, self._store(match["id"], headers.get("content-type", ""), length))
        body = json.loads(self._take(length) or b"null")
        with self.server.lock:
            if method == "POST":
                release = {
                    "id": str(uuid.uuid4()),
                    "tagName": body["tagName"],
                    "title": body.get("title", ""),
                    "description": body.get("description", ""),
                    "preRelease": False,
                    "attachmentFiles": [],
                }
                self.server.releases.append(release)
                return self._answer(200, release)
            if match["id"]:
                return self._answer(200, self._release(match["id"]))
            listing = {
                "_embedded": {"releaseTagModelList": self.server.releases},
                "page": {"size": 100, "totalElements": len(self.server.releases), "totalPages": 1, "number": 0},
            }
            return self._answer(200, listing)

    def _store(self, release_id: str, content_type: str, length: int) -> dict:
        """Read one file part and keep only its name and size."""
        boundary = content_type.split("boundary=", 1)[1].split(";", 1)[0].strip('"').encode()
        start = self._take(min(length, 4096))
        header_end = start.index(b"\r\n\r\n") + 4
        name = FILENAME.search(start[:header_end]).group(1).replace(b'\\"', b'"').decode()
        self._discard(length - len(start))
        size = length - header_end - len(b"\r\n--" + boundary + b"--\r\n")
        stored = {"uuid": str(uuid.uuid4()), "name": name, "size": size, "link": ""}
        if name in self.server.digests:
            stored["hashSha256"] = self.server.digests[name]
        with self.server.lock:
            release = self._release(release_id)
            release["attachmentFiles"].append(stored)
            return release

    def _release(self, release_id: str) -> dict:
        return next(release for release in self.server.releases if release["id"] == release_id)

    def _read_head(self) -> bytes | None:
        data = self.pending
        while b"\r\n\r\n" not in data:
            piece = self.sock.recv(65536)
            if not piece:
                return None
            data += piece
        head, self.pending = data.split(b"\r\n\r\n", 1)
        return head

    def _take(self, count: int) -> bytes:
        data = self.pending
        while len(data) < count:
            piece = self.sock.recv(count - len(data))
            if not piece:
                raise ConnectionError("the body ended early")
            data += piece
        taken, self.pending = data[:count], data[count:]
        return taken

    def _discard(self, count: int) -> None:
        dropped = min(count, len(self.pending))
        self.pending = self.pending[dropped:]
        count -= dropped
        view = memoryview(self.buffer)
        while count:
            received = self.sock.recv_into(view[: min(count, PIECE)])
            if not received:
                raise ConnectionError("the body ended early")
            count -= received

    def _answer(self, status: int, body: object) -> bool:
        data = json.dumps(body).encode()
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        self.sock.sendall(head.encode() + data)
        return True


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--port", type=int, default=0)
    options.add_argument("--sha256", action="append", default=[], metavar="NAME=HEX")
    args = options.parse_args()
    sink = Sink(args.port, dict(item.split("=", 1) for item in args.sha256))
    print(f"sink at http://127.0.0.1:{sink.server_address[1]}", flush=True)
    sink.serve_forever()


if __name__ == "__main__":
    main()
