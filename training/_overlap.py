"""Which evaluated problems a model was trained on: what ``codestill eval`` warns about.

``codestill train`` leaves ``training_data.json`` (``training._trained_on``) beside the model. A problem
overlaps with it when its id is one of the training records' task ids (also as the root of an evolved
task's id, ``mbpp/2#r1``), or when its text is found in a training prompt by the decontamination rules
(``tools.decontam``: substring, then word n-grams) run against just the evaluated problems' texts (its
prompt and reference solution). A training prompt wraps a problem the way the evaluation's prompt does
(the instruction, then the problem in a fence), so a copied MBPP instruction is a substring hit.
Each training prompt names at most one problem (the decontaminator's best match), which is enough for a
warning: it counts prompts of the benchmark, not every near-duplicate of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tools.decontam import BenchmarkText, Decontaminator, benchmark_texts
from training._bench import Problem
from training._trained_on import TrainedOn, read_trained_on


def _root(task_id: str) -> str:
    """A task id as a problem id: "Mbpp/2" and an evolution of it, "mbpp/2#r1", are "mbpp/2"."""
    return task_id.split("#", 1)[0].strip().lower()


def training_overlap(problems: Sequence[Problem], trained: TrainedOn) -> list[str]:
    """The ids of ``problems`` found in ``trained``, in the order of ``problems``."""
    roots = {_root(t) for t in trained.task_ids}
    flagged = {p.id for p in problems if p.id.lower() in roots}
    wanted = {p.id for p in problems}
    texts = [t for t in benchmark_texts() if t.item_id in wanted]
    covered = {t.item_id for t in texts}
    # A problem the bundled decontamination texts lack is looked for by the prompt the evaluation shows.
    texts += [BenchmarkText(p.dataset, p.id, "prompt", p.prompt) for p in problems if p.id not in covered]
    if texts and trained.prompts:
        hits = Decontaminator(texts).check_many(trained.prompts)
        flagged |= {hit.item_id for hit in hits if hit is not None}
    return [p.id for p in problems if p.id in flagged]


def local_model_dir(model: str) -> Path | None:
    """The directory a model spec names (``hf:DIR`` or ``DIR``), or None for a hub id or a server."""
    if model.startswith("openai:"):
        return None
    path = Path(model.removeprefix("hf:")).expanduser()
    return path if path.is_dir() else None


def model_overlap(model: str, problems: Sequence[Problem]) -> tuple[str | None, list[str]]:
    """The training_data.json of a local model (None: it has none) and the problems it trained on."""
    where = local_model_dir(model)
    found = read_trained_on(where) if where is not None else None
    if found is None:
        return None, []
    trained, path = found
    return str(path), training_overlap(problems, trained)
