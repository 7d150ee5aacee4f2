"""What an accepted solution leaves in the function-module memory (AMR-Evol's module database).

Each top-level function of the accepted code becomes a module, made runnable on its own: the
solution's imports, the function, and the top-level functions it calls (transitively). A module
enters only verified: the solution that contains it passed every test in the sandbox (its visible
and its held-back tests), and the module record carries that run and those tests. Unlike AMR-Evol,
whose final responses are never executed, ours are, so this is a real check. A function that is
a retrieved module reused unchanged is not added again; it gets its reuse counted instead. A function
that reads stdin or prints (a program's ``main``) is I/O glue for one task, and its suite is that
task's stdin/stdout cases: it is left out, while the functions it calls go in.
"""

from __future__ import annotations

import ast
import asyncio

from agents.coder import reference_uses
from codestill.schemas import ExecResult, Module, ModuleSpec, TestSuite, Verification
from graphs._deps import SolveDeps
from graphs._state import SolveState
from tools.code import function_info, normalized_hash, parse_quietly


def standalone_modules(code: str) -> dict[str, str]:
    """name -> runnable source of each top-level function: imports + the function + what it calls."""
    try:
        tree = parse_quietly(code)
    except SyntaxError:
        return {}
    imports = [ast.get_source_segment(code, n) or "" for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    fns = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    calls = {name: {c.func.id for c in ast.walk(fn) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                    and c.func.id in fns and c.func.id != name} for name, fn in fns.items()}
    out: dict[str, str] = {}
    for name in fns:
        needed, todo = {name}, [name]
        while todo:
            for callee in calls[todo.pop()] - needed:
                needed.add(callee)
                todo.append(callee)
        # In the solution's order, so a helper is defined before the function that calls it.
        parts = [ast.get_source_segment(code, fn) or "" for n, fn in fns.items() if n in needed]
        out[name] = "\n".join([*imports, "", *parts]).strip() + "\n" if imports else "\n\n".join(parts) + "\n"
    return out


def io_functions(code: str) -> set[str]:
    """The top-level functions of ``code`` that read standard input or print themselves: ``input()``,
    ``print()``, ``sys.stdin`` in their own body (not in what they call)."""
    try:
        tree = parse_quietly(code)
    except SyntaxError:
        return set()
    out: set[str] = set()
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("input", "print")) \
                    or (isinstance(node, ast.Attribute) and node.attr == "stdin"):
                out.add(fn.name)
                break
    return out


async def commit_modules(state: SolveState, deps: SolveDeps, trajectory_id: str) -> tuple[list[str], list[str]]:
    """Returns (ids of reused memory modules, ids of the records the new modules went into)."""
    chosen, memory = state.get("chosen"), deps.memory
    assert chosen is not None and chosen.code_key is not None and memory is not None
    code = deps.artefacts.get(chosen.code_key)
    branch_hits = state.get("hits", [])
    uses = reference_uses(code, branch_hits)
    reused = sorted(i for i, use in uses.items() if use in ("reused", "adapted"))
    unchanged = {normalized_hash(h.module.code) for h in branch_hits if uses.get(h.module.id) == "reused"}
    tests = TestSuite.model_validate_json(deps.artefacts.get(chosen.tests_key)) if chosen.tests_key else None
    result = ExecResult.model_validate_json(deps.artefacts.get(chosen.result_key)) if chosen.result_key else None
    verification = Verification(run_id=result.run_id if result else None, tests_passed=chosen.passed,
                                tests_total=chosen.total)
    modules: list[Module] = []
    plumbing = io_functions(code)
    for name, source in standalone_modules(code).items():
        try:
            info = function_info(source, name)
            if normalized_hash(source) in unchanged or name in plumbing:
                continue
        except (SyntaxError, ValueError):
            continue
        spec = ModuleSpec(name=name, signature=info.signature, description=chosen.descriptions.get(name, ""))
        modules.append(Module(spec=spec, code=source, verified=chosen.passed == chosen.total > 0,
                              task_id=state["task"].id, tests=tests, verification=verification,
                              trajectory_id=trajectory_id))
    # All at once: the memory groups concurrent adds into one write (and dedups within it, in this order).
    adds = asyncio.gather(*(memory.aadd(m) for m in modules))
    if reused:
        _, results = await asyncio.gather(memory.amark_reused(reused), adds)
    else:
        results = await adds
    return reused, [r.id for r in results if r.id is not None]
