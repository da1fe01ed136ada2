"""The video host's routes: ``GET /files/<token>/output.mp4`` on a signed, unexpired link,
whole or by ``Range``, and the scripted ``DownloadFault``s (a status, a redirect, a page
that is not an MP4, a truncated or huge or slow body).

Imports ``wire`` (the plumbing), ``faults`` and ``clips`` (the synthetic MP4's pieces).
"""

from __future__ import annotations

import contextlib
import re
import time

from .clips import CHUNK, ftyp_header
from .faults import DownloadFault
from .wire import Wire


class CdnRoutes(Wire):
    def _serve_video(self, path: str, query: dict[str, str]) -> None:
        sim = self.sim
        match = re.fullmatch(r"/files/([0-9a-f]{32})/output\.mp4", path)
        token = match.group(1) if match else ""
        try:
            expires = int(query.get("Expires", "0"))
        except ValueError:
            expires = 0
        if not sim.link_is_valid(token, expires, query.get("Signature")):
            return self._send_error(403, "Request has expired or the signature is invalid")
        fault = sim.next_download_fault()  # a refused link does not use up a fault
        if fault is not None:
            return self._download_fault(fault)
        size = sim.video_size(token)
        start, end = 0, size - 1
        status = 200
        rng = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if rng and (rng.group(1) or rng.group(2)):
            if rng.group(1):
                start = int(rng.group(1))
                end = min(int(rng.group(2)), size - 1) if rng.group(2) else size - 1
            else:
                start = max(0, size - int(rng.group(2)))
            if start > end or start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        try:
            self._stream(start, end + 1, token)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _stream(self, start: int, stop: int, token: str = "") -> None:
        for chunk in self.sim.video_chunks(start, stop, token):
            self.wfile.write(chunk)

    def _download_fault(self, fault: DownloadFault) -> None:
        if fault.kind == "status":
            return self._send_error(
                fault.code, "Access denied" if fault.code == 403 else "Not found"
            )
        if fault.kind == "redirect":
            self.send_response(302)
            self.send_header("Location", fault.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if fault.kind == "not_mp4":
            self._send_bytes(200, b"<html><body>Access denied</body></html>", "text/html")
            return None
        if fault.kind == "truncated":
            size = self.sim.video_size()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._stream(0, size // 2)
                self.wfile.flush()
            self._drop()
            return None
        if fault.kind == "slow":
            return self._slow_video(fault.size / 1000)
        if fault.kind == "huge":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(fault.size))
            self.end_headers()
            try:
                self.wfile.write(ftyp_header())
                sent = len(ftyp_header())
                zeros = bytes(CHUNK)
                while sent < fault.size:
                    n = min(CHUNK, fault.size - sent)
                    self.wfile.write(zeros[:n])
                    sent += n
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return None
        return None

    def _slow_video(self, seconds: float) -> None:
        """The whole clip in 20 pieces, ``seconds`` apart in all: a download that takes time."""
        size = self.sim.video_size()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        step = max(1, size // 20)
        try:
            for start in range(0, size, step):
                for chunk in self.sim.video_chunks(start, min(size, start + step)):
                    self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(seconds / 20)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
