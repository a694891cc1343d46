"""Bad input gets a 4xx with a JSON error and the server stays healthy."""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.serve.conftest import png_bytes, street

PNG = {"Content-Type": "image/png"}


def bomb() -> bytes:
    """A PNG of a few kilobytes that decodes to 400 million pixels."""
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("body, headers, status, words", [
    (b"GIF89a not what we take", PNG, 415, "not a PNG or JPEG"),
    (png_bytes(street())[:300], PNG, 400, "truncated"),
    (b"", PNG, 400, "empty"),
    (png_bytes(street()), {"Content-Type": "text/plain"}, 415, "content type"),
    (png_bytes(street()), {"Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type image/png"),
    (b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n", {"Content-Type": "multipart/form-data; boundary=x"},
     400, "no file"),
])
def test_bad_bodies_get_a_json_error(client, body, headers, status, words):
    r = client.post("/v1/segment", content=body, headers=headers)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    assert words in r.json()["error"] and r.json()["status"] == status
    assert client.get("/healthz").status_code == 200


def test_a_decompression_bomb_is_refused_before_decoding(client):
    data = bomb()
    assert len(data) < 100_000
    start = time.perf_counter()
    r = client.post("/v1/segment", content=data, headers=PNG)
    assert r.status_code == 413 and "400000000 pixels" in r.json()["error"]
    assert time.perf_counter() - start < 5  # decoding 400 MB of pixels would take longer and that memory


def test_oversized_bodies_and_unknown_formats(client):
    big = np.random.default_rng(0).integers(0, 255, (800, 800, 3), dtype=np.uint8)  # ~1.9 MB as PNG, limit 1 MB
    r = client.post("/v1/segment", content=png_bytes(big), headers=PNG)
    assert r.status_code == 413 and "max_body_mb" in r.json()["error"]
    r = client.post("/v1/segment?format=svg", content=png_bytes(street()), headers=PNG)
    assert r.status_code == 400 and "labels, color, overlay, json" in r.json()["error"]
    assert client.get("/missing").json() == {"error": "Not Found", "status": 404}


def _raw(port: int, head: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head)
    return s


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
        return r.status == 200


def test_a_slow_sender_gets_408_and_a_vanishing_one_costs_nothing(server):
    head = ("POST /v1/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            "Content-Length: 5000\r\n\r\n").encode()
    slow = _raw(server.port, head + b"\x89PNG")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = slow.recv(4096)  # the server's body_timeout_s is 1 s
        if not chunk:
            break
        answer += chunk
    slow.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 408 " in status_line
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["status"] == 408
    for _ in range(5):  # clients that send half a body and hang up
        _raw(server.port, head + b"\x89PNG\r\n").close()
    assert _healthy(server.url)
    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'fasterseg_errors_total{reason="timeout"} 1' in text
    assert "fasterseg_in_flight 1" in text  # only this request: nothing was left hanging
