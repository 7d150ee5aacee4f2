"""The SFT export on a run written by hand (tests/training/runs.py): exact records and removals, the filters'
switches, errors, atomic replacement, and the output loaded by datasets, TRL's SFTTrainer and codestill's trainer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from codestill.errors import CodestillError, ExportError, RecordError
from codestill.records import dump_record, read_jsonl
from codestill.run._ledger import Ledger
from codestill.schemas import SFTRecord
from tests.training.runs import (
    A_CODE,
    A_EXPLANATION,
    PUBLIC_MODEL,
    A,
    B,
    commit,
    damage,
    trajectories,
    write_run,
)
from training.export import ExportOptions, ExportReport, export_run

CODE_ASK = "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
PLAN_ASK = ("Write a numbered, step-by-step plan for solving the following problem. Describe the steps in words; "
            "do not write code yet.")
A_PROBLEM = f'"""\n{A}\nassert running_max([1, 3, 2]) == [1, 3, 3]\n"""'
FILES = ["README.md", "export.json", "lengths.png", "removed.jsonl", "sft.jsonl"]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run")


def records(out: Path) -> list[SFTRecord]:
    return list(read_jsonl(out / "sft.jsonl", SFTRecord))


def removals(out: Path) -> list[tuple[str, str, str | None]]:
    lines = [json.loads(line) for line in (out / "removed.jsonl").read_text().splitlines()]
    return [(r["trajectory_id"], r["reason"], r["of"] or r["item_id"]) for r in lines]


def test_the_export_holds_exactly_the_accepted_clean_distinct_trajectories(run: Path) -> None:
    report = export_run(run)
    out = run / "export"
    assert sorted(p.name for p in out.iterdir()) == FILES
    got = records(out)
    assert [(r.id, r.task, r.tags) for r in got] == [
        ("a1/code", "code", ("code:final",)), ("a1/code-plan/0", "code", ("code:plan-conditioned",)),
        ("a1/code-plan/1", "code", ("code:plan-conditioned",)),
        ("a1/plan-forward/0", "plan", ("plan:forward",)), ("a1/plan-backward", "plan", ("plan:backward",)),
        ("a2/code", "code", ("code:final",)), ("a2/code-plan/0", "code", ("code:plan-conditioned",)),
        ("a2/plan-forward/0", "plan", ("plan:forward",))]
    code, conditioned, _, forward, backward = got[:5]
    # The explanation of the approach, then the code (export.response_style "explained", the default).
    answer = f"{A_EXPLANATION}\n\n```python\n{A_CODE.strip()}\n```"
    assert [(m.role, m.content) for m in code.messages] == [("user", f"{CODE_ASK}\n```\n{A_PROBLEM}\n```\n"),
                                                           ("assistant", answer)]
    # What plan sampling asks a student at evaluation: the code prompt, then "Follow this plan:" and the plan.
    assert conditioned.messages[0].content == (f"{CODE_ASK}\n```\n{A_PROBLEM}\n```\nFollow this plan:\n"
                                               f"{forward.messages[1].content}\n")
    assert conditioned.messages[1].content == answer
    # Only the plan whose code passed and was accepted, renumbered; the failed plan ("Sort xs") is left out.
    assert [(m.role, m.content) for m in forward.messages] == [
        ("user", f"{PLAN_ASK}\n```\n{A_PROBLEM}\n```\n"),
        ("assistant", "1. Start an empty result\n2. For each number, append the bigger of it and the last result\n"
                      "3. Return the result")]
    assert backward.messages[0] == forward.messages[0]
    assert backward.messages[1].content == "1. Keep the largest number seen so far\n2. Append it for every number"
    assert got[5].messages[0].content == f"{CODE_ASK}\n```\n{B}\n```\n"  # no visible tests: the instruction alone
    assert code.provenance is not None and code.provenance.evidence is not None
    assert code.provenance.model_dump(exclude={"evidence"}) == {
        "task_id": "evol/7", "trajectory_id": "a1", "source": "evol", "lineage": ("seed:3",), "model": PUBLIC_MODEL,
        "run_id": "demo-run", "category": None}
    assert code.provenance.evidence.model_dump() == {
        "sandbox_runs": ("ok",), "tests_passed": 5, "tests_total": 5, "test_kind": "asserts", "mutation_score": 0.9,
        "hidden_tests": "none", "hidden_passed": 0, "hidden_total": 0, "codestill_version": "0.test",
        "teachers": {r: PUBLIC_MODEL for r in ("planner", "coder", "tester", "critic")}}
    assert got[5].messages[1].content == f"```python\n{(trajectories()[2].final_code or '').strip()}\n```"  # no explanation
    assert removals(out) == [("r1", "not_accepted", None), ("f1", "not_accepted", None),
                             ("m1", "contaminated", "mbpp/2"), ("a1-again", "exact_duplicate", "a1"),
                             ("a3", "near_duplicate", "a2")]
    saved = ExportReport.model_validate_json((out / "export.json").read_text())
    assert saved == report
    assert (report.trajectories, report.kept, report.records, report.uncommitted_bytes) == (7, 2, 8, 120)
    assert report.by_verdict == {"accepted": 5, "rejected": 1, "failed": 1}
    assert report.removed == {"not_accepted": 2, "no_code": 0, "repeated_id": 0, "contaminated": 1,
                              "exact_duplicate": 1, "near_duplicate": 1}
    assert report.by_task == {"code": 5, "plan": 3}
    assert report.by_variant == {"code:final": 2, "code:modular": 0, "code:plan-conditioned": 3, "plan:forward": 2,
                                 "plan:backward": 1}
    assert report.evidence is not None
    assert (report.evidence.explained, report.evidence.unexplained) == (3, 2)  # a2's reply explained nothing
    assert report.evidence.hidden_tests == {"none": 2, "passed": 0, "failed": 0}
    assert (report.sources, report.models) == ({"evol": 1, "selfalign": 1}, {PUBLIC_MODEL: 2})
    card = (out / "README.md").read_text()
    assert "| contaminated | 1 |" in card and "| near_duplicate | 1 |" in card and "| selfalign | 1 |" in card
    assert "humaneval, mbpp" in card and "![record lengths](lengths.png)" in card
    assert "- code records with an explanation: 3 of 5" in card and "mutation score of the tests: 1 judged" in card
    assert (out / "lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any("s3cret" in (out / name).read_text(errors="ignore") for name in FILES)


def test_modular_form_and_plan_switches(run: Path, tmp_path: Path) -> None:
    report = export_run(run, tmp_path / "modular", ExportOptions(modular=True, backward_plans=False))
    got = {r.id: r for r in records(tmp_path / "modular")}
    assert list(got) == ["a1/code", "a1/code-modular", "a1/code-plan/0", "a1/plan-forward/0", "a2/code",
                         "a2/code-plan/0", "a2/plan-forward/0"]
    modular = got["a1/code-modular"]  # a2 is one function: no modular form to show
    assert modular.messages[0] == got["a1/code"].messages[0] and modular.tags == ("code:modular",)
    assert modular.messages[1].content == (
        "The solution is built from these function modules:\n\n1. `def bigger(a, b)`: The larger of two numbers.\n"
        f"2. `def running_max(xs)`\n\n```python\n{A_CODE.strip()}\n```")
    assert report.by_variant["code:modular"] == 1 and report.by_variant["plan:backward"] == 0
    export_run(run, tmp_path / "code", ExportOptions(forward_plans=False, backward_plans=False, plan_conditioned=False))
    assert [r.task for r in records(tmp_path / "code")] == ["code", "code"]


def test_decontamination_can_be_switched_off_or_narrowed_and_near_dedup_too(run: Path, tmp_path: Path) -> None:
    off = export_run(run, tmp_path / "off", ExportOptions(decontaminate=()))
    assert off.removed["contaminated"] == 0 and off.kept == 3
    assert [r.id for r in records(tmp_path / "off") if r.tags[0] != "code:plan-conditioned"] == [
        "a1/code", "a1/plan-forward/0", "a1/plan-backward", "a2/code", "a2/plan-forward/0", "m1/code"]
    humaneval_only = export_run(run, tmp_path / "he", ExportOptions(decontaminate=("humaneval",)))
    assert humaneval_only.kept == 3 and "humaneval" in (tmp_path / "he" / "README.md").read_text()
    no_near = export_run(run, tmp_path / "exact", ExportOptions(near_dedup=False))
    assert no_near.removed["near_duplicate"] == 0 and no_near.removed["exact_duplicate"] == 1 and no_near.kept == 3
    strict = export_run(run, tmp_path / "strict", ExportOptions(near_threshold=0.98))
    assert strict.removed["near_duplicate"] == 0  # one changed word: Jaccard ~0.95


def test_a_failed_export_leaves_the_previous_one_as_it_was(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export_run(run)
    before = {p.name: p.read_bytes() for p in (run / "export").iterdir()}
    original = (run / "trajectories.jsonl").read_bytes()
    damage(run, 2, '{"schema_version": 1, "id": "x"}')
    with pytest.raises(RecordError, match=r"\(input 'input-2', record 1\): not a valid Trajectory: task: Field required"):
        export_run(run, options=ExportOptions(modular=True))
    damage(run, 2, '{"id": "x"}')
    with pytest.raises(RecordError, match=r"\(input 'input-2', record 1\): not a Trajectory record \(no schema_version\)"):
        export_run(run)
    (run / "trajectories.jsonl").write_bytes(original)

    def broken_plot(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("training.export.plot_lengths", broken_plot)
    with pytest.raises(ExportError, match="No space left on device"):
        export_run(run, options=ExportOptions(modular=True))
    assert {p.name: p.read_bytes() for p in (run / "export").iterdir()} == before
    left = sorted(p.name for p in run.iterdir() if not p.name.startswith("ledger.sqlite"))  # SQLite's -wal, -shm
    assert left == ["config.json", "export", "trajectories.jsonl"]  # no temp folder


def test_only_committed_records_are_read(tmp_path: Path) -> None:
    """A tail past the ledger's last commit (a batch appending this instant, or one that died mid-line) is
    left out whatever it holds, and a resumed ledger cuts it off for good."""
    first, second = trajectories()[0], trajectories()[2]
    for cut in (1, 57, len(dump_record(second)), len(dump_record(second)) + 1):
        run = tmp_path / f"cut{cut}"
        with Ledger(run) as ledger:
            ledger.commit("input-0", first.verdict, [first], {})
        tail = (dump_record(second) + "\n")[:cut]
        with (run / "trajectories.jsonl").open("a") as f:
            f.write(tail)  # even a whole, valid line: it is not committed
        report = export_run(run, options=ExportOptions(decontaminate=()))
        assert (report.trajectories, report.kept, report.uncommitted_bytes) == (1, 1, len(tail.encode())), cut
        Ledger(run).close()  # a resumed batch
        assert export_run(run, options=ExportOptions(decontaminate=())).uncommitted_bytes == 0


@pytest.mark.parametrize(("setup", "error", "message"), [
    (lambda d: None, ExportError, "no such run directory"),
    (lambda d: d.mkdir(), ExportError, "no ledger.sqlite in it, so nothing in it is committed"),
    (lambda d: damage(write_run(d), 0, "not json"), RecordError, r"\(input 'input-0', record 1\): not JSON"),
    (lambda d: commit(d, [t for t in trajectories() if t.verdict != "accepted"]), ExportError,
     r"none of its 2 trajectories was accepted \(rejected 1, failed 1\)"),
    (lambda d: commit(d, [trajectories()[5]]),
     ExportError, r"every accepted trajectory was removed \(contaminated 1\).*--no-decontam"),
    (lambda d: (write_run(d) / "export").mkdir() or (d / "export" / "notes.txt").write_text("mine"), ExportError,
     "not a codestill export"),
])
def test_bad_input_is_one_clear_error(tmp_path: Path, setup, error: type[CodestillError], message: str) -> None:
    run = tmp_path / "run"
    setup(run)
    with pytest.raises(error, match=message):
        export_run(run)
    if (run / "export" / "notes.txt").exists():
        assert (run / "export" / "notes.txt").read_text() == "mine"
    else:
        assert not (run / "export").exists()


def test_records_written_before_tags_existed_still_load() -> None:
    old = ('{"schema_version": 1, "id": "mbpp/2/code", "task": "code", "messages": [{"role": "user", "content": "W"}, '
           '{"role": "assistant", "content": "x"}], "provenance": {"task_id": "mbpp/2", "trajectory_id": "t1"}}')
    assert SFTRecord.model_validate_json(old).tags == ()


@pytest.fixture
def export_dir(run: Path) -> Path:
    export_run(run, options=ExportOptions(modular=True))
    return run / "export"


def test_the_export_loads_with_datasets(export_dir: Path, tmp_path: Path) -> None:
    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(export_dir / "sft.jsonl"), split="train", cache_dir=str(tmp_path / "c"))
    assert ds.num_rows == 9 and {"messages", "task", "tags", "provenance", "id"} <= set(ds.column_names)
    first = records(export_dir)[0]
    assert ds[0]["messages"] == [m.model_dump() for m in first.messages]
    assert ds[0]["provenance"]["run_id"] == "demo-run" and ds[1]["tags"] == ["code:modular"]
    # The card's metadata names sft.jsonl as the train split, so the folder itself loads without removed.jsonl.
    folder = load_dataset(str(export_dir), cache_dir=str(tmp_path / "c2"))
    assert list(folder) == ["train"] and folder["train"].num_rows == 9


def test_trl_sft_trainer_trains_on_the_export_as_is(export_dir: Path, tiny_student: Path, tmp_path: Path) -> None:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer  # pyright: ignore[reportPrivateImportUsage]  # trl's documented import; its lazy __init__ re-exports nothing a checker sees

    ds = load_dataset("json", data_files=str(export_dir / "sft.jsonl"), split="train", cache_dir=str(tmp_path / "c"))
    model = AutoModelForCausalLM.from_pretrained(tiny_student, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny_student, local_files_only=True)
    args = SFTConfig(output_dir=str(tmp_path / "trl"), max_steps=2, per_device_train_batch_size=2, logging_steps=1,
                     learning_rate=1e-3, max_length=512, save_strategy="no", report_to="none", use_cpu=True,
                     dataloader_num_workers=0)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    # TRL read `messages` as a conversation: the first row is the first record through the chat template.
    first = records(export_dir)[0]
    assert trainer.train_dataset is not None
    assert tokenizer.decode(trainer.train_dataset[0]["input_ids"]) == tokenizer.apply_chat_template(
        [m.model_dump() for m in first.messages], tokenize=False)
    result = trainer.train()
    assert trainer.state.global_step == 2 and math.isfinite(result.training_loss) and result.training_loss > 0


def test_codestills_trainer_reads_and_tokenises_the_export(export_dir: Path, tokenizer) -> None:
    from training import filter_by_length, tokenize_records

    got = list(read_jsonl(export_dir / "sft.jsonl", SFTRecord))
    kept, report = filter_by_length(tokenize_records(got, tokenizer), max_length=4096)
    assert report.kept == 9 and report.kept_by_task == {"code": 6, "plan": 3}
    for example, record in zip(kept, got, strict=True):
        trained = tokenizer.decode([t for t in example.labels if t != -100])
        assert trained.startswith(record.messages[-1].content)  # the answer, then the end-of-turn token


def _samples_run(tmp_path: Path) -> Path:
    """One accepted program-category trajectory with two passing samples of other code, a backward plan that
    reads like its forward plan, and a second sample whose explanation names the memory."""
    from codestill.schemas import (
        Attempt,
        Critique,
        ExecResult,
        Origin,
        Plan,
        Task,
        TestResult,
        TestSuite,
        Trajectory,
    )

    passed = ExecResult(run_id="run-1", status="passed", tests=(TestResult(name="t", outcome="passed"),))
    other = "def double(x):\n    return 2 * x\n"
    final = "def double(x):\n    return x + x\n"
    plan = Plan(steps=("Add x to itself.",))
    suite = TestSuite(code="assert double(2) == 4\n")
    t = Trajectory(
        id="s1", verdict="accepted", reason="accepted", final_code=final, selection_seed=3,
        task=Task(id="selfalign/1", instruction="Write a function double(x) that returns twice x.",
                  source="selfalign", origin=Origin(category="function")),
        plans=(plan, Plan(steps=("1. Add x to itself.",), kind="backward")),
        attempts=(Attempt(plan_index=0, sample=0, code=final, result=passed, tests=suite,
                          critique=Critique(verdict="accept"), explanation=A_EXPLANATION),
                  Attempt(plan_index=0, sample=1, code=other, result=passed, tests=suite,
                          critique=Critique(verdict="accept"),
                          explanation="I adapted the reference function from the memory; it doubles x.")))
    return commit(tmp_path / "samples", [t])


def test_identical_plans_go_once_and_every_passer_on_request(tmp_path: Path) -> None:
    run = _samples_run(tmp_path)
    report = export_run(run, tmp_path / "all", ExportOptions(all_passing=True, response_style="explained+tests"))
    got = {r.id: r for r in records(tmp_path / "all")}
    # the backward plan has the forward plan's text: one plan record, one plan-conditioned record
    assert list(got) == ["s1/code", "s1/code/1", "s1/code-plan/0", "s1/plan-forward/0"]
    assert got["s1/code"].tags == ("code:final", "sample:chosen", "category:function")
    assert got["s1/code"].provenance.category == "function"
    assert got["s1/code"].messages[1].content == (f"{A_EXPLANATION}\n\n```python\n{'def double(x):'}\n"
                                                  "    return x + x\n```\n\nTests:\n\n```python\nassert double(2) == 4\n```")
    # the other passer's explanation names the memory: its code goes out alone, and the report counts it
    assert got["s1/code/1"].messages[1].content == "```python\ndef double(x):\n    return 2 * x\n```"
    assert report.evidence is not None and (report.evidence.explained, report.evidence.unexplained) == (2, 1)
    default = export_run(run, tmp_path / "one")
    assert [r.id for r in records(tmp_path / "one")] == ["s1/code", "s1/code-plan/0", "s1/plan-forward/0"]
    assert default.evidence is not None
    assert default.by_variant["plan:backward"] == 0 and default.evidence.categories == {"function": 1}


def test_unverified_export_is_every_first_answer_with_no_gate(run: Path, tmp_path: Path) -> None:
    """The direct-distillation baseline: the first attempt of every trajectory, rejected and failed ones too,
    bugs included (a1's first answer failed its tests), in the prompt form of code:final, with no evidence."""
    report = export_run(run, tmp_path / "base", ExportOptions(unverified=True))
    got = {r.id: r for r in records(tmp_path / "base")}
    by_id = {t.id: t for t in trajectories()}
    with_code = [t for t in by_id.values() if t.attempts and t.attempts[0].code.strip()]
    assert any(t.verdict != "accepted" for t in with_code)  # the run has a rejected or failed answer to keep
    # decontamination and dedup still apply: they are not verification
    assert "m1/code-unverified" not in got and "a1-again/code-unverified" not in got
    for tid, record in got.items():
        t = by_id[tid.split("/")[0]]
        assert record.tags[0] == "code:unverified" and record.provenance.evidence is None
        assert t.attempts[0].code.strip() in record.messages[1].content
    a1 = got["a1/code-unverified"]
    assert "return sorted(xs)" in a1.messages[1].content  # the failed first answer, not the accepted code
    assert a1.messages[0].content == f"{CODE_ASK}\n```\n{A_PROBLEM}\n```\n"
    assert {t.id for t in with_code} - {"m1", "a1-again", "a3"} <= {k.split("/")[0] for k in got}
    assert report.by_variant == {"code:unverified": len(got)}
    assert "UNVERIFIED" in (tmp_path / "base" / "README.md").read_text()
