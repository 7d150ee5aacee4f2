"""Seed mining: each filter on a small source of its own, licences, the spread-out limit, and the
machine's real standard library."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from codestill.data import load_humaneval
from codestill.errors import SeedMiningError
from codestill.schemas import Seed
from tools.licence import detect_licence, licence_from_text
from tools.seeds import FILTERS, SeedMiner, SeedSource, select_spread

GOOD = '''
import re
from collections import Counter


def top_words(text, top=3):
    """Count the words of text and return the `top` most common ones with their counts."""
    found = re.findall(r"[a-z']+", text.lower())
    return Counter(found).most_common(top)
'''


def mine(source: str, module: str = "mod", *, miner: SeedMiner | None = None, label: str = "proj",
         licence: str | None = "MIT") -> tuple[list[Seed], SeedMiner]:
    miner = miner or SeedMiner(typecheck=False)
    src = SeedSource(root=Path("/nowhere"), label=label, licence=licence)
    candidates = miner.from_source(textwrap.dedent(source), module=module, path=f"/nowhere/{module}.py", source=src)
    return miner.finish(candidates), miner


def removed(miner: SeedMiner) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in miner.report.removals:
        out.setdefault(r.filter, []).append(r.id.rsplit(".", 1)[-1])
    return out


def test_a_good_function_becomes_a_self_contained_seed():
    seeds, miner = mine(GOOD)
    assert [s.id for s in seeds] == ["proj:mod.top_words"]
    seed = seeds[0]
    assert (seed.name, seed.module, seed.licence, seed.lineno, seed.path) == ("top_words", "mod", "MIT", 6, "/nowhere/mod.py")
    assert seed.signature == "def top_words(text, top=3)" and seed.docstring.startswith("Count the words")
    assert seed.code.startswith("import re\nfrom collections import Counter\n\n\ndef top_words(text, top=3):")
    namespace: dict[str, Any] = {}
    exec(seed.code, namespace)  # runs on its own: the imports it needs came with it
    assert namespace["top_words"]("b a b c b a", 2) == [("b", 3), ("a", 2)]
    assert miner.report.functions == 1 and miner.report.seeds == 1 and sum(miner.report.removed.values()) == 0


def test_each_filter_removes_what_it_should():
    source = '''
    import os
    import subprocess
    from .sibling import helper

    LIMIT = 10


    def undocumented(x):
        return x


    def broken(x):
        """Compiles to nothing: no binding for nonlocal."""
        nonlocal y
        return x


    def now():
        """Takes nothing."""
        return 42


    def only_self(self):
        """A method-shaped function with nothing else."""
        return self


    def show(x):
        """Prints, returns nothing."""
        print(x)


    def explicit_none(x):
        """Returns None explicitly."""
        if x:
            return None
        return


    def nested_return(x):
        """Only the inner function returns a value."""
        def inner():
            return x
        inner()


    def unfinished(x):
        """Doubles x."""
        # TODO: handle negative numbers
        return 2 * x


    def joined(a, b):
        """Join two path parts."""
        return os.path.join(a, b)


    def run(cmd):
        """Run a command and return its exit status."""
        import shutil
        return shutil.which(cmd)


    def capped(x):
        """x, but never above LIMIT."""
        return min(x, LIMIT)


    def calls_helper(x):
        """Delegates to a relative import."""
        return helper(x)


    def open(name):
        """A module-level open that shadows the builtin."""
        return name


    def opens(name):
        """Calls the module's own open, not the builtin."""
        return open(name)


    def debugged(x):
        """Lower-case todo, debug and bugs are fine words."""
        # todo list: debug the bugs
        return x
    '''
    long_body = "\n".join(f"    y{i} = x + {i}" for i in range(150))
    source = textwrap.dedent(source) + f'\n\ndef too_long(x):\n    """Very long."""\n{long_body}\n    return x\n'
    seeds, miner = mine(source)
    assert [s.name for s in seeds] == ["open", "debugged"]
    assert removed(miner) == {
        "no_docstring": ["undocumented"],
        "unparsable": ["broken"],
        "no_arguments": ["now", "only_self"],
        "too_long": ["too_long"],
        "no_return": ["show", "explicit_none", "nested_return"],
        "marker": ["unfinished"],
        "banned_import": ["joined", "run"],
        "not_self_contained": ["capped", "calls_helper", "opens"],
    }
    details = {r.id.rsplit(".", 1)[-1]: r.detail for r in miner.report.removals}
    assert details["joined"] == "uses os" and details["run"] == "uses shutil" and details["unfinished"] == "contains TODO"
    assert "LIMIT" in details["capped"] and "relative" in details["calls_helper"] and "open" in details["opens"]
    assert list(miner.report.removed) == list(FILTERS)  # every filter reported, in filter order


def test_a_module_level_banned_import_the_function_does_not_use_is_fine():
    seeds, _ = mine("import os\nimport sys\n" + GOOD)
    assert [s.name for s in seeds] == ["top_words"] and "import os" not in seeds[0].code


def test_several_imports_binding_one_name_all_come_along():
    seeds, _ = mine('''
    import email.utils
    import email.header


    def quoted(name, address):
        """Format a name and an address for a header."""
        return email.utils.formataddr((str(email.header.Header(name)), address))
    ''')
    assert seeds[0].code.startswith("import email.utils\nimport email.header\n\n\n")


def test_benchmark_copies_are_removed_with_the_item_they_match():
    he = load_humaneval()[3]
    seeds, miner = mine(he.reference + GOOD)
    assert [s.name for s in seeds] == ["top_words"]
    [removal] = [r for r in miner.report.removals if r.filter == "contaminated"]
    assert removal.id == f"proj:mod.{he.entry_point}" and removal.matched == he.id and he.id in removal.detail


def test_duplicates_across_files_are_removed_and_name_what_they_duplicate():
    miner = SeedMiner(typecheck=False)
    first, _ = mine(GOOD, "first", miner=miner)
    same, _ = mine(GOOD.replace("found", "tokens"), "second", miner=miner)  # only a local renamed
    near, _ = mine(GOOD.replace("most_common(top)", "most_common(top + 1)"), "third", miner=miner)
    other, _ = mine('def double(x):\n    """Twice x."""\n    return x * 2\n', "fourth", miner=miner)
    assert [len(first), len(same), len(near), len(other)] == [1, 0, 0, 1]
    dups = {r.id: (r.matched, r.detail) for r in miner.report.removals if r.filter == "duplicate"}
    assert dups["proj:second.top_words"] == ("proj:first.top_words", "same text as proj:first.top_words")
    assert dups["proj:third.top_words"][0] == "proj:first.top_words" and "near duplicate" in dups["proj:third.top_words"][1]
    # The same id twice (a tree given twice) is a duplicate too.
    again, _ = mine('def double(x):\n    """Twice x."""\n    return x * 2\n', "fourth", miner=miner)
    assert again == [] and miner.report.removals[-1].detail == "same id as an earlier seed"


def test_the_limit_keeps_a_stable_spread_over_modules():
    seeds = [Seed(id=f"lib:m{m}.f{i}", name=f"f{i}", signature=f"def f{i}(x)", code=f"def f{i}(x):\n    return x\n",
                  module=f"m{m}", path=f"m{m}.py", lineno=1, licence=None) for m in range(5) for i in range(20)]
    chosen = select_spread(seeds, 10)
    assert len(chosen) == 10 and chosen == select_spread(list(reversed(seeds)), 10)[::-1]
    assert len({s.module for s in chosen}) >= 3
    assert [seeds.index(s) for s in chosen] == sorted(seeds.index(s) for s in chosen)  # original order kept
    miner = SeedMiner(typecheck=False)
    assert miner.limit(seeds, 10) == chosen and miner.report.removed["over_limit"] == 90 and miner.report.seeds == 10


def test_pyright_removes_seeds_with_type_errors():
    # The dev extra installs basedpyright beside the interpreter, so the check always runs here.
    miner = SeedMiner(typecheck=True)
    seeds, _ = mine(GOOD + '''

def shout(text: str) -> str:
    """Upper-case text."""
    return text.upper() + 1
''', miner=miner)
    assert [s.name for s in seeds] == ["top_words"]
    [removal] = [r for r in miner.report.removals if r.filter == "type_error"]
    assert removal.id == "proj:mod.shout" and removal.detail.startswith("line 3: ") and "(reportOperatorIssue)" in removal.detail
    assert "pyright" in miner.report.typecheck and "skipped" not in miner.report.typecheck


def test_by_default_the_type_check_runs_and_a_missing_checker_is_skipped_or_refused(tmp_path):
    assert SeedMiner(typecheck=False).report.typecheck == "skipped: turned off"
    assert "pyright" in SeedMiner().report.typecheck and "skipped" not in SeedMiner().report.typecheck
    missing = tmp_path / "no-such-pyright"
    assert SeedMiner(pyright=missing).report.typecheck == "skipped: pyright is not installed"
    with pytest.raises(SeedMiningError, match="--no-typecheck"):
        SeedMiner(typecheck=True, pyright=missing)


MIT = """MIT License

Copyright (c) 2024 Someone

Permission is hereby granted, free of charge, to any person obtaining a copy of this software..."""
APACHE = """                                 Apache License
                           Version 2.0, January 2004
                        http://www.apache.org/licenses/"""
BSD3 = """Copyright (c) 2020, Someone. All rights reserved.
Redistribution and use in source and binary forms, with or without modification, are permitted ...
3. Neither the name of the copyright holder nor the names of its contributors may be used ..."""
BSD2 = """Copyright (c) 2020, Someone.
Redistribution and use in source and binary forms, with or without modification, are permitted ..."""
GPL3 = """                    GNU GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007"""
LGPL = """                   GNU LESSER GENERAL PUBLIC LICENSE
                       Version 2.1, February 1999
 ... the GNU General Public License ..."""


@pytest.mark.parametrize(("text", "spdx"), [(MIT, "MIT"), (APACHE, "Apache-2.0"), (BSD3, "BSD-3-Clause"),
                                            (BSD2, "BSD-2-Clause"), (GPL3, "GPL-3.0"), (LGPL, "LGPL-2.1"),
                                            ("SPDX-License-Identifier: MPL-2.0\n", "MPL-2.0"),
                                            ("All rights reserved. Do not copy.", None),
                                            (BSD3 + "\n\nVendored parts:\n" + GPL3, "BSD-3-Clause")])
def test_licence_texts_are_recognised(text, spdx):
    assert licence_from_text(text) == spdx


def test_licence_files_at_a_tree_root(tmp_path):
    assert detect_licence(tmp_path) is None
    (tmp_path / "LICENSE.md").write_text(MIT)
    assert detect_licence(tmp_path) == "MIT"
    dual = tmp_path / "dual"
    dual.mkdir()
    (dual / "LICENSE-APACHE").write_text(APACHE)
    (dual / "LICENSE-MIT").write_text(MIT)
    (dual / "README.md").write_text(GPL3)  # not a licence file
    assert detect_licence(dual) == "Apache-2.0 OR MIT"


def test_mining_the_machines_standard_library(stdlib_mined):
    seeds, report = stdlib_mined
    print(f"\nstandard library: {report.files} files, {report.functions} public top-level functions, "
          f"{report.seeds} seeds (type check: {report.typecheck})")
    for key, label in FILTERS.items():
        print(f"  {label:<26} {report.removed[key]:>5}")
    assert 100 <= len(seeds) == report.seeds <= 1000
    assert report.functions == sum(report.removed.values()) + report.seeds
    for key in ("no_docstring", "no_arguments", "no_return", "banned_import", "not_self_contained", "duplicate"):
        assert report.removed[key] > 0, key
    assert report.removed["over_limit"] == 0 and len(report.removals) == sum(report.removed.values())
    ids = {s.id for s in seeds}
    assert len(ids) == len(seeds) and all(i.startswith("stdlib:") for i in ids)
    assert {"stdlib:base64.b16encode", "stdlib:calendar.leapdays", "stdlib:operator.countOf"} <= ids
    assert all(s.licence == "PSF-2.0" for s in seeds)
    for seed in seeds:
        namespace: dict[str, Any] = {}
        exec(compile(seed.code, seed.id, "exec"), namespace)  # defines cleanly on its own
        assert callable(namespace[seed.name])
