"""Names of the deploy paths, precisions and prediction outputs, without torch: the command line
lists them in its choices and help, and must answer --help and usage errors before torch loads."""

BACKENDS: tuple[str, ...] = ("eager", "optimized", "onnxruntime", "tensorrt")
PRECISION_NAMES: tuple[str, ...] = ("fp32", "fp16", "bf16")
OUTPUT_KINDS: tuple[str, ...] = ("labels", "label_ids", "color", "overlay")
