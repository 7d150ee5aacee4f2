"""Replaying recorded runs: the parts that only read traces (the solve graph's side is ``codestill.run._replay``).

``Recording.from_tree(store.tree(run))`` indexes a run's LLM calls and memory searches;
``ReplayChatModel`` answers from it; ``compare(original, replayed)`` says how two runs' verdicts and
routes differ. ``ReplayMismatch`` is what a replay stops with when the graph asks for a call (or a
memory search) the recording lacks.
"""

from codestill.traces._compare import Comparison, compare, route
from codestill.traces._recording import RecordedCall, Recording, ReplayError, ReplayMismatch
from codestill.traces._replay_model import RecordedCallError, ReplayChatModel

__all__ = ["Comparison", "RecordedCall", "RecordedCallError", "Recording", "ReplayChatModel", "ReplayError",
           "ReplayMismatch", "compare", "route"]
