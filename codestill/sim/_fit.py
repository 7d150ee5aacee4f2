"""Fitting an answer dict to the JSON schema a client asked for (a tool's parameters, a response format).

The simulator knows each role's answer under the record field names of ``codestill.schemas``;
a client may ask for any schema. For each property: the answer's value when it has one (fitted
recursively: nested objects and arrays, ``$ref`` into ``$defs``/``definitions``, ``anyOf``/``oneOf``,
nullable types), else, when required, a default of the property's type (``""``, ``[]``, ``0``,
``false``, ``{}``, the first enum value, ``null`` where null is allowed). Properties the schema does
not list are dropped unless ``additionalProperties`` allows them: what a model does when it sticks
to a schema.
"""

from __future__ import annotations

from typing import Any

import orjson

_MAX_DEPTH = 32  # a recursive schema ($ref to itself) ends in defaults, not a stack overflow


def fit(value: Any, schema: Any, root: Any = None, depth: int = 0) -> Any:
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return value
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        options = schema["enum"]
        return value if value in options else (options[0] if options else value)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        return fit(value, _pick_branch(value, [_resolve(b, root) for b in branches]), root, depth + 1)
    types = _types(schema)
    if value is None:
        return None if "null" in types or not types else default(schema, root, depth)
    kind = _kind_of(value)
    if types and kind not in types and not (kind == "integer" and "number" in types):
        value = _convert(value, types)
        if value is None:
            return default(schema, root, depth)
    if isinstance(value, dict) and ("properties" in schema or "object" in types):
        return _fit_object(value, schema, root, depth)
    if isinstance(value, list):
        items = schema.get("items")
        out = [fit(v, items, root, depth + 1) for v in value] if isinstance(items, dict) else value
        missing = int(schema.get("minItems", 0)) - len(out)
        return out + [default(items or {}, root, depth + 1) for _ in range(max(0, missing))]
    return value


def _fit_object(value: dict, schema: dict, root: Any, depth: int) -> dict:
    props: dict = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    out: dict[str, Any] = {}
    for name, sub in props.items():
        if name in value:
            out[name] = fit(value[name], sub, root, depth + 1)
        elif name in required:
            out[name] = default(sub, root, depth + 1)
    extra = schema.get("additionalProperties")
    if extra is True or isinstance(extra, dict) or (not props and extra is None):
        for name, v in value.items():
            if name not in out:
                out[name] = fit(v, extra, root, depth + 1) if isinstance(extra, dict) else v
    return out


def default(schema: Any, root: Any, depth: int = 0) -> Any:
    """The value a required property gets when the answer has none."""
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return None
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        resolved = [_resolve(b, root) for b in branches]
        if any("null" in _types(b) for b in resolved if isinstance(b, dict)):
            return None
        return default(resolved[0], root, depth + 1)
    types = _types(schema)
    if "null" in types:
        return None
    kind = types[0] if types else ("object" if "properties" in schema else "string")
    if kind == "object":
        return _fit_object({}, schema, root, depth) if depth <= _MAX_DEPTH else {}
    if kind == "array":
        n = int(schema.get("minItems", 0))
        return [default(schema.get("items") or {}, root, depth + 1) for _ in range(n)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        return max(0, int(low) + (1 if "exclusiveMinimum" in schema else 0)) if kind == "integer" else float(low)
    if kind == "boolean":
        return False
    return "x" * int(schema.get("minLength", 0))


def _resolve(schema: Any, root: Any) -> Any:
    """Follow ``$ref`` (local ``#/...`` pointers only) and a single-entry ``allOf``."""
    for _ in range(_MAX_DEPTH):
        if not isinstance(schema, dict):
            return schema
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) else None
            schema = {**{k: v for k, v in schema.items() if k != "$ref"}, **(target or {})}
            continue
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **_resolve(all_of[0], root)}
            continue
        return schema
    return schema


def _types(schema: dict) -> list[str]:
    t = schema.get("type")
    return [t] if isinstance(t, str) else list(t) if isinstance(t, list) else []


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _pick_branch(value: Any, branches: list[Any]) -> Any:
    kind = _kind_of(value)
    typed = [b for b in branches if isinstance(b, dict)]
    for b in typed:
        if kind in _types(b) or (kind == "object" and "properties" in b):
            return b
    non_null = [b for b in typed if "null" not in _types(b)]
    return (non_null or typed or [{}])[0]


def _convert(value: Any, types: list[str]) -> Any:
    """The value in the first of ``types`` it converts to sensibly, or None."""
    for t in types:
        if t == "string":
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return "\n".join(value)
            return orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)
        if t == "array":
            return list(value) if isinstance(value, tuple) else [value]
        if t in ("integer", "number") and isinstance(value, int | float | str):
            try:
                return int(float(value)) if t == "integer" else float(value)
            except ValueError:
                continue
        if t == "boolean" and isinstance(value, int | str):
            return value in (1, "true", "yes") or value is True
    return None
