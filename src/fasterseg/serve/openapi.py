"""The OpenAPI 3.1 description of the server's HTTP API (``GET /openapi.json``)."""

from __future__ import annotations

from fasterseg.serve.config import ServeConfig

_ERROR = {"description": "refused: a JSON error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_spec(cfg: ServeConfig) -> dict:
    from fasterseg import __version__ as version

    image_body = {"type": "string", "format": "binary"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "fasterseg", "version": version,
                 "description": "Real-time semantic segmentation with a FasterSeg network."},
        "paths": {
            "/v1/segment": {"post": {
                "summary": "Segment one image",
                "parameters": [{"name": "format", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": ["labels", "color", "overlay", "json"], "default": "labels"},
                                "description": "labels: PNG of class ids at the image's size; color: class colours; "
                                               "overlay: colours over the image; json: class fractions and timings"}],
                "requestBody": {"required": True, "description": f"a PNG or JPEG image (at most {cfg.max_body_mb:g} MB, "
                                                                 f"{cfg.max_pixels} pixels)",
                                "content": {"image/png": {"schema": image_body}, "image/jpeg": {"schema": image_body},
                                            "multipart/form-data": {"schema": {"type": "object", "properties": {"image": image_body}}}}},
                "responses": {
                    "200": {"description": "the segmentation",
                            "content": {"image/png": {"schema": image_body},
                                        "application/json": {"schema": {"$ref": "#/components/schemas/Segmentation"}}}},
                    "400": _ERROR, "408": _ERROR, "413": _ERROR, "415": _ERROR,
                    "503": {**_ERROR, "description": "overloaded: retry after the Retry-After header's seconds"},
                }}},
            "/v1/model": {"get": {"summary": "The model card: classes, colours, network, speed, held-out score, provenance",
                                  "responses": {"200": {"description": "the card", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/healthz": {"get": {"summary": "Ready to segment", "responses": {
                "200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object"}}}},
                "503": {**_ERROR, "description": "still warming up"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error", "status"],
                      "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
            "Segmentation": {"type": "object", "properties": {
                "size": {"type": "array", "items": {"type": "integer"}},
                "classes": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "name": {"type": "string"},
                    "color": {"type": "array", "items": {"type": "integer"}}, "fraction": {"type": "number"}}}},
                "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}}}},
        }},
    }
