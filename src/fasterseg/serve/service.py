"""The model behind the server: its deploy path, its answers and its card."""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from fasterseg.serve.config import ServeConfig


def automatic_path(device: str) -> tuple[str, str]:
    """(backend, precision) of the fastest deploy path here: on CUDA the optimised PyTorch path in
    fp16; on a CPU OpenVINO (bf16 where the CPU has bf16 units), else ONNX Runtime, else eager."""
    if device.startswith("cuda"):
        return "optimized", "fp16"
    try:
        import openvino as ov

        has_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        return "openvino", "bf16" if has_bf16 else "fp32"
    except ImportError:
        pass
    try:
        import onnxruntime  # noqa: F401

        return "onnxruntime", "fp32"
    except ImportError:
        return "eager", "fp32"


class Service:
    """Loads the model once, runs batches of images, and describes itself (``/v1/model``)."""

    def __init__(self, cfg: ServeConfig):
        from fasterseg.backends import canonical
        from fasterseg.infer.palette import palette_for
        from fasterseg.infer.predictor import Predictor
        from fasterseg.infer.runners import RunnerOptions
        from fasterseg.modelfile import load_model
        from fasterseg.models import resolve_model_name
        from fasterseg.utils.device import resolve_device

        self.cfg = cfg
        self.model_path = resolve_model_name(cfg.model)
        self.model = load_model(self.model_path)
        device = str(resolve_device(cfg.device))
        backend, precision = automatic_path(device) if cfg.backend == "auto" else (canonical(cfg.backend), cfg.precision)
        if precision == "auto":
            precision = automatic_path(device)[1] if cfg.backend == "auto" else "fp32"
        self.backend, self.precision, self.device = backend, precision, device
        options = RunnerOptions(backend=backend, device=device, precision=precision, threads=cfg.threads or None,
                                label_path=cfg.label_path)
        self.predictor = Predictor(self.model, options, batch_size=cfg.max_batch)
        self.palette = palette_for(self.model.meta)
        self.class_names = tuple(self.model.meta.class_names)
        self.measured: dict | None = None  # the inference step's latency, measured at warm-up
        self._card: dict | None = None

    def infer(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Label maps (class ids at each image's size: uint8, uint16 beyond 256 classes), in order."""
        return self.predictor.predict(list(images))

    def warm_up(self, repeats: int = 5) -> None:
        """One image through the path, so the first client does not pay for export and (OpenVINO:
        per input shape) compilation, at ``warmup_size``, else the model's training size; then
        ``repeats`` more, timed, for the card's latency (the inference step: normalising, the
        network, the label map)."""
        import time

        height, width = self.cfg.warmup_size or self.model.meta.train_size or (64, 64)
        image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        self.infer([image])
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            self.infer([image])
            times.append((time.perf_counter() - start) * 1000)
        if times:
            self.measured = {"size": [height, width], "median_ms": round(float(np.median(times)), 3),
                             "runs": repeats, "what": "one image: normalising, the network and the label map, "
                                                     "measured by this server at start"}

    def card(self) -> dict:
        """What ``GET /v1/model`` answers: classes and colours, network, speed, held-out score,
        provenance. Built once (counting MACs builds the network); only the latency measured at
        warm-up is filled in later."""
        if self._card is None:
            self._card = self._static_card()
        return {**self._card, "latency": {"measured": self.measured, "recorded": (self.model.meta.extra or {}).get("latency")}}

    def _static_card(self) -> dict:
        from fasterseg.nets.summary import count_macs

        meta = self.model.meta
        extra = meta.extra or {}
        genotype = meta.genotype
        size = tuple(meta.train_size or (360, 480))
        card = {
            "model": str(self.model_path),
            "deploy_path": {"backend": self.backend, "precision": self.precision, "device": self.device,
                            "label_path": self.cfg.label_path},
            "classes": [{"id": i, "name": n, "color": [int(c) for c in self.palette[i]]} for i, n in enumerate(self.class_names)],
            "network": meta.network,
            "genotype": None if genotype is None else {
                "branches": [f"1/{2 ** (b.end + 3)}: {len(b.ops)} cells" for b in genotype.branches],
                "stem_width": genotype.stem_width, "head_width": genotype.head_width,
                "gmacs_at": {"size": list(size), "gmacs": round(count_macs(genotype, size) / 1e9, 3)}},
            "heldout": {"miou": extra.get("heldout_mIoU"), "note": extra.get("heldout_note")},
            "provenance": {k: extra.get(k) for k in ("dataset", "command", "trained", "git_commit", "train_split",
                                                     "val_split", "epochs", "note") if k in extra},
        }
        return json.loads(json.dumps(card))  # plain JSON types only
