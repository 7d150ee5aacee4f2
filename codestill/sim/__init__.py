"""codestill sim: the simulated teacher. A simulator, not a language model.

No model weights exist where codestill's tests, benchmarks and offline demo run, so they talk to
this stand-in instead: an HTTP server that speaks the real OpenAI chat-completions protocol (models,
chat completions, streaming, n choices, tool calls, response formats, usage, OpenAI error bodies)
and answers from a bank of reference problems (``codestill.data``: MBPP and HumanEval). It says so
everywhere it can: its ``/v1/models`` entry has ``owned_by: "codestill-simulator"`` and a
``description`` saying it is a simulator, and its first stdout line says the same.

How it answers:

- **Who asks.** The first system message starts with ``You are the codestill <role>.`` (a role of
  ``codestill.schemas.ROLES``); anything else is the "unknown" role.
- **About what.** The user messages are matched against the bank: an exact (normalised) quote of a
  problem's instruction first, else the best word overlap above a threshold (the entry point's name
  weighs more). No match: honest generic answers (the coder's function raises
  ``NotImplementedError("the simulator has no reference for this task")``).
- **What.** planner: steps read off the reference's AST (from a ```python block in the last user
  message instead: a backward plan); decomposer: the reference's top-level functions; coder: the
  reference (a line ``module: <name>`` asks for one function; a ``status: failed|error|timeout|oom|killed``
  line, as ``ExecResult.feedback()`` writes it, asks for a repair and gets the reference; with
  ``bug_rate`` a fresh answer may carry a planted bug, see ``tools.mutants``); tester: the bank's tests and,
  with ``strong_tests`` (the default), up to ten more of its own: edge cases and variants of the
  task's examples, expected values from running the reference (``_strong``; never EvalPlus's extra
  inputs, which judge the result afterwards); critic: follows the last ``status:`` line; the unknown
  role, asked in plain words (no schema) about a known problem, as ``codestill eval`` and students ask:
  the coder's answer in a ```python block, or a numbered plan when the last user message asks to write
  a plan; the evolver and the conceptor (Code Evol-Instruct, SelfCodeAlign): see ``_instruct``. With
  ``knowledge`` (``--knowledge seeds.jsonl``) it also knows the given seed functions as problems, with
  tests worked out by running them (``_seeds``). A program task (the conceptor's "program" category,
  ``_program``) is a known problem asked as a script: the coder answers with the reference and a main
  that reads the arguments from stdin and prints the result, the tester with stdin/stdout cases whose
  outputs come from running the reference. Field names are those of the records in
  ``codestill.schemas``; a tool call or JSON schema gets them fitted to its schema (``_fit``).
- **Which teacher.** ``teacher="default"`` (the above) is an answer key. ``teacher="realistic"``
  (``--teacher realistic``) errs the way real teachers do, so the verification gates can be tested
  against it (``_teacher``, ``_suites``, ``_special``): the tester writes a flawed suite at
  ``test_flaw_rate`` (0.4: wrong expected values from a mutant of the reference, tautologies,
  shape-only checks, uncalled ``def test_...`` functions, asserts that never call the entry point or a
  copy of the reference named as the entry point ahead of them, a syntax error, a single assert) and,
  asked again over a dispute (``schemas.ASKED_AGAIN`` ... ``DISPUTE``), repeats its previous tests
  verbatim at ``stubborn_rate`` (0.25); the coder's fresh answer is flawed at ``code_flaw_rate`` (0.3:
  the given tests hard-coded, a planted bug, prose around the code, a misnamed entry point) and a
  repair shown failing asserts bends the previous solution to them at ``bend_rate`` (0.5); the critic
  errs at ``critic_flaw_rate`` (0.25: accepts whatever the status, a verdict outside the schema or none,
  a reject reason outside the taxonomy); the planner gives a vague plan at ``plan_flaw_rate`` (0.2).
  On a program task the tester's flawed cases are a wrong expected output, a single case, or one output
  for every input, and the coder's flaw is a planted bug in the script.
  Each rate given explicitly applies in either profile (``SimConfig.rates()``); every roll is keyed on
  the seed, the problem, the request's user text and the choice, so a re-ask with another prompt rolls
  again. The flaws are labelled in the ``x-codestill-sim-flaws`` response header (one label per
  choice, ``-`` for none), never in the body.
- **How.** ``latency_s`` before the first token, ``tokens_per_s`` after; faults (429, 500, hang,
  bad_json, truncate) at ``fault_rate``, rolled per request so a retry of the same request rolls again.

- **Which server.** ``server`` (``--server``) copies how a real server treats tools and
  ``response_format``, so that ``llm.structured=auto`` can be checked against each: "sim" (the
  default), "openai" and "vllm" honour tool calls (named, "auto", "required") and JSON schemas;
  "vllm-no-tool-parser" (``vllm serve`` without ``--enable-auto-tool-choice --tool-call-parser``)
  refuses any ``tool_choice`` but "none" with HTTP 400 and honours JSON schemas; "transformers-serve"
  ignores both and answers in prose (``tools=False``, ``--no-tools``, means the same). ``/health``
  counts the chat requests received.

Everything random is keyed on ``SimConfig.seed``: the same seed and requests give the same replies.

    with serve_subprocess(SimConfig(bug_rate=0.3)) as base_url:   # "http://127.0.0.1:PORT/v1"
        ChatOpenAI(base_url=base_url, api_key="sk-test", model="codestill-sim")

or from a shell: ``codestill sim serve --port 8000 --latency 0.2 --fault-rate 0.05`` (an imperfect
teacher: ``codestill sim serve --teacher realistic``, with any rate overridden, e.g. ``--test-flaw-rate 0.5``).
"""

from __future__ import annotations

from codestill.schemas import SCHEMA_MARKER
from codestill.sim._app import DESCRIPTION, OWNER, create_app, warm_tester
from codestill.sim._config import (
    FAULT_KINDS,
    PROFILES,
    SERVERS,
    TEACHERS,
    FaultKind,
    Server,
    SimConfig,
    Teacher,
    TeacherRates,
)
from codestill.sim._serve import ANNOUNCE, run_server, serve_subprocess
from tools.mutants import MUTATIONS, mutants, plant_bug

__all__ = [
    "ANNOUNCE",
    "DESCRIPTION",
    "FAULT_KINDS",
    "MUTATIONS",
    "OWNER",
    "PROFILES",
    "SCHEMA_MARKER",
    "SERVERS",
    "TEACHERS",
    "FaultKind",
    "Server",
    "SimConfig",
    "Teacher",
    "TeacherRates",
    "create_app",
    "mutants",
    "plant_bug",
    "run_server",
    "serve_subprocess",
    "warm_tester",
]
