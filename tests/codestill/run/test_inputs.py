"""Reading a batch's inputs: every kind of bad line named with its file and line; good lines kept."""

from __future__ import annotations

import json

import pytest

from codestill.run._inputs import MAX_LINE_BYTES, InputError, read_inputs, shard
from codestill.schemas import Seed, Task


def _task(i: int) -> str:
    return Task(id=f"t/{i}", instruction=f"Write a function number {i}.").model_dump_json()


def test_bad_lines_are_named_and_the_good_ones_kept(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [_task(1).encode(), b"{not json", "\u00e9".encode("latin-1") + b'{"x": 1}', json.dumps([1]).encode(),
             b'{"id": "x"}', _task(1).encode(), b'{"instruction": "Add two numbers a and b."}',
             b'{"instruction": "' + b"a" * MAX_LINE_BYTES + b'"}', b"", _task(2).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    got = read_inputs(path, "task")
    assert [i.id for i in got.items][::2] == ["t/1", "t/2"]
    assert len(got.items) == 3 and got.items[1].instruction == "Add two numbers a and b."
    problems = {b.line: b.problem for b in got.bad}
    assert set(problems) == {2, 3, 4, 5, 6, 8}
    assert "not JSON" in problems[2] and "not UTF-8" in problems[3] and "JSON object" in problems[4]
    assert "instruction" in problems[5] and "repeats line 1" in problems[6] and "over the limit" in problems[8]
    assert all(m.startswith(f"{path} line ") for m in got.messages())


def test_strict_refuses_the_whole_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(_task(1) + "\n{oops\n")
    with pytest.raises(InputError, match=r"1 bad line\(s\), nothing started \(--strict\).*line 2"):
        read_inputs(path, "task", strict=True)


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"\n\n", "is empty"),
                                             (b"{oops\n", "no usable line.*line 1: not JSON")])
def test_nothing_to_run_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_inputs(path, "task")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"cannot read the inputs file .*--seeds"):
        read_inputs(tmp_path / "nope.jsonl", "task")


def test_seed_inputs_and_shards(tmp_path):
    seeds = [Seed(id=f"s{i}", name="f", signature="def f(x)", code="def f(x):\n    return x\n") for i in range(7)]
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(s.model_dump_json() + "\n" for s in seeds))
    items = read_inputs(path, "seed").items
    assert [i.id for i in shard(items, "1/3")] == ["s1", "s4"]
    assert sorted(i.id for k in range(3) for i in shard(items, f"{k}/3")) == sorted(s.id for s in seeds)
    with pytest.raises(InputError, match=r"i must be in 0\.\.n-1"):
        shard(items, "3/3")
    with pytest.raises(InputError, match=r"line 1: not a Task \(an instruction\)"):
        read_inputs(path, "task")  # seed functions given to a pipeline that wants instructions
