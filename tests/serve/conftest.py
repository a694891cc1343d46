"""A real server for the tests: the built-in CamVid model on the eager path, in process
(Starlette's TestClient) or as a `fasterseg serve` process on a free 127.0.0.1 port."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install -e '.[serve]')")

REPO = Path(__file__).resolve().parents[2]


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def street(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    """A picture with structure (sky above, road below, noise), so the model answers several classes."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    image[: height // 3] += np.array([120, 150, 190], dtype=np.uint8)
    image[2 * height // 3:] += np.array([70, 60, 80], dtype=np.uint8)
    return image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`fasterseg serve` in a child process, waited for until /healthz answers."""

    def __init__(self, *args: str, timeout: float = 120.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "fasterseg.cli", "serve", "--port", str(self.port),
                                      "--backend", "eager", "--precision", "fp32", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stdout.read().decode()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not become healthy in time")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess("--set", "body_timeout_s=1", "--set", "max_body_mb=1", "--set", "max_pixels=1000000")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client():
    from starlette.testclient import TestClient

    from fasterseg.serve.app import create_app
    from fasterseg.serve.config import ServeConfig

    app = create_app(ServeConfig(backend="eager", precision="fp32", max_wait_ms=1, max_body_mb=1, max_pixels=1_000_000))
    with TestClient(app) as c:
        yield c
