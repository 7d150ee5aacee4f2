"""Two runs side by side, aligned by the path they took through the graph, and where they first diverge.

Each run is the sequence of its node runs (``branch:code`` for a node inside a subgraph node), in
the order they ran. The two sequences are aligned by node name (difflib's matcher: the longest
common runs first), then each aligned pair compares what the node wrote into the state, leaving out
what differs between any two runs (timings, token counts, random artefact keys). The first row that
is on one side only, or whose writes differ, is where the runs diverge.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from codestill.traces import Span, SpanTree

_VOLATILE_KEYS = re.compile(r".*(_key|_s|_at|_id)$|usage|started|thread_id|id|run_id|stdout|stderr")
_HEX = re.compile(r"[0-9a-f]{16,}")


@dataclass
class Step:
    span: Span
    node: str
    digest: dict[str, str]  # state key -> its normalised value, as JSON


@dataclass
class Row:
    a: Step | None
    b: Step | None
    differs: list[str]  # state keys written differently; ["(path)"] when only one side has the node

    @property
    def diverges(self) -> bool:
        return bool(self.differs)


@dataclass
class Comparison:
    rows: list[Row]
    first: int | None  # index of the first diverging row


def _normal(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in sorted(value.items()) if not _VOLATILE_KEYS.fullmatch(str(k))}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, str):
        return _HEX.sub("…", value)
    return value


def _steps(span: Span, prefix: str = "") -> list[Step]:
    out: list[Step] = []
    for child in sorted(span.children, key=lambda s: s.start):
        if child.kind == "node":
            inner = _steps(child, f"{prefix}{child.name}:")
            writes = child.outputs if isinstance(child.outputs, Mapping) else {}
            if not inner:
                digest = {str(k): orjson.dumps(_normal(v), option=orjson.OPT_SORT_KEYS, default=repr).decode()
                          for k, v in writes.items() if not _VOLATILE_KEYS.fullmatch(str(k))}
                out.append(Step(child, f"{prefix}{child.name}", digest))
            out.extend(inner)
        else:
            out.extend(_steps(child, prefix))
    return out


def path_of(tree: SpanTree) -> list[Step]:
    """The node runs of a run in the order they ran; subgraph nodes by their inner nodes."""
    return _steps(tree.root)


def compare(a: SpanTree, b: SpanTree) -> Comparison:
    left, right = path_of(a), path_of(b)
    matcher = difflib.SequenceMatcher(a=[s.node for s in left], b=[s.node for s in right], autojunk=False)
    rows: list[Row] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for x, y in zip(left[i1:i2], right[j1:j2], strict=True):
                keys = sorted(set(x.digest) | set(y.digest))
                rows.append(Row(x, y, [k for k in keys if x.digest.get(k) != y.digest.get(k)]))
        else:
            rows += [Row(x, None, ["(path)"]) for x in left[i1:i2]]
            rows += [Row(None, y, ["(path)"]) for y in right[j1:j2]]
    first = next((i for i, r in enumerate(rows) if r.diverges), None)
    return Comparison(rows, first)
