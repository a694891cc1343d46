"""Models shipped inside the package (fp16 safetensors in our model format)."""

from __future__ import annotations

from pathlib import Path

from fasterseg.errors import ModelFileError

BUILTIN_MODEL = "camvid_student.safetensors"


def builtin_model_path() -> Path:
    """The built-in CamVid student (used when `predict`/`eval` get no --model)."""
    path = Path(__file__).resolve().parent / BUILTIN_MODEL
    if not path.is_file():
        raise ModelFileError(f"no built-in model in this installation ({path}); pass --model MODEL.safetensors")
    return path
