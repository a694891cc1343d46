"""The configuration reference, generated from the config dataclasses themselves.

Field comments are the trailing ``# ...`` on each field's line in the source, so the reference
can never drift from the code.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

import yaml

from fasterseg.config import to_dict

_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:\s*[^=#]+(?:=[^#]*)?(?:#\s*(.*))?$")


def field_comments(cls: type) -> dict[str, str]:
    comments: dict[str, str] = {}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return comments
    for line in source.splitlines():
        m = _FIELD_LINE.match(line)
        if m and m.group(2):
            comments[m.group(1)] = m.group(2).strip()
    return comments


def _type_name(hint: Any) -> str:
    text = str(hint) if not isinstance(hint, type) else hint.__name__
    return text.replace("typing.", "")


def reference_rows(cls: type, prefix: str = "", defaults: Any = None) -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, comment) for every leaf setting, sections expanded. A section's
    defaults are the field's own (``field(default_factory=...)`` may differ from the section
    class's defaults: the search's phases do), so ``defaults`` carries the instance down."""
    rows = []
    defaults = cls() if defaults is None else defaults
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(reference_rows(type(value), prefix=f"{key}.", defaults=value))
            continue
        default = yaml.safe_dump(to_dict(value), default_flow_style=True, width=10**6).strip().removesuffix("...").strip()
        rows.append((key, _type_name(hints[f.name]), default, comments.get(f.name, "")))
    return rows


def markdown_reference(title: str, cls: type) -> str:
    lines = [f"## {title}", "", f"`{cls.__module__}.{cls.__name__}`", "", "| key | type | default | meaning |",
             "|---|---|---|---|"]
    for key, typ, default, comment in reference_rows(cls):
        cells = [c.replace("|", "\\|") for c in (typ, default, comment)]
        lines.append(f"| `{key}` | `{cells[0]}` | `{cells[1]}` | {cells[2]} |")
    return "\n".join(lines) + "\n"


def default_yaml(cls: type) -> str:
    return yaml.safe_dump(to_dict(cls()), sort_keys=False)
