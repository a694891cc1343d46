"""Inference and deployment: predictor, palettes, ONNX export, optimised runners, benchmarks."""
