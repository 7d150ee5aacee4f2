"""The strict verification gates (graphs/_verify.py), each against the teacher error it exists for.

Scripted models that are wrong the way real teachers are, on the sandbox's own harness and verdicts
(``LocalSandbox``). A scripted model here never improves unless it is told why (the tester reads the
reason it is given), so a test that passes shows the gate's message got through, not that the script
was kind.
"""

from __future__ import annotations

from typing import Any

from codestill.schemas import DISPUTE, Task, TestSuite
from tests.graphs.conftest import RoleModel
from tests.graphs.test_solve import PLAN, answers
from tests.graphs.test_solve import run as solve_run

# A task with no given tests: the tester's suite is all the evidence there is (SelfCodeAlign's case).
TASK = Task(id="t/max", instruction="Write a function bigger(a, b) that returns the larger of two numbers.",
            entry_point="bigger")
RIGHT = "def bigger(a, b):\n    \"\"\"The larger of a and b.\"\"\"\n    if a >= b:\n        return a\n    return b\n"
WRONG = "def bigger(a, b):\n    \"\"\"The larger of a and b.\"\"\"\n    if a >= b:\n        return b\n    return a\n"
STRONG = "assert bigger(1, 2) == 2\nassert bigger(5, 3) == 5\nassert bigger(-1, -4) == -1\nassert bigger(7, 7) == 7\n"
DECOMPOSED = {"modules": [{"name": "bigger", "signature": "def bigger(a, b)", "description": "The larger."}]}


def gated(coder: Any = RIGHT, tester: Any = None, critic: Any = None) -> RoleModel:
    base = answers(coder=coder, critic=critic, tester=tester if tester is not None else {"tests": STRONG})

    def answer(role: str, text: str) -> Any:
        return DECOMPOSED if role == "decomposer" else base(role, text)
    return RoleModel(answer=answer)


def only_when_told(bad: str, told: str) -> Any:
    """A tester that writes ``bad`` until its prompt says ``told`` (and shows it ``bad`` again)."""
    def tester(text: str) -> Any:
        improved = "## Why you are asked again" in text and told in text and bad.strip() in text
        return {"tests": STRONG if improved else bad, "entry_point": "bigger"}
    return tester


def run(*args: Any, **settings: Any) -> Any:
    settings.setdefault("tester_samples", 1)  # one sample unless a test is about the blind one
    return solve_run(*args, **settings)


def prompts_of_tester(model: RoleModel) -> list[str]:
    return [text for role, text in model.seen if role == "tester"]


# ---- the tester's errors ------------------------------------------------------------------------

FLAWED_SUITES = {
    "tautology": ("assert bigger(1, 2) == bigger(1, 2)\nassert bigger(3, 1) == bigger(3, 1)\n"
                  "assert bigger(0, 0) == bigger(0, 0)\n", "no assert compares a call of `bigger`"),
    "type_and_length_only": ("assert isinstance(bigger(1, 2), int)\nassert bigger(3, 1) is not None\n"
                             "assert type(bigger(0, 0)) == int\n", "no assert compares a call of `bigger`"),
    "pytest_functions_never_called": ("def test_bigger():\n    assert bigger(1, 2) == 2\n    assert bigger(5, 3) == 5\n"
                                      "    assert bigger(-1, -4) == -1\n", "nothing calls them"),
    "never_calls_the_entry_point": ("def larger(a, b):\n    return max(a, b)\nassert larger(1, 2) == 2\n"
                                    "assert larger(5, 3) == 5\nassert larger(-1, -4) == -1\n",
                                    "no assert compares a call of `bigger`"),
    "syntax_error": ("assert bigger(1, 2) == 2\nassert bigger(5, 3 == 5\n", "do not parse"),
    "too_few_inputs": ("assert bigger(1, 2) == 2\n", "only 1 distinct input"),
    "defines_the_entry_point": (f"{RIGHT}assert bigger(1, 2) == 2\nassert bigger(5, 3) == 5\n"
                                "assert bigger(-1, -4) == -1\n", "define or assign `bigger`"),
}


def test_each_flawed_suite_goes_back_to_the_tester_with_the_reason(tmp_path):
    for name, (suite, reason) in FLAWED_SUITES.items():
        model = gated(tester=only_when_told(suite, reason))
        t = run(tmp_path / name, model, task=TASK)
        assert t.verdict == "accepted", (name, t.reason)
        first = t.attempts[0]
        assert first.critique.weak_tests and reason in first.critique.issues[0], (name, first.critique)
        assert first.result is None, name  # refused before it ran: no sandbox run was spent on it
        assert len(prompts_of_tester(model)) == 2 and model.calls("coder") == 1, name  # the draft stands; the coder was not asked again


def test_a_flawed_suite_from_a_tester_that_never_learns_is_never_accepted(tmp_path):
    for name, (suite, _) in FLAWED_SUITES.items():
        # a wrong candidate: any of these suites would have let it through in wave 1 (or crashed on it)
        model = gated(coder=WRONG, tester={"tests": suite, "entry_point": "bigger"}, critic={"verdict": "accept"})
        t = run(tmp_path / name, model, task=TASK, max_replans=0)
        assert t.verdict == "rejected" and t.reason.startswith("repeated_failure"), (name, t.reason)
        assert len(prompts_of_tester(model)) == 3, name  # the first suite and test_rounds=2 more


def test_the_tester_redefining_the_entry_point_with_an_unreadable_critic(tmp_path):
    """The exact scenario that let a wrong solution through: the tester's block (re)defines the entry
    point, its tests pass against its own copy, and the critic's reply cannot be read."""
    suite = FLAWED_SUITES["defines_the_entry_point"][0]
    for gates in ("strict", "legacy"):
        model = gated(coder=WRONG, tester={"tests": suite, "entry_point": "bigger"}, critic="I think it is fine")
        t = run(tmp_path / gates, model, task=TASK, gates=gates, max_replans=0)
        assert t.verdict != "accepted" and t.final_code is None, (gates, t.reason)
        if gates == "legacy":
            # even with wave 1's gates, the sandbox now binds the candidate: the copy replaces nothing
            assert not t.attempts[0].result.passed


def test_a_wrong_expected_value_is_disputed_and_rederived(tmp_path):
    wrong = STRONG.replace("bigger(5, 3) == 5", "bigger(5, 3) == 3")

    def tester(text: str) -> Any:
        rederive = DISPUTE in text and "- assert bigger(5, 3) == 3" in text
        return {"tests": STRONG if rederive else wrong}
    model = gated(tester=tester)
    t = run(tmp_path, model, task=TASK)
    assert t.verdict == "accepted" and t.final_code == RIGHT
    assert model.calls("coder") == 1  # the draft stands: the right code was never "repaired" toward the wrong test
    dispute = next(p for p in prompts_of_tester(model) if DISPUTE in p)
    assert "- assert bigger(5, 3) == 3\n" in dispute  # the failing call and its expected value ...
    assert "5 == 3" not in dispute  # ... but not the code's answer, which a tester tends to adopt


def test_a_kept_wrong_test_and_a_coder_that_bends_to_it_are_not_accepted(tmp_path):
    wrong = STRONG.replace("bigger(5, 3) == 5", "bigger(5, 3) == 3")
    bent = RIGHT.replace("    if a >= b:", "    if (a, b) == (5, 3):\n        return 3\n    if a >= b:")
    model = gated(tester={"tests": wrong}, coder=lambda text: bent if "status: failed" in text else RIGHT,
                  critic={"verdict": "accept"})
    t = run(tmp_path, model, task=TASK, max_replans=0)
    assert t.verdict == "rejected" and t.final_code is None
    assert any("special-cases a test: `bigger(5, 3)`" in i for a in t.attempts for i in a.critique.issues)


def test_tests_that_do_not_run_go_back_to_the_tester_with_the_error(tmp_path):
    broken = "import no_such_module\n" + STRONG
    model = gated(tester=only_when_told(broken, "No module named 'no_such_module'"))
    t = run(tmp_path, model, task=TASK)
    assert t.verdict == "accepted" and model.calls("coder") == 1
    assert "your tests did not run" in t.attempts[0].critique.issues[0]


def test_a_weak_suite_is_judged_by_mutants_and_shown_the_survivors(tmp_path):
    ties = "assert bigger(1, 1) == 1\nassert bigger(2, 2) == 2\nassert bigger(3, 3) == 3\n"  # 3 inputs, no order
    model = gated(tester=only_when_told(ties, "changed versions of the solution pass"))
    t = run(tmp_path, model, task=TASK)
    assert t.verdict == "accepted" and t.mutation_score is not None and t.mutation_score >= 0.6
    first = t.attempts[0]
    assert first.result.passed and first.critique.weak_tests and first.mutation_score < 0.6
    assert "`if a >= b:` -> `if a > b:`" in prompts_of_tester(model)[1]  # a survivor, shown as a counterexample
    assert "mutation score" in t.reason


# ---- the coder's errors ---------------------------------------------------------------------------

def test_code_that_special_cases_every_test_is_repaired(tmp_path):
    hard = ("def bigger(a, b):\n    if (a, b) == (1, 2):\n        return 2\n    if (a, b) == (5, 3):\n        return 5\n"
            "    if (a, b) == (-1, -4):\n        return -1\n    if (a, b) == (7, 7):\n        return 7\n    return 0\n")
    model = gated(coder=lambda text: RIGHT if "special-cases a test" in text else hard, critic={"verdict": "accept"})
    t = run(tmp_path, model, task=TASK)
    assert t.verdict == "accepted" and t.final_code == RIGHT
    assert t.attempts[0].result.passed and t.attempts[0].critique.verdict == "repair"


def test_prose_around_the_code_is_read_and_a_misnamed_entry_point_goes_to_the_coder(tmp_path):
    prose = f"Here is my solution:\n```python\n{RIGHT}```\nIt compares the two numbers."
    t = run(tmp_path / "prose", gated(coder=prose), task=TASK)
    assert t.verdict == "accepted" and t.final_code == RIGHT
    misnamed = RIGHT.replace("def bigger", "def Bigger")
    model = gated(coder=lambda text: RIGHT if "status: error" in text else misnamed)
    t = run(tmp_path / "misnamed", model, task=TASK)
    assert t.verdict == "accepted" and len(prompts_of_tester(model)) == 1  # the tests were not blamed


# ---- the critic's errors --------------------------------------------------------------------------

def test_a_critic_that_accepts_failing_code_is_overruled(tmp_path):
    model = gated(coder=lambda text: RIGHT if "status: failed" in text else WRONG, critic={"verdict": "accept"},
                  tester={"tests": STRONG})
    t = run(tmp_path, model, task=TASK)
    assert t.verdict == "accepted" and t.final_code == RIGHT
    assert [a.critique.verdict for a in t.attempts][-2:] == ["repair", "accept"]


def test_an_unreadable_critic_is_asked_again_and_never_accepts(tmp_path):
    replies = iter(["LGTM!", "LGTM!", {"verdict": "accept"}])  # a call's own repair round, then a second call
    t = run(tmp_path / "second", gated(critic=lambda text: next(replies)), task=TASK)
    assert t.verdict == "accepted" and any(f.startswith("critic") for f in t.failures)
    off_taxonomy = {"verdict": "reject", "reason": "too_hard", "issues": ["meh"]}
    for name, reply in (("prose", "Looks fine to me."), ("off_taxonomy", off_taxonomy),
                        ("bad_verdict", {"verdict": "LGTM"})):
        t = run(tmp_path / name, gated(critic=reply), task=TASK, max_replans=0)
        assert t.verdict == "rejected" and t.reason.startswith("model_failure"), (name, t.reason)
        assert "the critic's reply could not be read" in t.reason


def test_a_vague_plan_is_let_through_when_the_code_is_verified(tmp_path):
    model = gated()
    base = model.answer
    model.answer = lambda role, text: {"steps": ["Solve the problem."]} if role == "planner" else base(role, text)
    t = run(tmp_path, model, task=TASK)
    assert t.verdict == "accepted" and t.plans[0].steps == ("Solve the problem.",)


# ---- a second, blind sample of the tester ------------------------------------------------------------

def test_a_wrong_value_shared_by_the_code_and_the_suite_is_caught_by_a_blind_sample(tmp_path):
    """The code and the tester's suite agree on a wrong answer (the same slip twice): only an
    independent sample, written without seeing the code, can disagree."""
    shared = "assert bigger(1, 2) == 1\nassert bigger(5, 3) == 3\nassert bigger(-1, -4) == -4\nassert bigger(7, 7) == 7\n"

    def tester(text: str) -> Any:
        blind = "The solution is not shown to you" in text
        return {"tests": STRONG if blind or DISPUTE in text else shared}
    model = gated(coder=lambda text: RIGHT if "status: failed" in text else WRONG, tester=tester,
                  critic={"verdict": "accept"})
    alone = run(tmp_path / "one", model, task=TASK, tester_samples=1)
    assert alone.verdict == "accepted" and alone.final_code == WRONG  # one sample cannot see it
    model.seen.clear()
    t = run(tmp_path / "two", model, task=TASK, tester_samples=2)
    assert t.verdict == "accepted" and t.final_code == RIGHT
    first = prompts_of_tester(model)[:2]
    assert sum("The solution is not shown to you" in p for p in first) == 1  # one shown the code, one blind
    assert "if a >= b" not in next(p for p in first if "not shown" in p)  # no line of the code


def test_disputed_values_stand_when_the_tester_does_not_take_them_back(tmp_path):
    """The re-derivation cannot be read, and the fresh blind sample happens to agree with the wrong
    code: the disputed values were never taken back, so they still judge the code."""
    shared = "assert bigger(1, 2) == 1\nassert bigger(5, 3) == 3\nassert bigger(-1, -4) == -4\nassert bigger(7, 7) == 7\n"

    def tester(text: str) -> Any:
        if "not shown to you" in text:
            return {"tests": STRONG if "Independent sample 1:" in text else shared}
        return {"tests": "assert bigger(1, 2 == 2\n" if DISPUTE in text else STRONG}
    model = gated(coder=lambda text: RIGHT if "status: failed" in text else WRONG, tester=tester)
    t = run(tmp_path, model, task=TASK, tester_samples=2, max_replans=0)
    assert t.final_code != WRONG, t.reason
    assert any(DISPUTE in p for p in prompts_of_tester(model))


def test_no_accept_rests_only_on_tests_that_saw_the_code(tmp_path):
    def tester(text: str) -> Any:  # blind samples are never usable (one input only)
        return {"tests": "assert bigger(1, 2) == 2\n" if "not shown to you" in text else STRONG}
    model = gated(tester=tester)
    t = run(tmp_path, model, task=TASK, tester_samples=2, max_replans=0)
    assert t.verdict == "rejected" and "written without seeing the solution" in t.reason
    blind = [p for p in prompts_of_tester(model) if "not shown to you" in p]
    assert len(blind) == 3 * 3  # each of the three rounds: a blind sample and two more tries, told why
    assert sum("## Why you are asked again" in p for p in blind) == 6


# ---- selection ------------------------------------------------------------------------------------

def test_branches_are_compared_on_each_others_tests(tmp_path):
    """Plan 1's code is wrong on ties but passes its own (adequate) suite; plan 2's suite catches it."""
    tie_wrong = "def bigger(a, b):\n    if a > b:\n        return a\n    if a < b:\n        return b\n    return 0\n"
    own = "assert bigger(1, 2) == 2\nassert bigger(5, 3) == 5\nassert bigger(-1, -4) == -1\n"
    plans = iter([{"steps": ["Compare strictly."]}, PLAN])

    def tester(text: str) -> Any:
        return {"tests": own if "return 0" in text else STRONG}
    model = gated(coder=lambda text: tie_wrong if "strictly" in text else RIGHT, tester=tester)
    base = model.answer
    model.answer = lambda role, text: next(plans, PLAN) if role == "planner" and "verified" not in text \
        else base(role, text)
    for seed in range(4):  # whatever the seed, the branch that fails the other's tests loses
        t = run(tmp_path / str(seed), model, task=TASK, plans=2, selection_seed=seed,
                max_repairs=0, max_replans=0, mutants=0)  # the selection alone: plan 1's suite is weak by mutants
        plans = iter([{"steps": ["Compare strictly."]}, PLAN])
        assert t.verdict == "accepted" and t.final_code == RIGHT, t.reason
        assert f"selection seed {seed}" in t.reason and "1 of 2 accepted branches" in t.reason


def test_equal_branches_are_picked_at_random_with_the_seed_recorded(tmp_path):
    other = RIGHT.replace('"""The larger of a and b."""', '"""Return a if it is not smaller than b, else b."""')
    chosen = set()
    for seed in range(8):
        plans = iter([{"steps": ["Compare a with b."]}, {"steps": ["Pick the larger."]}])
        model = gated(coder=lambda text: other if "Pick" in text else RIGHT)
        base = model.answer
        model.answer = (lambda it, b: lambda role, text: next(it, PLAN) if role == "planner" and "verified" not in text
                        else b(role, text))(plans, base)
        t = run(tmp_path / str(seed), model, task=TASK, plans=2, selection_seed=seed,
                max_repairs=0, max_replans=0)
        assert t.verdict == "accepted" and "2 of 2 accepted branches" in t.reason and f"seed {seed}" in t.reason
        chosen.add(t.final_code)
    assert chosen == {RIGHT, other}  # not always the shorter one


def test_the_given_tests_are_never_disputed(tmp_path):
    given = "assert bigger(2, 9) == 9\nassert bigger(9, 2) == 9\nassert bigger(4, 4) == 4\nassert bigger(-3, 1) == 1\n"
    task = TASK.model_copy(update={"tests": TestSuite(code=given)})
    model = gated(coder=lambda text: RIGHT if "status: failed" in text else WRONG, tester={"tests": ""})
    t = run(tmp_path, model, task=task)
    assert t.verdict == "accepted" and len(prompts_of_tester(model)) == 1, t.reason
