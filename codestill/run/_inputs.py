"""Reading seeds: the one reader behind ``generate``, ``evolve`` and ``instruct``.

Two kinds of input, each in every format, told apart by sniffing (no format flag):

==========================  =====================================  =========================================
format                      an instruction (``kind="task"``)       a seed function (``kind="seed"``)
==========================  =====================================  =========================================
bare line                   ``{"instruction": ...}`` (``id``       ``{"code": "def f(...): ..."}`` (``id``
                            optional; any other ``Task`` field)    optional; name, def line and docstring are
                                                                   read off the first top-level function)
codestill record            a ``Task`` with ``schema_version``     a ``Seed`` with ``schema_version``
                            (what codestill writes)                (what ``codestill seeds mine`` writes)
Code Alpaca                 ``{"instruction", "input", "output"}``: the instruction, and the input when it is
                            not empty, joined (``alpaca_text``)    the ``output``'s code (a fenced block is
                            become the Task's instruction          unwrapped); it must define a function
==========================  =====================================  =========================================

A JSONL file is read line by line, so a file may mix them. A folder is a dataset saved with the
``datasets`` library (``Dataset.save_to_disk``; for ``DatasetDict.save_to_disk`` its "train" split or its
only split): each row is read as a line would be, and named "row N" as ``dataset[N]`` (from 0). The
library is imported only then, so nothing heavy loads for a JSONL file.

A Code Alpaca ``output`` is somebody's answer that nobody here has run. For an instruction it becomes
nothing the pipeline sees: not the Task's instruction, not a reference solution, not a test, so neither the
agents, the simulated teacher nor the gates can lean on it. It is kept aside on ``Inputs.candidates``
(task id -> text), unverified, and never silently merged into a record. For a seed function it *is* the
seed: SelfCodeAlign only reads concepts off a seed's code and writes new instructions, whose solutions are
verified on their own, just as it trusts no mined function.

A bad line (not UTF-8, not JSON, none of the formats above, a ``schema_version`` other than this
codestill's, over the size limit, a repeated id) is reported with its file and line number and passed
over, so the good lines still run; ``strict`` callers refuse the whole file instead. A path that cannot
be used at all (missing, unreadable, empty, nothing good in it) is one ``InputError`` naming the cause
and the fix.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import ValidationError

from codestill.errors import InputError, first_problem
from codestill.pysrc import def_line, parse_quietly
from codestill.schemas import SCHEMA_VERSION, Seed, Task

MAX_LINE_BYTES = 1 << 20  # an instruction or a seed function is a few KiB; 1 MiB is a broken file
Kind = Literal["task", "seed"]
R = TypeVar("R", Task, Seed)
T = TypeVar("T")

EXPECTED: dict[Kind, str] = {
    "task": ('instructions: {"instruction": ...} lines (optional "id"), codestill Task records, or Code Alpaca '
             '{"instruction", "input", "output"} lines'),
    "seed": ('seed functions: {"code": "def ..."} lines (optional "id"), codestill Seed records '
             '(codestill seeds mine), or Code Alpaca lines whose "output" defines a function'),
}
_ALPACA = ("input", "output")
_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.S | re.I)


@dataclass(frozen=True)
class BadLine:
    line: int  # the line number (from 1) of a file, the row index (from 0) of a dataset
    problem: str


@dataclass
class Inputs(Generic[R]):
    """The good records, in file order, and every bad line with what is wrong with it.

    ``unit``: "line" for a JSONL file, "row" for a saved dataset. ``candidates``: the unverified Code
    Alpaca outputs of instruction inputs, by task id (kept aside, never part of a record)."""

    path: Path
    items: list[R] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    sha256: str = ""
    unit: str = "line"
    candidates: dict[str, str] = field(default_factory=dict)

    def messages(self) -> list[str]:
        return [f"{self.path} {self.unit} {b.line}: {b.problem}" for b in self.bad]


def alpaca_text(instruction: str, input_: str) -> str:
    """A Code Alpaca instruction with its input, as one readable instruction."""
    instruction, input_ = instruction.strip(), input_.strip()
    return f"{instruction}\n\nInput:\n{input_}" if input_ else instruction


def _id(obj: dict[str, Any], made_from: str) -> Any:
    """The line's own id (a dataset's integer id column as text), else one made from its text."""
    given = obj.get("id")
    if isinstance(given, int) and not isinstance(given, bool):
        return str(given)
    return given or f"input/{hashlib.sha256(made_from.encode()).hexdigest()[:12]}"


def _validated(cls: type[R], obj: dict[str, Any]) -> R:
    try:
        return cls.model_validate(obj)
    except ValidationError as e:
        loc, msg = first_problem(e)
        name = "Task (an instruction)" if cls is Task else "Seed (a seed function)"
        raise ValueError(f"not a {name}: {loc or '(top)'}: {msg}") from None


def _record(obj: dict[str, Any], kind: Kind) -> Task | Seed:
    """A codestill record: its version first, so another codestill's file says so in one line."""
    version = obj.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"written with schema_version {version}, this codestill reads {SCHEMA_VERSION}; use the "
                         "codestill version that wrote it, or export it again with this one")
    if kind == "task" and "instruction" not in obj and "code" in obj:
        raise ValueError("a Seed record (a seed function), not an instruction; give seed functions to "
                         "`codestill instruct` or `codestill generate --pipeline selfalign+solve`")
    if kind == "seed" and "code" not in obj and "instruction" in obj:
        raise ValueError("a Task record (an instruction), not a seed function; give instructions to "
                         "`codestill evolve` or `codestill generate`")
    return _validated(Task, obj) if kind == "task" else _validated(Seed, obj)


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f'"{key}" is a {type(value).__name__}, expected a string')
    return value


def _task(obj: dict[str, Any], candidates: dict[str, str]) -> Task:
    if "instruction" not in obj:
        if "code" in obj:
            raise ValueError("a seed function (code, no instruction); this command reads instructions: give seed "
                             "functions to `codestill instruct` or `codestill generate --pipeline selfalign+solve`")
        raise ValueError(f"no \"instruction\" (keys: {', '.join(sorted(obj)) or 'none'}); expected {EXPECTED['task']}")
    if not any(k in obj for k in _ALPACA):  # bare: any Task field may come with it
        text = _str(obj, "instruction")
        return _validated(Task, {**obj, "id": _id(obj, text), "schema_version": SCHEMA_VERSION})
    # Code Alpaca: its own keys, the Task fields that fit; variants' extras ("text", "prompt") are left out
    text = alpaca_text(_str(obj, "instruction"), _str(obj, "input"))
    fields = {k: v for k, v in obj.items() if k in Task.model_fields and k != "instruction"}
    task = _validated(Task, {"source": "alpaca", **fields, "id": _id(obj, text),
                             "instruction": text, "schema_version": SCHEMA_VERSION})
    output = _str(obj, "output")
    if output.strip():
        candidates[task.id] = output
    return task


def _seed(obj: dict[str, Any]) -> Seed:
    if "code" in obj:
        code, where, fields = _str(obj, "code"), '"code"', {k: v for k, v in obj.items() if k not in ("code", "id")}
    elif "output" in obj:
        fenced = _FENCE.search(_str(obj, "output"))
        code = fenced.group(1) if fenced else _str(obj, "output")
        where, fields = "the Code Alpaca \"output\"", {k: v for k, v in obj.items() if k == "licence"}
    elif "instruction" in obj:
        raise ValueError("an instruction without code; this command reads seed functions, not instructions: give "
                         "instructions to `codestill evolve` or `codestill generate` (a Code Alpaca line needs an "
                         "\"output\" that defines a function)")
    else:
        raise ValueError(f"no \"code\" (keys: {', '.join(sorted(obj)) or 'none'}); expected {EXPECTED['seed']}")
    code = code.strip("\n")
    if not code.strip():
        raise ValueError(f"{where} is empty; a seed is a function's source")
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError) as e:
        raise ValueError(f"{where} is not Python that parses (line {getattr(e, 'lineno', '?')}: "
                         f"{getattr(e, 'msg', e)})") from None
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if fn is None:
        raise ValueError(f"{where} defines no top-level function; a seed is a function's source")
    made = {"id": _id(obj, code), "name": fn.name, "signature": def_line(fn), "docstring": ast.get_docstring(fn) or ""}
    return _validated(Seed, {**made, **fields, "code": code + "\n", "schema_version": SCHEMA_VERSION})


def to_record(obj: object, kind: Kind, candidates: dict[str, str] | None = None) -> Task | Seed:
    """One line's (or row's) object as a ``kind`` record; ``ValueError`` says what is wrong with it."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, found {type(obj).__name__}; expected {EXPECTED[kind]}")
    if "schema_version" in obj:
        return _record(obj, kind)
    return _task(obj, {} if candidates is None else candidates) if kind == "task" else _seed(obj)


def _lines(data: bytes) -> Iterator[tuple[int, Any]]:
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_BYTES:
            yield n, ValueError(f"the line is {len(raw)} bytes, over the limit of {MAX_LINE_BYTES}")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield n, ValueError(f"not UTF-8 (byte {e.start}); save the file as UTF-8")
            continue
        try:
            yield n, json.loads(text)
        except ValueError as e:
            yield n, ValueError(f"not JSON ({e})")


def _is_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _dataset(path: Path) -> Any:
    """The saved dataset at ``path`` (a DatasetDict's "train" split, or its only one)."""
    if not _is_dataset(path):
        raise InputError(f"{path} is a folder, not a dataset saved with `datasets` (no state.json or "
                         "dataset_dict.json in it); give a JSONL file or a folder written by save_to_disk")
    try:
        import datasets
    except ImportError:
        raise InputError(f"{path} is a saved dataset, and reading it needs the `datasets` package; install it "
                         "(pip install datasets) or export the rows to JSONL") from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:  # a missing or damaged arrow file, a state.json of another version: the user's folder
        raise InputError(f"cannot read the saved dataset at {path} ({e}); save it again with "
                         "Dataset.save_to_disk") from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = [str(name) for name in loaded]
        if "train" in loaded:
            return loaded["train"]
        if len(splits) != 1:
            raise InputError(f"the saved DatasetDict at {path} has the splits {', '.join(splits) or '(none)'} and "
                             "no \"train\"; save the split to read with Dataset.save_to_disk")
        return loaded[splits[0]]
    return loaded


def _rows(dataset: Any) -> Iterator[tuple[int, Any]]:
    for n, row in enumerate(dataset):
        row = {k: v for k, v in row.items() if v is not None}  # a column other rows have, missing from this one
        size = len(json.dumps(row, default=str))
        yield n, (ValueError(f"the row is {size} bytes, over the limit of {MAX_LINE_BYTES}")
                  if size > MAX_LINE_BYTES else row)


def _folder_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@overload
def read_inputs(path: Path, kind: Literal["task"], *, strict: bool = False) -> Inputs[Task]: ...
@overload
def read_inputs(path: Path, kind: Literal["seed"], *, strict: bool = False) -> Inputs[Seed]: ...
@overload
def read_inputs(path: Path, kind: Kind, *, strict: bool = False) -> Inputs[Task] | Inputs[Seed]: ...
def read_inputs(path: Path, kind: Kind, *, strict: bool = False) -> Inputs[Any]:
    """Every line of ``path`` (or row of the dataset saved there) as a ``kind`` record. Raises
    ``InputError`` when nothing can run, or, with ``strict``, when any line is bad."""
    what = EXPECTED[kind]
    out: Inputs[Any]
    if path.is_dir():
        dataset = _dataset(path)
        out = Inputs(path, sha256=_folder_sha256(path), unit="row")
        entries: Iterator[tuple[int, Any]] = _rows(dataset)
        empty = f"the saved dataset at {path} has no rows; give {what}"
    else:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"cannot read the inputs file {path}: no seed file there; check the path given to "
                             "--seeds") from None
        except OSError as e:
            raise InputError(f"cannot read the inputs file {path} ({e.strerror}); check the path given to --seeds"
                             ) from None
        if data.lstrip().startswith(b"["):
            _refuse_a_json_array(path, data)
        out = Inputs(path, sha256=hashlib.sha256(data).hexdigest())
        entries = _lines(data)
        empty = f"the inputs file {path} is empty; give a JSONL of {what}, one per line"
    seen: dict[str, int] = {}
    for n, obj in entries:
        try:
            if isinstance(obj, ValueError):
                raise obj
            record = to_record(obj, kind, out.candidates)
            if record.id in seen:
                raise ValueError(f"id {record.id!r} repeats {out.unit} {seen[record.id]}; every input needs its own id")
        except ValueError as e:
            out.bad.append(BadLine(n, str(e)))
            continue
        seen[record.id] = n
        out.items.append(record)
    if not out.items and not out.bad:
        raise InputError(empty)
    if strict and out.bad:
        shown = "; ".join(out.messages()[:3]) + (f" (and {len(out.bad) - 3} more)" if len(out.bad) > 3 else "")
        raise InputError(f"{len(out.bad)} bad {out.unit}(s), nothing started (--strict): {shown}")
    if not out.items:
        raise InputError(f"no usable {out.unit} in {path}: {out.messages()[0]}; give {what}")
    return out


def _refuse_a_json_array(path: Path, data: bytes) -> None:
    """A whole-file JSON array (Code Alpaca's own ``code_alpaca_20k.json``) is refused with the one-line fix."""
    try:
        whole = json.loads(data)
    except ValueError:
        return  # a JSONL file whose first line is broken: its lines say so
    if isinstance(whole, list):
        raise InputError(f"{path} is one JSON array, not JSONL; write one object per line first, e.g. "
                         f"jq -c '.[]' {path} > {path.with_suffix('.jsonl')}")


def shard(items: Sequence[T], spec: str | None) -> list[T]:
    """The inputs of shard ``i/n`` (``0/4`` .. ``3/4``): every n-th by file order, from the i-th."""
    if not spec:
        return list(items)
    index, count = parse_shard(spec)
    return list(items[index::count])


def parse_shard(spec: str) -> tuple[int, int]:
    try:
        i, n = (int(p) for p in spec.split("/"))
    except ValueError:
        raise InputError(f"--shard {spec!r} is not i/n; e.g. --shard 0/4 for the first of four") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {spec!r}: i must be in 0..n-1 and n at least 1")
    return i, n
