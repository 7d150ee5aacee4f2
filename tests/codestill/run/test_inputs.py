"""Reading seeds (``codestill.run._inputs``): every format, every kind of bad line named with its file and
line (or dataset row), the good ones kept. The commands reading them: ``test_seed_formats``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codestill.run._inputs import MAX_LINE_BYTES, InputError, alpaca_text, read_inputs, shard
from codestill.schemas import Seed, Task

CODE = 'def scale(xs: list[int], k: int = 2) -> list[int]:\n    \"\"\"Each of xs times k.\"\"\"\n    return [x * k for x in xs]\n'


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
    with pytest.raises(InputError, match=r"line 1: a Seed record \(a seed function\), not an instruction"):
        read_inputs(path, "task")  # seed functions given to a pipeline that wants instructions


def _jsonl(path: Path, *objs: object) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


def test_every_instruction_format_in_one_file(tmp_path):
    path = _jsonl(tmp_path / "in.jsonl",
                  {"instruction": "Add a and b."},
                  _task(1),
                  {"instruction": "Sort the list.", "input": "[3, 1, 2]", "output": "sorted([3, 1, 2])", "text": "x"},
                  {"id": "a/2", "instruction": "Reverse a string.", "input": "", "output": ""},
                  {**json.loads(_task(2)), "schema_version": 0},
                  {"code": CODE},
                  {"id": "q", "question": "What?"},
                  {"instruction": "Halve it.", "input": 3, "output": "x"},
                  {"id": "", "instruction": "Double it."})
    got = read_inputs(path, "task")
    assert [t.instruction for t in got.items] == ["Add a and b.", "Write a function number 1.",
                                                  "Sort the list.\n\nInput:\n[3, 1, 2]", "Reverse a string.",
                                                  "Double it."]
    assert [t.source for t in got.items] == ["user", "user", "alpaca", "alpaca", "user"]
    assert got.items[4].id.startswith("input/")  # an empty id is none
    assert got.items[3].id == "a/2" and got.items[2].id.startswith("input/")
    problems = {b.line: b.problem for b in got.bad}
    assert set(problems) == {5, 6, 7, 8}
    assert "written with schema_version 0, this codestill reads 1" in problems[5]
    assert "export it again" in problems[5]
    assert "a seed function" in problems[6] and "codestill instruct" in problems[6]
    assert 'no "instruction" (keys: id, question); expected instructions' in problems[7]
    assert '"input" is a int, expected a string' in problems[8]


def test_a_code_alpaca_output_is_kept_aside_never_in_the_task(tmp_path):
    path = _jsonl(tmp_path / "alpaca.jsonl", {"instruction": "Scale a list.", "input": "xs = [1, 2]", "output": CODE})
    got = read_inputs(path, "task")
    (task,) = got.items
    assert task.instruction == alpaca_text("Scale a list.", "xs = [1, 2]") and "return" not in task.instruction
    assert task.tests is None and task.entry_point is None
    assert got.candidates == {task.id: CODE}  # unverified, beside the record


def test_every_seed_format_in_one_file(tmp_path):
    seed = Seed(id="s/1", name="scale", signature="def scale(xs)", code=CODE)
    halve = "def halve(x):\n    return x / 2\n\nprint(halve(4))\n"
    path = _jsonl(tmp_path / "seeds.jsonl",
                  {"code": CODE},
                  seed.model_dump_json(),
                  {"instruction": "Halve x.", "input": "", "output": f"Here it is:\n```python\n{halve}```\nDone."},
                  {"id": "mine", "code": "import math\n\nasync def area(r):\n    return math.pi * r * r\n"},
                  {"instruction": "Scale xs."},
                  {"instruction": "Print 1.", "input": "", "output": "print(1)"},
                  {"code": "def broken(:\n"},
                  {**json.loads(seed.model_dump_json()), "schema_version": 7},
                  _task(3),
                  {"code": CODE})
    got = read_inputs(path, "seed")
    bare, record, alpaca, mine = got.items
    assert bare.name == "scale" and bare.signature == "def scale(xs: list[int], k: int=2) -> list[int]"
    assert bare.docstring == "Each of xs times k." and bare.code == CODE and bare.id.startswith("input/")
    assert record == seed
    assert alpaca.name == "halve" and alpaca.code == halve and alpaca.docstring == ""
    assert mine.id == "mine" and mine.signature == "async def area(r)" and mine.code.startswith("import math")
    problems = {b.line: b.problem for b in got.bad}
    assert set(problems) == {5, 6, 7, 8, 9, 10}
    assert "an instruction without code" in problems[5] and "codestill evolve" in problems[5]
    assert 'Code Alpaca "output" defines no top-level function' in problems[6]
    assert '"code" is not Python that parses (line 1' in problems[7]
    assert "schema_version 7" in problems[8] and "export it again" in problems[8]
    assert "a Task record (an instruction), not a seed function" in problems[9]
    assert "repeats line 1" in problems[10]


def test_a_json_array_file_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "code_alpaca_20k.json"
    path.write_text(json.dumps([{"instruction": "Add a and b.", "input": "", "output": "a + b"}], indent=4))
    with pytest.raises(InputError, match=r"one JSON array, not JSONL.*jq -c '\.\[\]'"):
        read_inputs(path, "task")


def test_reading_jsonl_never_imports_datasets(tmp_path):
    path = _jsonl(tmp_path / "in.jsonl", {"instruction": "Add a and b."})
    code = ("import sys; from pathlib import Path; from codestill.run._inputs import read_inputs; "
            f"read_inputs(Path({str(path)!r}), 'task'); assert 'datasets' not in sys.modules, 'datasets loaded'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_saved_dataset_is_read_row_by_row(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{"instruction": "Add a and b.", "input": "", "output": "a + b"},
            {"instruction": "Sort xs.", "input": "[2, 1]", "output": None},
            {"instruction": None, "input": "", "output": "x"},
            {"instruction": "Add a and b.", "input": None, "output": None}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    got = read_inputs(tmp_path / "ds", "task")
    assert [t.instruction for t in got.items] == ["Add a and b.", "Sort xs.\n\nInput:\n[2, 1]"]
    assert got.unit == "row" and [b.line for b in got.bad] == [2, 3]
    assert got.messages()[0].startswith(f"{tmp_path / 'ds'} row 2: no \"instruction\"")
    assert "repeats row 0" in got.messages()[1]
    assert got.sha256 == read_inputs(tmp_path / "ds", "task").sha256
    with pytest.raises(InputError, match=r"2 bad row\(s\), nothing started \(--strict\).*row 2"):
        read_inputs(tmp_path / "ds", "task", strict=True)


def test_a_saved_dataset_dict_gives_its_train_split_or_its_only_one(tmp_path):
    datasets = pytest.importorskip("datasets")
    seeds = datasets.Dataset.from_list([{"id": 7, "code": CODE}])  # an integer id column is read as text
    other = datasets.Dataset.from_list([{"code": "def f():\n    return 1\n"}])
    datasets.DatasetDict({"test": other, "train": seeds}).save_to_disk(str(tmp_path / "both"))
    assert [(s.id, s.name) for s in read_inputs(tmp_path / "both", "seed").items] == [("7", "scale")]
    datasets.DatasetDict({"validation": other}).save_to_disk(str(tmp_path / "one"))
    assert [s.name for s in read_inputs(tmp_path / "one", "seed").items] == ["f"]
    datasets.DatasetDict({"validation": other, "test": seeds}).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(InputError, match=r"splits validation, test and no \"train\""):
        read_inputs(tmp_path / "two", "seed")


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), r"is a folder, not a dataset saved with `datasets`.*save_to_disk"),
    (lambda p: (p.mkdir(), (p / "state.json").write_text("{}")), r"cannot read the saved dataset at .*save it again"),
])
def test_a_folder_that_is_no_saved_dataset_is_one_clear_error(tmp_path, make, message):
    make(tmp_path / "ds")
    with pytest.raises(InputError, match=message):
        read_inputs(tmp_path / "ds", "task")
