"""The house in numbers: floors, circles, package shares, and what ``import graphs`` costs.

    python bench/structure.py [--runs 5] [--baseline DIR]

``--baseline DIR``: another checkout (``git worktree add /tmp/old REV``) whose ``import graphs`` is timed
in the same run, interleaved with this one's, for a side-by-side ratio.

Reads the code's own imports (``tests/test_structure.py`` holds the floors and the checker) and times
fresh interpreters importing ``graphs`` beside a bare one, so the import's own cost is the difference.
Last line: ``structure: up_imports=N circles=N largest=PKG SHARE import_graphs_s=S modules=N backends=...``.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_structure import BACKENDS, PACKAGES, _modules, cycles, floor, imports, package_imports  # noqa: E402


def _once(code: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def _loaded(cwd: Path) -> list[str]:
    probe = "import sys, json; import graphs; print(json.dumps(sorted(sys.modules)))"
    return json.loads(subprocess.run([sys.executable, "-c", probe], cwd=cwd, check=True, capture_output=True,
                                     text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="Fresh interpreters per measurement (median).")
    parser.add_argument("--baseline", type=Path, help="Another checkout to time `import graphs` in, side by side.")
    args = parser.parse_args()

    edges = imports()
    up = [(m, t) for m, ts in edges.items() for t in ts if floor(t) > floor(m)]
    between = {a: {b for b in bs if not b.startswith(a + ".")} for a, bs in package_imports().items()}
    circles = cycles(between)
    lines = collections.Counter()
    for mod, path in _modules().items():
        lines[mod.split(".")[0]] += len(path.read_text().splitlines())
    total = sum(lines.values())
    mods = _modules()
    packages = {m for m, p in mods.items() if p.name == "__init__.py"}
    units = collections.Counter()  # the house's rooms: sub-packages apart, the spine's loose modules as its ground
    for mod, path in mods.items():
        unit = mod if mod in packages else mod.rsplit(".", 1)[0]
        units[unit.split(".")[0] if unit.count(".") > 1 else unit] += len(path.read_text().splitlines())

    dirs = {"here": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    times: dict[str, list[float]] = collections.defaultdict(list)
    _once("import graphs", ROOT)  # warm the file cache for both
    for _ in range(args.runs):  # interleaved, so a busy moment hurts both alike
        times["bare"].append(_once("import sys", ROOT))
        for name, cwd in dirs.items():
            times[name].append(_once("import graphs", cwd))
    bare = statistics.median(times["bare"])
    with_graphs = statistics.median(times["here"])
    loaded = _loaded(ROOT)
    tops = collections.Counter(m.split(".")[0] for m in loaded)
    ours = sorted(m for m in loaded if m.split(".")[0] in PACKAGES)
    backends = sorted(set(tops) & set(BACKENDS))

    print(f"imports that run up a floor: {len(up)}")
    for m, t in up:
        print(f"  {m} -> {t}")
    print(f"circles between packages (and sub-packages): {len(circles)} {circles if circles else ''}")
    print("lines per package:")
    for pkg, n in lines.most_common():
        print(f"  {pkg:<10} {n:>6}  {n / total:6.1%}")
    print("lines per package, sub-packages apart (codestill = the spine's ground floor):")
    for unit, n in units.most_common(8):
        print(f"  {unit:<20} {n:>6}  {n / total:6.1%}")
    print(f"import graphs: {with_graphs - bare:.2f} s over a bare interpreter ({with_graphs:.2f} s vs {bare:.2f} s, "
          f"median of {args.runs}); {len(loaded)} modules, {len(ours)} of them codestill's")
    print("  largest third-party packages loaded: " + ", ".join(
        f"{k} {n}" for k, n in tops.most_common() if k not in PACKAGES and not k.startswith("_"))[:400])
    print(f"  backends loaded: {', '.join(backends) or 'none'} (checked: {', '.join(BACKENDS)})")
    if args.baseline:
        old = statistics.median(times["baseline"]) - bare
        old_loaded = _loaded(args.baseline)
        old_backends = sorted({m.split(".")[0] for m in old_loaded} & set(BACKENDS))
        print(f"baseline {args.baseline}: import graphs {old:.2f} s, {len(old_loaded)} modules, backends "
              f"{', '.join(old_backends) or 'none'}; here / baseline = {(with_graphs - bare) / old:.2f}")
    pkg, n = units.most_common(1)[0]
    print(f"structure: up_imports={len(up)} circles={len(circles)} largest={pkg} {n / total:.0%} "
          f"import_graphs_s={with_graphs - bare:.2f} modules={len(loaded)} backends={','.join(backends) or 'none'}")


if __name__ == "__main__":
    main()
