"""``python -m codestill.sim [flags]``: the same as ``codestill sim serve [flags]``."""

from __future__ import annotations

import sys

import typer

from codestill.errors import CodestillError
from codestill.sim._command import serve


def main() -> None:
    try:
        typer.run(serve)
    except CodestillError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
