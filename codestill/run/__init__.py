"""The run wing: everything that runs the graphs for a user, below the CLI and above the graphs.

    open_deps(settings, mode)  the one place the live dependencies (models, sandbox, memory, traces,
                               checkpoints) are built, for a session, a batch, a replay, an evaluation
                               or LangGraph Studio
    RunDir                     a batch run's directory: its file names and its committed records
    _runner, _batch, _ledger   the batch runner, its per-input work and its commit point
    _tally, _display, _ray     counting, showing and sharding a batch
    _inputs                    every seed format, read line by line
    _pipelines, _rounds        which graphs a batch chains; evolution over rounds
    _session                   interactive sessions (codestill solve / chat) over checkpoints
    _replay                    running a recorded solve again
"""

from codestill.run._deps import Deps, Mode, open_deps
from codestill.run._rundir import Committed, RunDir

__all__ = ["Committed", "Deps", "Mode", "RunDir", "open_deps"]
