"""Which licence a source tree is under, from the licence file at its root (``LICENSE*``,
``LICENCE*``, ``COPYING*``), recognised by phrases every copy of that licence text contains. Seeds
carry it so that a data set built from them can say what it was built from."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["detect_licence", "licence_from_text"]

# A licence file that names its SPDX id says best what it is.
_SPDX = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+\-]+(?:\s+(?:OR|AND|WITH)\s+[A-Za-z0-9.+\-]+)*)",
                   re.IGNORECASE)

# (SPDX id, phrases that must all occur, the first of them where the licence text starts). On a tie
# the earlier rule wins: a BSD-3-Clause text contains everything a BSD-2-Clause one does.
_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Apache-2.0", ("apache license", "version 2.0")),
    ("AGPL-3.0", ("gnu affero general public license",)),
    ("LGPL-3.0", ("gnu lesser general public license", "version 3")),
    ("LGPL-2.1", ("gnu lesser general public license", "version 2.1")),
    ("GPL-3.0", ("gnu general public license", "version 3")),
    ("GPL-2.0", ("gnu general public license", "version 2")),
    ("MPL-2.0", ("mozilla public license", "2.0")),
    ("PSF-2.0", ("python software foundation license",)),
    ("BSL-1.0", ("boost software license",)),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
    ("CC0-1.0", ("cc0 1.0 universal",)),
    ("MIT", ("permission is hereby granted, free of charge",)),
    ("ISC", ("permission to use, copy, modify, and/or distribute this software for any purpose",)),
    ("ISC", ("permission to use, copy, modify, and distribute this software for any purpose",)),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "neither the name")),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "may not be used to endorse")),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",)),
)

_FILE = re.compile(r"^(licen[cs]e|copying)", re.IGNORECASE)


def licence_from_text(text: str) -> str | None:
    """The SPDX id of the licence ``text`` is, or None when it is not one recognised."""
    declared = _SPDX.search(text)
    if declared:
        return declared.group(1)
    flat = " ".join(text.lower().split())
    # Files that bundle several licences (the main one, then those of vendored parts) are common:
    # the licence whose text starts first is the tree's own.
    best: tuple[int, int, str] | None = None
    for order, (spdx, phrases) in enumerate(_RULES):
        if all(p in flat for p in phrases):
            candidate = (flat.find(phrases[0]), order, spdx)
            best = candidate if best is None else min(best, candidate)
    return best[2] if best is not None else None


def detect_licence(root: Path) -> str | None:
    """The licence of the tree at ``root``: the SPDX ids of the licence files found there (several
    files of different licences mean a choice, joined with " OR "), or None."""
    if not root.is_dir():
        return None
    found: list[str] = []
    for path in sorted(root.iterdir()):
        if not (_FILE.match(path.name) and path.is_file()):
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")[:200_000]
        except OSError:
            continue
        spdx = licence_from_text(text)
        if spdx is not None and spdx not in found:
            found.append(spdx)
    return " OR ".join(found) or None
