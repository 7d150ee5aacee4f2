"""Reading and writing records on disk: one JSON object per record, JSONL for many.

Loading checks ``schema_version`` before anything else, so a file from another codestill fails
with one message saying so, instead of a wall of validation errors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from codestill.errors import RecordError, SchemaVersionError, first_problem
from codestill.schemas import SCHEMA_VERSION

R = TypeVar("R", bound=BaseModel)


def load_record(cls: type[R], data: str | bytes | dict[str, Any], *, where: str = "record") -> R:
    """Parse one record of type ``cls``; ``where`` names it in errors (e.g. ``file.jsonl line 3``)."""
    if not isinstance(data, dict):
        try:
            data = json.loads(data)
        except ValueError as e:
            raise RecordError(f"{where}: not JSON ({e}); the file is damaged or not a {cls.__name__} file") from None
        if not isinstance(data, dict):
            raise RecordError(f"{where}: expected a JSON object, found {type(data).__name__}")
    if "schema_version" in cls.model_fields:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{where}: written with schema_version {version}, this codestill reads {SCHEMA_VERSION}; "
                "use the codestill version that wrote it, or export it again with this one"
            )
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        loc, msg = first_problem(e)
        raise RecordError(f"{where}: not a valid {cls.__name__}: {loc or '(top)'}: {msg}") from None


def read_jsonl(path: Path, cls: type[R]) -> Iterator[R]:
    """Records of a JSONL file, lazily; blank lines are skipped."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise RecordError(f"{path}: cannot read it ({e.strerror}); check the path") from None
    with f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield load_record(cls, line, where=f"{path} line {n}")


def dump_record(record: BaseModel) -> str:
    """One JSONL line (no newline)."""
    return record.model_dump_json()


def write_json(path: Path, record: BaseModel | dict[str, Any]) -> None:
    """Write atomically: a reader never sees a half-written file, a crash leaves the old one."""
    text = record.model_dump_json(indent=2) if isinstance(record, BaseModel) else json.dumps(record, indent=2)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def write_jsonl(path: Path, records: Iterable[BaseModel]) -> int:
    """Write a whole JSONL file atomically; returns how many records."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    n = 0
    try:
        with tmp.open("w") as f:
            for r in records:
                f.write(dump_record(r) + "\n")
                n += 1
        os.replace(tmp, path)
    except BaseException:
        # Nothing half-written: the records come from a generator that may fail half-way.
        tmp.unlink(missing_ok=True)
        raise
    return n


class JsonlAppender:
    """Appends one record per line and flushes it, so an interrupted run loses at most the line being
    written; a torn last line left by an earlier run is closed first so it does not swallow the next.
    The file is opened at the first record: a run that writes nothing leaves nothing behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def _open(self) -> Any:
        torn = False
        if self.path.is_file() and self.path.stat().st_size > 0:
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        if torn:
            self._file.write("\n")
        return self._file

    def write(self, record: BaseModel) -> None:
        f = self._file or self._open()
        f.write(dump_record(record) + "\n")
        f.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_appended(path: Path, cls: type[R]) -> list[R]:
    """The records of a file a ``JsonlAppender`` wrote; a line torn by an interrupted run is passed over
    (its item is simply done again). A missing file has none."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            try:
                out.append(cls.model_validate_json(line))
            except ValidationError:
                continue
    return out
