"""The HTTP API against the library: labels, colours, overlays and summaries of the built-in model."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from tests.serve.conftest import png_bytes, street


@pytest.fixture(scope="module")
def library_labels():
    """The library's own label map for any picture, with serve's default path (the independent expectation)."""
    from fasterseg.infer.predictor import Predictor
    from fasterseg.infer.runners import RunnerOptions
    from fasterseg.modelfile import load_model
    from fasterseg.models import builtin_model_path

    predictor = Predictor(load_model(str(builtin_model_path())), RunnerOptions(backend="eager", label_path="auto"))
    return lambda image: predictor.predict([image])[0].astype(np.uint8)


@pytest.fixture(scope="module")
def expected(library_labels):
    """What the library itself answers for the test picture, with the model's palette and metadata."""
    from fasterseg.infer.palette import palette_for
    from fasterseg.modelfile import read_model_meta
    from fasterseg.models import builtin_model_path

    meta = read_model_meta(builtin_model_path())
    image = street()
    return image, library_labels(image), palette_for(meta), meta


def decode(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)))


def test_a_png_body_gets_the_label_map_at_its_size(client, expected):
    image, labels, _, _ = expected
    r = client.post("/v1/segment", content=png_bytes(image), headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert np.array_equal(decode(r.content), labels)
    assert float(r.headers["X-Inference-Ms"]) > 0


def test_jpeg_and_multipart_bodies_are_read_too(client, expected, library_labels):
    image, labels, _, _ = expected
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=95)
    r = client.post("/v1/segment", content=buf.getvalue(), headers={"Content-Type": "image/jpeg"})
    # the JPEG's own pixels (as PIL decodes them) labelled by the library: how much JPEG changes the
    # answers depends on the model, what the server must do with the body does not
    jpeg_pixels = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert r.status_code == 200 and np.array_equal(decode(r.content), library_labels(jpeg_pixels))
    r = client.post("/v1/segment", files={"image": ("street.png", png_bytes(image), "image/png")})
    assert r.status_code == 200 and np.array_equal(decode(r.content), labels)


def test_colour_overlay_and_json_formats(client, expected):
    image, labels, palette, meta = expected
    body, headers = png_bytes(image), {"Content-Type": "image/png"}
    color = decode(client.post("/v1/segment?format=color", content=body, headers=headers).content)
    assert np.array_equal(color, palette[labels])
    over = decode(client.post("/v1/segment?format=overlay", content=body, headers=headers).content).astype(int)
    blend = 0.5 * image.astype(float) + 0.5 * palette[labels].astype(float)
    assert np.abs(over - blend).max() <= 1
    info = client.post("/v1/segment?format=json", content=body, headers=headers).json()
    counts = np.bincount(labels.ravel(), minlength=len(meta.class_names)) / labels.size
    assert info["size"] == list(labels.shape)
    assert {c["name"]: c["fraction"] for c in info["classes"]} == pytest.approx(
        {meta.class_names[i]: f for i, f in enumerate(counts) if f}, abs=1e-6)
    assert set(info["timings_ms"]) == {"decode_ms", "inference_ms", "total_ms"}


def test_model_card_health_openapi_and_page(client, expected):
    _, _, palette, meta = expected
    card = client.get("/v1/model").json()
    assert [c["name"] for c in card["classes"]] == list(meta.class_names)
    assert [c["color"] for c in card["classes"]] == palette.tolist()
    assert card["heldout"]["miou"] == meta.extra["heldout_mIoU"]
    assert card["deploy_path"] == {"backend": "eager", "precision": "fp32", "device": "cpu", "label_path": "auto"}
    assert card["provenance"]["command"].startswith("fasterseg train")
    measured = card["latency"]["measured"]  # timed at start, at the model's training size
    assert measured["size"] == list(meta.train_size) and measured["median_ms"] > 0
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and {"/v1/segment", "/v1/model", "/healthz", "/metrics"} <= set(spec["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_metrics_count_what_happened(client, expected):
    image = expected[0]

    def count(text: str, route: str, status: int) -> int:
        m = re.search(rf'fasterseg_requests_total{{route="{re.escape(route)}",status="{status}"}} (\d+)', text)
        return int(m.group(1)) if m else 0

    before = client.get("/metrics").text
    client.post("/v1/segment", content=png_bytes(image), headers={"Content-Type": "image/png"})
    client.post("/v1/segment", content=b"not an image", headers={"Content-Type": "image/png"})
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert count(text, "/v1/segment", 200) == count(before, "/v1/segment", 200) + 1
    assert count(text, "/v1/segment", 415) == count(before, "/v1/segment", 415) + 1
    assert re.search(r'fasterseg_batch_size_bucket{le="\+Inf"} [1-9]', text)
    assert re.search(r'fasterseg_request_seconds_count{route="/v1/segment"} [1-9]', text)
    assert "# TYPE fasterseg_request_seconds histogram" in text
