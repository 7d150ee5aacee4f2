"""Shared fixtures: a tiny student (2 layers, tokenizer trained on the spot) and a small SFT file made from
the bundled MBPP problems, code and plan records mixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from codestill.data import load_bank
from codestill.records import write_jsonl
from codestill.schemas import ChatMessage, Provenance, SFTRecord
from tests.tiny_model import build_tiny_model


def sft_record(rid: str, task: str, prompt: str, answer: str) -> SFTRecord:
    return SFTRecord(id=rid, task=task, provenance=Provenance(task_id=rid, trajectory_id=rid),  # type: ignore[arg-type]
                     messages=(ChatMessage(role="user", content=prompt), ChatMessage(role="assistant", content=answer)))


def bank_records(n: int) -> list[SFTRecord]:
    """``n`` MBPP problems as a code record (instruction -> reference) and a plan record each."""
    out: list[SFTRecord] = []
    for p in [p for p in load_bank() if p.source == "mbpp"][:n]:
        out.append(sft_record(f"{p.id}/code", "code", p.instruction, f"```python\n{p.reference.strip()}\n```"))
        out.append(sft_record(f"{p.id}/plan", "plan", f"Plan a solution: {p.instruction}",
                              f"1. Define {p.entry_point}.\n2. Compute the result.\n3. Return it."))
    return out


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("student") / "tiny")


@pytest.fixture(scope="session")
def tokenizer(tiny_student: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_student, local_files_only=True)


@pytest.fixture(scope="session")
def sft_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sft.jsonl"
    write_jsonl(path, bank_records(12))
    return path
