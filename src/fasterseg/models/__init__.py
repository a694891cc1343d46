"""Models shipped inside the package (fp16 safetensors in our model format)."""

from __future__ import annotations

from pathlib import Path

from fasterseg.errors import ModelFileError

BUILTIN_MODEL = "camvid_student.safetensors"
# short names a command line takes wherever it takes a model file
BUILTIN_NAMES = {"camvid": BUILTIN_MODEL}


def builtin_models() -> dict[str, Path]:
    """Short name -> file of each built-in model this installation has."""
    here = Path(__file__).resolve().parent
    return {name: here / file for name, file in BUILTIN_NAMES.items() if (here / file).is_file()}


def builtin_model_path() -> Path:
    """The built-in CamVid student (used when `predict`/`eval` get no --model)."""
    path = Path(__file__).resolve().parent / BUILTIN_MODEL
    if not path.is_file():
        raise ModelFileError(f"no built-in model in this installation ({path}); pass --model MODEL.safetensors")
    return path


def resolve_model_name(value: str) -> str:
    """A built-in model's short name (``camvid``) -> its file; anything else, including a file
    of that name in the current folder, is returned as given."""
    if value in BUILTIN_NAMES and not Path(value).exists():
        path = Path(__file__).resolve().parent / BUILTIN_NAMES[value]
        if not path.is_file():
            raise ModelFileError(f"no built-in model {value!r} in this installation ({path})")
        return str(path)
    return value
