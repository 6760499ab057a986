"""Readable text for any control result: aligned key/value blocks, and tables for collections of records.

The renderer knows no status keys: whatever the daemon adds (components, per-stage latencies, memory
planned against actual, engine backends) shows up without a change here. A mapping of records
(``{"asr": {"state": "ready", ...}, ...}``) or a list of records becomes a table, one row per record;
records nested inside a record become columns (``memory`` → ``memory planned``, ``memory actual``).
"""
from __future__ import annotations

import json
import time

_INDENT = "  "


def render(value: object) -> str:
    """Text for a result: ``ok`` for nothing, the string itself, or blocks and tables."""
    if value is None:
        return "ok"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_mapping(value, 0)) if value else "ok"
    if isinstance(value, list):
        return "\n".join(_collection(value, 0)) if value else "(none)"
    return cell(value)


def label(key: object) -> str:
    return str(key).replace("_", " ")


def cell(value: object) -> str:
    """One value as short text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN: no samples yet
            return "-"
        return f"{value:.0f}" if abs(value) >= 10000 else f"{value:.1f}"
    if isinstance(value, (list, tuple)) and all(_is_scalar(item) for item in value):
        return ", ".join(cell(item) for item in value) if value else "-"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_inline(value: object) -> bool:
    """Shown on one line: scalars and flat lists of scalars."""
    return _is_scalar(value) or (isinstance(value, list) and all(_is_scalar(item) for item in value))


def _is_record(value: object) -> bool:
    return isinstance(value, dict) and bool(value) and all(_is_inline(v) or isinstance(v, dict) for v in value.values())


def _flatten(record: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in record.items():
        name = f"{prefix}{label(key)}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + " "))
        else:
            flat[name] = value
    return flat


def _mapping(mapping: dict, depth: int) -> list[str]:
    pad = _INDENT * depth
    inline = [(label(k), v) for k, v in mapping.items() if _is_inline(v)]
    nested = [(label(k), v) for k, v in mapping.items() if not _is_inline(v)]
    width = max((len(k) for k, _ in inline), default=0)
    lines = [f"{pad}{k.ljust(width)}  {cell(v)}" for k, v in inline]
    for key, value in nested:
        if lines:
            lines.append("")
        lines.append(f"{pad}{key}:")
        if isinstance(value, dict) and value and all(_is_record(v) for v in value.values()):
            lines += _table([{"name": name, **_flatten(v)} for name, v in value.items()], depth + 1)
        elif isinstance(value, dict):
            lines += _mapping(value, depth + 1) if value else [f"{pad}{_INDENT}(none)"]
        else:
            lines += _collection(value, depth + 1)
    return lines


def _collection(items: list, depth: int) -> list[str]:
    if items and all(_is_record(item) for item in items):
        return _table([_flatten(item) for item in items], depth)
    pad = _INDENT * depth
    if not items:
        return [f"{pad}(none)"]
    return [f"{pad}- {cell(item)}" for item in items]


def _table(rows: list[dict[str, object]], depth: int) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [name for name in row if name not in columns]
    text = [[cell(row.get(name)) if name in row else "" for name in columns] for row in rows]
    numeric = [all(_is_number(row.get(name)) for row in rows if name in row) for name in columns]
    widths = [max([len(name)] + [len(line[i]) for line in text]) for i, name in enumerate(columns)]

    def fmt(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return (_INDENT * depth + "  ".join(parts)).rstrip()

    return [fmt(columns)] + [fmt(line) for line in text]


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def event_line(event: dict) -> str:
    """One readable line for a ``watch`` event: its local time, its kind, then its fields."""
    at = event.get("at")
    stamp = time.strftime("%H:%M:%S", time.localtime(at)) if isinstance(at, (int, float)) else "--:--:--"
    fields = " ".join(f"{key}={cell(value)}" for key, value in event.items() if key not in ("at", "kind"))
    return f"{stamp} {event.get('kind', '?'):<9} {fields}".rstrip()
