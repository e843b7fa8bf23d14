"""Writes tflstm/tflite_layout.json: the field layout of every table of the TFLite schema.

`tflstm.flatbuf.verify` walks a `.tflite` flatbuffer with this table, bounds-checking
every field, so a damaged or hostile file is refused before native code reads it.
The layout is read off the Python schema module ai-edge-litert ships (its builder
functions give each field's slot and width, its accessors what an offset points
to); `tests/test_flatbuf.py` regenerates it and compares, so it cannot go stale.

Usage (main venv): python tools/tflite_layout.py [OUT.json]
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

_WIDTHS = {"Bool": 1, "Int8": 1, "Uint8": 1, "Int16": 2, "Uint16": 2, "Int32": 4, "Uint32": 4,
           "Float32": 4, "Int64": 8, "Uint64": 8, "Float64": 8}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tflstm" / "tflite_layout.json"


def _functions(source: str) -> dict[str, str]:
    """Top-level function name -> body text."""
    parts = re.split(r"\ndef ", source)
    return {part.split("(", 1)[0]: part for part in parts[1:]}


def _classes(source: str) -> dict[str, str]:
    """Class name -> body text."""
    parts = re.split(r"\nclass ", source)
    return {part.split("(", 1)[0]: part for part in parts[1:]}


def _accessor(class_body: str, field: str) -> str:
    match = re.search(rf"\n    def {field}\(self[^)]*\):\n(.*?)(?=\n    #|\n    def |\Z)", class_body, re.S)
    if match is None:
        raise ValueError(f"no accessor {field}")
    return match.group(1)


def layout(schema: Any) -> dict[str, Any]:
    """{"root": "Model", "tables": {name: {slot: kind}}, "unions": {name: {code: table}}}.

    Kinds: "s<width>" scalar, "str" string, "v<width>" vector of scalars, "vstr"
    vector of strings, "vt:<table>" vector of tables, "t:<table>" table, "u:<union>"
    union value (its type is the scalar in the slot before).
    """
    source = inspect.getsource(schema)
    functions, classes = _functions(source), _classes(source)
    unions = {}
    for name, body in classes.items():
        if f"{name}Creator" in functions:
            unions[name] = {int(code): member for member, code in re.findall(r"\n    (\w+) = (\d+)", body) if member != "NONE"}
    tables: dict[str, dict[str, str]] = {}
    for function in functions:
        if not function.endswith("Start") or function[: -len("Start")] not in classes:
            continue
        table = function[: -len("Start")]
        if f"def {table}End" not in source and f"{table}End" not in functions:
            continue
        fields: dict[str, str] = {}
        for add, body in functions.items():
            match = re.match(rf"{table}Add(\w+)$", add)
            if match is None:
                continue
            field = match.group(1)
            slot_match = re.search(r"Prepend(\w+)Slot\((\d+),", body)
            kind_name, slot = slot_match.group(1), slot_match.group(2)
            if kind_name in _WIDTHS:
                fields[slot] = f"s{_WIDTHS[kind_name]}"
                continue
            if kind_name != "UOffsetTRelative":
                raise ValueError(f"{table}.{field}: unexpected slot kind {kind_name}")
            accessor = _accessor(classes[table], field)
            if "self._tab.Union(" in accessor:
                creator = re.search(r"(\w+)Creator\(self\.\w+Type", classes.get(f"{table}T", ""))
                target = re.search(rf"{field[0].lower() + field[1:]} = (\w+)Creator", classes.get(f"{table}T", ""))
                union = (target or creator).group(1)
                fields[slot] = f"u:{union}"
            elif "self._tab.Vector(" in accessor:
                if "Indirect(" in accessor:
                    fields[slot] = "vt:" + re.search(r"obj = (\w+)\(\)", accessor).group(1)
                elif "self._tab.String(" in accessor:
                    fields[slot] = "vstr"
                else:
                    start = functions.get(f"{table}Start{field}Vector", "")
                    width = re.search(r"StartVector\((\d+),", start).group(1)
                    fields[slot] = f"v{width}"
            elif "self._tab.String(" in accessor:
                fields[slot] = "str"
            elif "Indirect(" in accessor:
                fields[slot] = "t:" + re.search(r"obj = (\w+)\(\)", accessor).group(1)
            else:
                raise ValueError(f"{table}.{field}: cannot tell what the offset points to")
        tables[table] = dict(sorted(fields.items(), key=lambda item: int(item[0])))
    return {"root": "Model", "tables": dict(sorted(tables.items())), "unions": dict(sorted(unions.items()))}


def main(out: str | None = None) -> None:
    from ai_edge_litert import schema_py_generated

    path = Path(out) if out else DEFAULT_OUT
    path.write_text(json.dumps(layout(schema_py_generated), indent=0, sort_keys=False) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
