"""Hubness reduction: a helper in a crowd of look-alikes yields to one that stands apart, and the crowd
is measured the same whichever order the records came in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codestill.config import MemoryConfig
from codestill.schemas import Module, ModuleSpec
from memory import ModuleMemory
from memory._hubness import NEIGHBOURS, adjusted, merged

SHLEX_SPLIT = ('def split(s, comments=False, posix=True):\n    """Split the string *s* using shell-like syntax."""\n'
               '    return _split(s, comments, posix)\n')
OTHERS = ["filecmp.cmp", "os.fspath", "getopt.gnu_getopt", "glob.escape", "textwrap.dedent", "json.dumps",
          "re.escape", "html.escape", "base64.b64decode", "string.capwords", "shutil.which", "fnmatch.translate",
          "os.path.join", "zlib.compress", "heapq.merge", "json.loads", "copy.deepcopy", "pprint.pformat",
          "uuid.uuid4", "socket.getfqdn", "calendar.isleap", "secrets.token_hex", "getpass.getuser",
          "mimetypes.guess_type"]
QUERY = "split a command line into arguments the way a unix shell would"


def _composed(a: str, b: str) -> str:
    fa, fb = a.rsplit(".", 1)[1], b.rsplit(".", 1)[1]
    return (f'def {fa}_then_{fb}(*args, **kwargs):\n    """Apply {a} to the arguments, then {b} to its result."""\n'
            f'    return {fb}({fa}(*args, **kwargs))\n')


# shlex.split, and 48 helpers that merely name it: the crowd that buried it at 100,000 records.
CODES = [SHLEX_SPLIT] + [_composed(o, "shlex.split") for o in OTHERS] + [_composed("shlex.split", o) for o in OTHERS]


def _fill(path: Path, codes: list[str], embedder, **config: Any) -> ModuleMemory:
    memory = ModuleMemory(MemoryConfig(path=path, **config), embedder=embedder)
    for code in codes:  # one at a time: each add updates the lists of the records it lands near
        memory.add(Module(spec=ModuleSpec(name="f", signature=code.split(":")[0]), code=code, verified=True))
    return memory


def test_a_function_buried_by_helpers_that_name_it_comes_back(tmp_path, embedder) -> None:
    place = {}
    for hubness in (0.0, 0.4):
        with _fill(tmp_path / str(hubness), CODES, embedder, hubness=hubness) as memory:
            hits = memory.search_text(QUERY, k=len(CODES))
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)  # best first, by the score shown
        place[hubness] = [h.module.name for h in hits].index("split")
    # By relevance alone the crowd wins, as it did in the benchmark; discounted, shlex.split is back near
    # the top (3rd here; the 1 or 2 helpers that stay above it are as close in meaning as a text can be).
    assert place[0.0] >= 10, place
    assert place[0.4] <= 3, place


def test_the_crowd_is_measured_alike_in_any_order_of_adding(tmp_path, embedder) -> None:
    # Added first, shlex.split has no neighbours yet: the later adds must update its list.
    orders = {"first": CODES, "last": CODES[1:] + CODES[:1]}
    scores = {}
    for label, codes in orders.items():
        with _fill(tmp_path / label, codes, embedder) as memory:
            scores[label] = {h.module.name: h.score for h in memory.search_text(QUERY, k=len(CODES))}
    assert scores["first"].keys() == scores["last"].keys()
    assert all(abs(scores["first"][n] - scores["last"][n]) < 0.01 for n in scores["first"])


def test_lists_keep_the_nearest_and_unknown_densities_count_as_average() -> None:
    assert merged([0.9, 0.5], [0.7, 0.95]) == [0.95, 0.9, 0.7, 0.5]
    assert len(merged([0.1] * NEIGHBOURS, [0.2])) == NEIGHBOURS
    # query density: the mean of the top NEIGHBOURS cosines (here all five, 0.6)
    out = adjusted([0.6, 0.6, 0.6], [0.6] * 5, [0.8, 0.4, None], 0.5)
    assert out == pytest.approx([0.6 - 0.5 * 0.2, 0.6 + 0.5 * 0.2, 0.6])
    assert adjusted([0.99], [0.99], [0.0], 1.0) == [1.0]  # clipped to [0, 1]
