"""`fasterseg serve` as a process: overload answers 503 with Retry-After, SIGTERM finishes the
requests in flight before exiting."""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request

from tests.serve.conftest import ServerProcess, png_bytes, street


def post(url: str, body: bytes, timeout: float = 120) -> tuple:
    request = urllib.request.Request(url + "/v1/segment", data=body, headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.headers, r.read(), time.monotonic()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read(), time.monotonic()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def test_overload_is_refused_with_retry_after_and_sigterm_drains():
    srv = ServerProcess("--set", "max_queue=1", "--set", "max_batch=1", "--set", "max_wait_ms=0")
    try:
        body = png_bytes(street(512, 1024))
        answers: list = []
        threads = [threading.Thread(target=lambda: answers.append(post(srv.url, body))) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(a[0] for a in answers)
        assert set(statuses) == {200, 503} and statuses.count(200) >= 2, statuses
        refused = next(a for a in answers if a[0] == 503)
        assert refused[1]["Retry-After"] == "1" and b"overloaded" in refused[2]

        # SIGTERM while a large image is being segmented: it is answered, then the server exits.
        result: list = []
        large = png_bytes(street(1000, 1000))
        worker = threading.Thread(target=lambda: result.append(post(srv.url, large)))
        worker.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"fasterseg_in_flight 2" not in get(srv.url + "/metrics"):
            time.sleep(0.02)  # until the request is in (this one counts as the other)
        sent = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        worker.join(120)
        assert result and result[0][0] == 200, result
        assert result[0][3] > sent  # it was answered after the signal, not before
        # Drained, it ends as a SIGTERM'd process does (uvicorn re-raises the signal it caught).
        assert srv.proc.wait(60) in (0, -signal.SIGTERM)
        assert b"Traceback" not in srv.proc.stdout.read()
    finally:
        srv.stop()
