"""The agents of the solve graph, one module per role; prompts are text files in ``agents/prompts/``.

    planner     plan, backward_plan            CodePLAN: forward plans, plans written from verified code
    decomposer  decompose                      AMR-Evol: function-module specs from instruction, plan, draft
    coder       draft, write                   AMR-Evol: direct draft, then the response evolved with
                                               retrieved modules; reference_uses, leaks_memory
    tester      write_tests, suites            SelfCodeAlign: self-written assert tests (shown the code, or
                                               blind), stdin/stdout cases for a program task
                                               (``_common.is_program``); the sandbox suites
    critic      judge, overrule, weak_tests    the model's verdict under rules no answer may break
    _suite      refusal, special_cases         what a suite must be before it counts; special-cased inputs
                io_refusal, io_special_cases   the same for a program's stdin/stdout cases

Every model call goes through ``codestill.structured.ask`` and returns its ``Reply``: a bad reply is a
recorded failure (``Reply.error``), never an exception.
"""

from agents._answers import (
    CoderAnswer,
    CriticAnswer,
    Decomposition,
    IOTestsAnswer,
    PlanAnswer,
    ReferenceUse,
    SpecAnswer,
    TestsAnswer,
)
from agents._common import is_program, keyed_random

__all__ = ["CoderAnswer", "CriticAnswer", "Decomposition", "IOTestsAnswer", "PlanAnswer", "ReferenceUse", "SpecAnswer",
           "TestsAnswer", "is_program", "keyed_random"]
