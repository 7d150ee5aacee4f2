"""A sentence-transformers model of the common shape (a transformer, mean pooling, unit length), run with
transformers alone. The bundled all-MiniLM-L6-v2 is one.

Why: ``import sentence_transformers`` loads its trainer, and with it transformers' ``Trainer``,
scikit-learn and more (about 5.5 s here), while the model itself needs only ``AutoModel`` and a tokenizer
(about 2 s). Every command that opens the memory paid the difference before its first search. The
vectors are the same (``tests/memory/test_embed.py`` checks them against sentence-transformers' own
within 1e-5), so a store written by either is read by the other. A model of another shape (CLS or max
pooling, a prompt, a lower-casing config, a dense layer) is left to sentence-transformers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def mean_pooled_length(folder: Path) -> int | None:
    """The token limit of a mean-pooled model in ``folder``, or None when its layout is any other."""
    modules = _json(folder / "modules.json")
    if not isinstance(modules, list) or not modules:
        return None
    kinds = [m.get("type") for m in modules if isinstance(m, dict)]
    if kinds not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]) or modules[0].get("path"):
        return None
    pooling = _json(folder / str(modules[1].get("path", "")) / "config.json")
    if not isinstance(pooling, dict):
        return None
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True}
    if modes != {"pooling_mode_mean_tokens"} or pooling.get("pooling_mode") not in (None, "mean"):
        return None
    if (_json(folder / "config_sentence_transformers.json") or {}).get("default_prompt_name"):
        return None
    bert = _json(folder / "sentence_bert_config.json")
    if not isinstance(bert, dict) or bert.get("do_lower_case") or not isinstance(bert.get("max_seq_length"), int):
        return None
    return bert["max_seq_length"]


class MeanPooled:
    """``encode`` as sentence-transformers does for this layout: tokens cut at ``max_length``, the
    last hidden states averaged over the real tokens, scaled to unit length."""

    def __init__(self, folder: Path, max_length: int, device: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).to(device).eval()
        self.max_length = min(max_length, self.tokenizer.model_max_length)
        self.device = device

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        import torch

        # Longest first, as sentence-transformers batches: a batch pads to its longest text, so texts of
        # like length together waste the least (the stdlib store of test_retrieval: 14 s, against 22 s unsorted).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[rows] = torch.nn.functional.normalize(mean, p=2, dim=1).float().cpu().numpy()
        return out
