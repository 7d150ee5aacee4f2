"""Reading a batch's inputs: one JSON object per line, each a ``Task`` (an instruction) or a ``Seed``
(a function, for SelfCodeAlign), checked line by line.

A bad line (not UTF-8, not JSON, not the record, over the size limit, a repeated id) is reported with
its file and line number and passed over, so the good lines still run; ``strict`` callers refuse the
whole file instead. An instruction line may be as short as ``{"instruction": "..."}``: the id is then
made from the text, and the schema version is this codestill's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from codestill.errors import InputError, first_problem
from codestill.schemas import SCHEMA_VERSION, Seed, Task

MAX_LINE_BYTES = 1 << 20  # an instruction or a seed function is a few KiB; 1 MiB is a broken file
Kind = Literal["task", "seed"]



@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str


@dataclass
class Inputs:
    """The good records, in file order, and every bad line with what is wrong with it."""

    path: Path
    items: list[Task | Seed] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    sha256: str = ""

    def messages(self) -> list[str]:
        return [f"{self.path} line {b.line}: {b.problem}" for b in self.bad]


def _record(obj: object, kind: Kind) -> Task | Seed:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, found {type(obj).__name__}")
    if kind == "task" and "schema_version" not in obj:
        text = obj.get("instruction")
        obj = {"id": obj.get("id") or f"input/{hashlib.sha256(str(text).encode()).hexdigest()[:12]}", **obj,
               "schema_version": SCHEMA_VERSION}
    if obj.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"schema_version {obj.get('schema_version')}, this codestill reads {SCHEMA_VERSION}")
    try:
        return Task.model_validate(obj) if kind == "task" else Seed.model_validate(obj)
    except ValidationError as e:
        loc, msg = first_problem(e)
        name = "Task (an instruction)" if kind == "task" else "Seed (codestill seeds mine)"
        raise ValueError(f"not a {name}: {loc or '(top)'}: {msg}") from None


def read_inputs(path: Path, kind: Kind, *, strict: bool = False) -> Inputs:
    """Every line of ``path`` as a ``kind`` record. Raises ``InputError`` when nothing can run."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read the inputs file {path} ({e.strerror}); check the path given to --seeds"
                         ) from None
    out = Inputs(path, sha256=hashlib.sha256(data).hexdigest())
    seen: dict[str, int] = {}
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise ValueError(f"the line is {len(raw)} bytes, over the limit of {MAX_LINE_BYTES}")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"not UTF-8 (byte {e.start}); save the file as UTF-8") from None
            try:
                obj = json.loads(text)
            except ValueError as e:
                raise ValueError(f"not JSON ({e})") from None
            record = _record(obj, kind)
            if record.id in seen:
                raise ValueError(f"id {record.id!r} repeats line {seen[record.id]}; every input needs its own id")
        except ValueError as e:
            out.bad.append(BadLine(n, str(e)))
            continue
        seen[record.id] = n
        out.items.append(record)
    what = "instructions (Task records)" if kind == "task" else "seed functions (Seed records)"
    if not out.items and not out.bad:
        raise InputError(f"the inputs file {path} is empty; give a JSONL of {what}, one per line")
    if strict and out.bad:
        shown = "; ".join(out.messages()[:3]) + (f" (and {len(out.bad) - 3} more)" if len(out.bad) > 3 else "")
        raise InputError(f"{len(out.bad)} bad line(s), nothing started (--strict): {shown}")
    if not out.items:
        raise InputError(f"no usable line in {path}: {out.messages()[0]}; give a JSONL of {what}")
    return out


def shard(items: list[Task | Seed], spec: str | None) -> list[Task | Seed]:
    """The inputs of shard ``i/n`` (``0/4`` .. ``3/4``): every n-th by file order, from the i-th."""
    if not spec:
        return items
    index, count = parse_shard(spec)
    return items[index::count]


def parse_shard(spec: str) -> tuple[int, int]:
    try:
        i, n = (int(p) for p in spec.split("/"))
    except ValueError:
        raise InputError(f"--shard {spec!r} is not i/n; e.g. --shard 0/4 for the first of four") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {spec!r}: i must be in 0..n-1 and n at least 1")
    return i, n
