"""The ASGI application: the API, the metrics, the OpenAPI description and the page.

``POST /v1/segment`` takes a PNG or JPEG as the body (or as the one file of a multipart form) and
answers a PNG of class ids at the image's size, or ``?format=color|overlay|json``;
``GET /v1/model`` the model card, ``GET /healthz``, ``GET /metrics`` (Prometheus),
``GET /openapi.json``, ``/`` the page, ``/v1/stream`` a WebSocket of frames in, overlays out.
Every refusal is a JSON ``{"error": ..., "status": ...}`` with a 4xx (or 503 when overloaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from importlib import resources

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from fasterseg.serve.batching import Batcher, QueueFull
from fasterseg.serve.config import ServeConfig
from fasterseg.serve.decode import IMAGE_TYPES, BadRequest, decode_image, encode_png
from fasterseg.serve.metrics import Metrics
from fasterseg.serve.openapi import openapi_spec

FORMATS = ("labels", "color", "overlay", "json")
ROUTES = ("/", "/v1/segment", "/v1/model", "/healthz", "/metrics", "/openapi.json", "/v1/stream")
RETRY_AFTER_S = 1


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


class _Metered:
    """ASGI middleware: every HTTP answer counted by route and status, with its duration."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        route = path if path in ROUTES else "/static" if path.startswith("/static/") else "other"
        start, status = time.perf_counter(), [499]  # 499: the client left before an answer began
        self.metrics.in_flight += 1

        async def counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            self.metrics.in_flight -= 1
            self.metrics.observe_request(route, status[0], time.perf_counter() - start)


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (413) or a sender slower than ``timeout`` (408)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"the body is {int(declared)} bytes, more than the server's limit of {limit} (max_body_mb)")
    chunks: list[bytes] = []
    size = 0

    async def consume() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(413, f"the body is more than the server's limit of {limit} bytes (max_body_mb)")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(consume(), timeout)
    except asyncio.TimeoutError:
        raise BadRequest(408, f"the body took longer than {timeout:g} s to arrive (body_timeout_s)") from None
    return b"".join(chunks)


async def _image_bytes(request: Request, cfg: ServeConfig) -> bytes:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (*IMAGE_TYPES, "multipart/form-data"):
        raise BadRequest(415, f"content type {kind or '(none)'!r}: send the image as the body with Content-Type "
                              "image/png or image/jpeg, or as the file of a multipart/form-data form")
    body = await _read_body(request, cfg.max_body_bytes, cfg.body_timeout_s)
    if kind != "multipart/form-data":
        return body

    async def replay():
        yield body

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=1, max_fields=8).parse()
    except Exception as exc:  # noqa: BLE001 - a malformed form is the client's
        raise BadRequest(400, f"cannot read the multipart form: {exc}") from None
    files = [value for _, value in form.multi_items() if hasattr(value, "read")]
    if not files:
        raise BadRequest(400, "the multipart form has no file: send the image as a file field (e.g. curl -F image=@photo.jpg)")
    return await files[0].read()


def _picture(fmt: str, image: np.ndarray, labels: np.ndarray, palette: np.ndarray, alpha: float) -> np.ndarray:
    """What a format shows: the class ids, their colours, or the colours over the image."""
    from fasterseg.infer.palette import colorize, overlay

    if fmt == "labels":
        return labels
    color = colorize(labels, palette)
    return color if fmt == "color" else overlay(image, color, alpha)


def _render(fmt: str, image: np.ndarray, labels: np.ndarray, palette: np.ndarray, alpha: float) -> bytes:
    return encode_png(_picture(fmt, image, labels, palette, alpha))


def _summary(labels: np.ndarray, names, palette) -> list[dict]:
    counts = np.bincount(labels.ravel(), minlength=len(names))
    total = max(int(labels.size), 1)
    return [{"id": i, "name": names[i], "color": [int(c) for c in palette[i]], "fraction": round(int(n) / total, 6)}
            for i, n in enumerate(counts) if n]


def create_app(cfg: ServeConfig, service=None) -> Starlette:
    """The application for ``cfg``; ``service`` (default: :class:`~fasterseg.serve.service.Service`
    of ``cfg``) is what runs the model."""
    if service is None:
        from fasterseg.serve.service import Service

        service = Service(cfg)
    metrics = Metrics()
    batcher = Batcher(service.infer, cfg.max_batch, cfg.max_wait_ms / 1000, cfg.max_queue, metrics)
    state = {"ready": False}
    static = resources.files("fasterseg.serve") / "static"

    async def segment(request: Request) -> Response:
        fmt = request.query_params.get("format", "labels")
        if fmt not in FORMATS:
            return _error(400, f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
        t0 = time.perf_counter()
        try:
            data = await _image_bytes(request, cfg)
            image = await asyncio.to_thread(decode_image, data, cfg.max_pixels)
        except BadRequest as exc:
            return _error(exc.status, str(exc))
        except ClientDisconnect:
            return Response(status_code=499)
        t1 = time.perf_counter()
        try:
            labels = await batcher.submit(image)
        except QueueFull as exc:
            return _error(503, f"overloaded: {exc}; retry later", {"Retry-After": str(RETRY_AFTER_S)})
        except Exception as exc:  # noqa: BLE001 - the deploy path failed on this image: say so, keep serving
            return _error(500, f"inference failed: {type(exc).__name__}: {exc}")
        t2 = time.perf_counter()
        timings = {"decode_ms": (t1 - t0) * 1000, "inference_ms": (t2 - t1) * 1000}
        if fmt == "json":
            body = {"size": list(labels.shape), "classes": _summary(labels, service.class_names, service.palette),
                    "timings_ms": {**{k: round(v, 3) for k, v in timings.items()},
                                   "total_ms": round((time.perf_counter() - t0) * 1000, 3)}}
            return JSONResponse(body)
        png = await asyncio.to_thread(_render, fmt, image, labels, service.palette, cfg.alpha)
        headers = {"X-Inference-Ms": f"{timings['inference_ms']:.3f}",
                   "X-Total-Ms": f"{(time.perf_counter() - t0) * 1000:.3f}"}
        return Response(png, media_type="image/png", headers=headers)

    async def model_card(request: Request) -> Response:
        return JSONResponse(service.card())

    async def healthz(request: Request) -> Response:
        if not state["ready"]:
            return _error(503, "starting: the model is warming up", {"Retry-After": str(RETRY_AFTER_S)})
        return JSONResponse({"status": "ok", "queue": metrics.queue_depth})

    async def metrics_text(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_spec(cfg))

    async def page(request: Request) -> Response:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    async def stream(ws: WebSocket) -> None:
        """Binary PNG/JPEG frames in; per frame a JPEG of ``?format=overlay|color`` out (or a JSON error)."""
        import cv2

        fmt = ws.query_params.get("format", "overlay")
        await ws.accept()
        if fmt not in ("overlay", "color"):
            await ws.send_json({"error": f"format {fmt!r}: the stream answers overlay or color", "status": 400})
            await ws.close(code=1003)
            return
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                if data is None:
                    await ws.send_json({"error": "send frames as binary PNG or JPEG messages", "status": 415})
                    continue
                if len(data) > cfg.max_body_bytes:
                    await ws.send_json({"error": f"frame of {len(data)} bytes is over the limit (max_body_mb)", "status": 413})
                    continue
                try:
                    image = await asyncio.to_thread(decode_image, data, cfg.max_pixels)
                    labels = await batcher.submit(image)
                except BadRequest as exc:
                    await ws.send_json({"error": str(exc), "status": exc.status})
                    continue
                except QueueFull as exc:
                    await ws.send_json({"error": f"overloaded: {exc}", "status": 503})
                    continue

                def jpeg() -> bytes:  # frames go back as JPEG: smaller and faster to encode than PNG
                    out = _picture(fmt, image, labels, service.palette, cfg.alpha)
                    return cv2.imencode(".jpg", np.ascontiguousarray(out[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()

                await ws.send_bytes(await asyncio.to_thread(jpeg))
        except WebSocketDisconnect:
            return

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, exc.detail if isinstance(exc.detail, str) else str(exc.detail))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        await asyncio.to_thread(service.warm_up)
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            await batcher.stop()

    app = Starlette(
        routes=[Route("/", page), Route("/v1/segment", segment, methods=["POST"]), Route("/v1/model", model_card),
                Route("/healthz", healthz), Route("/metrics", metrics_text), Route("/openapi.json", openapi),
                WebSocketRoute("/v1/stream", stream), Mount("/static", StaticFiles(directory=str(static)), name="static")],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.batcher = batcher
    app.add_middleware(_Metered, metrics=metrics)
    return app
