"""JSON Schemas of the topic values: generation from the record types, and the
compatibility rule for published versions.

The files ``schemas/<topic>.json`` are the published contract (draft 2020-12).
``shorewatch schemas export`` writes them from :mod:`schemas.records`; a ``v1``
file, once published, may only change in ways existing consumers survive:

- a required field may not be removed or renamed, nor become optional in a way
  that removes it from ``required``;
- a field's type may not change (widening to also allow ``null`` is a change too:
  consumers that read the field would break);
- new optional fields and new enum values on producer-only fields are allowed.

:func:`breaking_changes` compares an old and a new schema and lists every breach.

An incompatible change takes a new topic version (``v2``), published beside the old
one. Internal topics (read only by Shorewatch's own agents, e.g. ``ais.fixes``) are
the exception: a worker reads only the version it writes, so the old version and its
schema leave together when the new one comes.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

SCHEMA_DIR = Path(__file__).resolve().parent
PUBLISHED_DIR = SCHEMA_DIR / "published"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _clean_descriptions(node: Any) -> Any:
    """``node`` with every ``description`` dedented (``inspect.cleandoc``): msgspec
    releases differ in whether they dedent docstrings, the schema files must not."""
    if isinstance(node, dict):
        return {
            k: inspect.cleandoc(v)
            if k == "description" and isinstance(v, str)
            else _clean_descriptions(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_clean_descriptions(v) for v in node]
    return node


def generate(record_type: type, topic_name: str) -> dict[str, Any]:
    """The JSON Schema of a record type, with ``$id`` and ``$schema`` set."""
    body = _clean_descriptions(msgspec.json.schema(record_type))
    return {
        "$schema": DRAFT,
        "$id": f"https://shorewatch.org/schemas/{topic_name}.json",
        "title": topic_name,
        **body,
    }


def load(schema_file: str) -> dict[str, Any]:
    """A published schema by file name."""
    return json.loads((SCHEMA_DIR / schema_file).read_text())


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema.get("$defs", {})[name]
    return node


def _types(schema: dict[str, Any], node: dict[str, Any]) -> set[str]:
    node = _resolve(schema, node)
    if "anyOf" in node:
        out: set[str] = set()
        for sub in node["anyOf"]:
            out |= _types(schema, sub)
        return out
    if "type" in node:
        t = node["type"]
        return set(t) if isinstance(t, list) else {t}
    if "enum" in node or "const" in node:
        return {"enum"}
    if "properties" in node:
        return {"object"}
    return {"any"}


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """Every change from ``old`` to ``new`` that breaks a consumer of ``old``.

    >>> a = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    >>> breaking_changes(a, {"type": "object", "properties": {}, "required": []})
    ['x: required field removed']
    """
    return _compare(old, old, new, new, path)


def _compare(
    old_root: dict[str, Any],
    old: dict[str, Any],
    new_root: dict[str, Any],
    new: dict[str, Any],
    path: str,
) -> list[str]:
    old = _resolve(old_root, old)
    new = _resolve(new_root, new)
    problems: list[str] = []
    old_props = old.get("properties", {})
    new_props = new.get("properties", {})
    new_required = set(new.get("required", []))
    for name in old.get("required", []):
        where = f"{path}{name}"
        if name not in new_props:
            problems.append(f"{where}: required field removed")
            continue
        if name not in new_required:
            problems.append(f"{where}: required field became optional")
    for name, old_node in old_props.items():
        if name not in new_props:
            if name not in old.get("required", []):
                problems.append(f"{path}{name}: field removed")
            continue
        old_t = _types(old_root, old_node)
        new_t = _types(new_root, new_props[name])
        if old_t != new_t and not ({"any"} & old_t):
            problems.append(f"{path}{name}: type changed from {sorted(old_t)} to {sorted(new_t)}")
        o = _resolve(old_root, old_node)
        n = _resolve(new_root, new_props[name])
        if "properties" in o and "properties" in n:
            problems += _compare(old_root, o, new_root, n, f"{path}{name}.")
        for key in ("items",):
            if key in o and key in n:
                problems += _compare(old_root, o[key], new_root, n[key], f"{path}{name}[].")
        for sub in ("anyOf",):
            if sub in o and sub in n:
                olds = [
                    _resolve(old_root, x) for x in o[sub] if "properties" in _resolve(old_root, x)
                ]
                news = [
                    _resolve(new_root, x) for x in n[sub] if "properties" in _resolve(new_root, x)
                ]
                for a, b in zip(olds, news, strict=False):
                    problems += _compare(old_root, a, new_root, b, f"{path}{name}.")
    for name in new_required - set(old.get("required", [])):
        problems.append(f"{path}{name}: new required field (old producers' records lack it)")
    return problems


def export(specs: Iterable[Any], check_only: bool = False) -> list[str]:
    """Write (or with ``check_only`` compare) the schema file of every topic spec.

    :param specs: topic specs with ``name``, ``value_type`` and ``schema_file``
        (:data:`pipeline.topics.ALL`)
    :returns: the files that differ from the record types
    """
    differ: list[str] = []
    for spec in specs:
        text = json.dumps(generate(spec.value_type, spec.name), indent=2, sort_keys=True) + "\n"
        path = SCHEMA_DIR / spec.schema_file
        if not path.exists() or path.read_text() != text:
            differ.append(spec.schema_file)
            if not check_only:
                path.write_text(text)
    return differ


def check_published() -> list[str]:
    """Breaking changes of the current schema files against ``schemas/published/``.

    ``published/`` holds each schema as it was when its version was released;
    it changes only when a new topic version (``v2``) is published.
    """
    problems: list[str] = []
    for old_path in sorted(PUBLISHED_DIR.glob("*.json")):
        new_path = SCHEMA_DIR / old_path.name
        if not new_path.exists():
            problems.append(f"{old_path.name}: published schema deleted")
            continue
        old = json.loads(old_path.read_text())
        new = json.loads(new_path.read_text())
        problems += [f"{old_path.name}: {p}" for p in breaking_changes(old, new)]
    return problems
