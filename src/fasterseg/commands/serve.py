"""``fasterseg serve``: the model behind an HTTP API and a web page (needs the ``serve`` extra)."""

from __future__ import annotations

import argparse

NAME = "serve"
HELP = "serve a model over HTTP: POST /v1/segment, a web page with the camera, /metrics (pip install 'fasterseg[serve]')"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model file or built-in name (default: camvid, the built-in CamVid model)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, help="TCP port (default 8000)")
    p.add_argument("--backend", help="deploy path (default auto: the fastest here, e.g. OpenVINO bf16 on CPUs with bf16)")
    p.add_argument("--precision", help="fp32, fp16 or bf16 (default: what goes with the backend)")
    p.add_argument("--config", help="YAML file of serve settings (`fasterseg config serve` prints the defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set max_batch=4 (repeatable)")


def run(args: argparse.Namespace) -> int:
    from fasterseg.config import load_config
    from fasterseg.errors import FasterSegError
    from fasterseg.serve.config import ServeConfig

    overrides = [f"{key}={getattr(args, key)}" for key in ("model", "host", "port", "backend", "precision")
                 if getattr(args, key) is not None] + list(args.overrides)
    cfg = load_config(ServeConfig, args.config, overrides)
    try:
        import uvicorn
    except ImportError:
        raise FasterSegError("fasterseg serve needs the serve extra: pip install 'fasterseg[serve]'") from None
    from fasterseg.serve.app import create_app

    app = create_app(cfg)
    print(f"serving {cfg.model} on http://{cfg.host}:{cfg.port}/ (API: /v1/segment, /v1/model, /metrics, /openapi.json)",
          flush=True)
    # SIGTERM and Ctrl-C: uvicorn stops accepting, finishes the requests in flight, then exits.
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", timeout_graceful_shutdown=30)
    return 0
