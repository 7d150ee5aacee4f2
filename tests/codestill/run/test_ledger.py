"""The ledger's exactly-once promise, file by file: what a crash can leave, and what opening repairs."""

from __future__ import annotations

import sqlite3

import pytest

from codestill.run._ledger import Ledger, LedgerError, committed, merge, read_entries, read_wall
from codestill.schemas import Task, Trajectory


def _t(i: int) -> Trajectory:
    return Trajectory(id=f"t-{i}", task=Task(id=f"task/{i}", instruction=f"Write function number {i}."),
                      verdict="accepted", reason="ok", final_code=f"def f{i}():\n    return {i}\n")


def _ids(run_dir) -> list[str]:
    return [Trajectory.model_validate_json(line).task.id for _, lines in committed(run_dir) for line in lines]


def test_commit_then_reopen_keeps_everything(tmp_path):
    with Ledger(tmp_path) as ledger:
        ledger.commit("task/1", "accepted", [_t(1)], {"instructions": 1})
        ledger.commit("task/2", "accepted", [_t(2)], {"instructions": 1})
    with Ledger(tmp_path) as ledger:
        assert ledger.done() == {"task/1", "task/2"}
        assert ledger.repair.cut_bytes == 0 and ledger.repair.dropped_rows == 0
    assert _ids(tmp_path) == ["task/1", "task/2"]
    assert [e.detail for e in read_entries(tmp_path)] == [{"instructions": 1}] * 2


def test_uncommitted_lines_and_a_torn_line_are_cut_on_open(tmp_path):
    with Ledger(tmp_path) as ledger:
        ledger.commit("task/1", "accepted", [_t(1)], {})
    good = (tmp_path / "trajectories.jsonl").stat().st_size
    # What a process killed between the append and the commit leaves: a whole line and a torn one.
    with (tmp_path / "trajectories.jsonl").open("ab") as f:
        f.write(_t(2).model_dump_json().encode() + b"\n" + _t(3).model_dump_json().encode()[:40])
    with Ledger(tmp_path) as ledger:
        assert ledger.done() == {"task/1"}
        assert ledger.repair.cut_bytes > 0
        ledger.commit("task/2", "accepted", [_t(2)], {})
    assert _ids(tmp_path) == ["task/1", "task/2"]
    lines = (tmp_path / "trajectories.jsonl").read_bytes().splitlines()
    assert len(lines) == 2 and (tmp_path / "trajectories.jsonl").stat().st_size > good
    for line in lines:
        Trajectory.model_validate_json(line)  # nothing torn is left


def test_a_file_shorter_than_the_ledger_sends_the_lost_inputs_round_again(tmp_path):
    with Ledger(tmp_path) as ledger:
        ledger.commit("task/1", "accepted", [_t(1)], {})
        ledger.commit("task/2", "accepted", [_t(2)], {})
    entries = read_entries(tmp_path)
    with (tmp_path / "trajectories.jsonl").open("r+b") as f:  # the machine lost the file's tail
        f.truncate(entries[1].start + 10)
    with Ledger(tmp_path) as ledger:
        assert ledger.done() == {"task/1"} and ledger.repair.dropped_rows == 1
    assert _ids(tmp_path) == ["task/1"]


def test_an_input_is_committed_once(tmp_path):
    with Ledger(tmp_path) as ledger:
        ledger.commit("task/1", "accepted", [_t(1)], {})
        with pytest.raises(LedgerError, match="already in the ledger"):
            ledger.commit("task/1", "accepted", [_t(1)], {})
        ledger.commit("task/2", "rejected", [_t(2)], {})
    assert _ids(tmp_path) == ["task/1", "task/2"]


def test_merge_rebuilds_the_run_from_its_shards(tmp_path):
    shards = [tmp_path / "shards" / f"{k}-of-2" for k in range(2)]
    for k, d in enumerate(shards):
        with Ledger(d) as ledger:
            for i in range(k, 6, 2):
                ledger.commit(f"task/{i}", "accepted", [_t(i)], {"k": k})
    assert merge(tmp_path, shards) == 6
    assert merge(tmp_path, shards) == 6  # redoing it gives the same run, never twice the lines
    assert sorted(_ids(tmp_path)) == [f"task/{i}" for i in range(6)]
    assert read_wall(tmp_path) >= 0.0
    with Ledger(tmp_path) as ledger:
        assert ledger.done() == {f"task/{i}" for i in range(6)}


def test_a_foreign_file_is_refused_with_the_fix(tmp_path):
    (tmp_path / "ledger.sqlite").write_text("not a database at all, just text " * 10)
    with pytest.raises(LedgerError, match="cannot open the run's ledger"):
        Ledger(tmp_path)


def test_a_ledger_being_created_reads_as_empty_and_a_foreign_database_is_refused(tmp_path):
    # A poller can open the file between its creation and its first table (a `generate` starting up).
    (tmp_path / "ledger.sqlite").write_bytes(b"")
    assert read_entries(tmp_path) == []
    with Ledger(tmp_path):  # opening an empty file makes it a ledger with nothing done yet
        pass
    assert read_entries(tmp_path) == []
    other = tmp_path / "other"
    other.mkdir()
    db = sqlite3.connect(other / "ledger.sqlite")
    db.execute("CREATE TABLE notes (x TEXT)")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="is it a codestill run directory"):
        read_entries(other)
