"""`ragortune` command line: registers every command module on one Typer app."""

from __future__ import annotations

import sys

from ragortune.cli.app import app, err_console, print_error
from ragortune.errors import RagortuneError

# Each import registers its commands on `app`.
from ragortune.cli import kb  # noqa: E402,F401
from ragortune.cli import cost  # noqa: E402,F401
from ragortune.cli import eval as eval_cli  # noqa: E402,F401
from ragortune.cli import eval_answers  # noqa: E402,F401
from ragortune.cli import tune  # noqa: E402,F401
from ragortune.cli import answers  # noqa: E402,F401
from ragortune.cli import compare  # noqa: E402,F401
from ragortune.cli import report  # noqa: E402,F401


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app(standalone_mode=False)
    except RagortuneError as exc:
        print_error(exc)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted: the knowledge base keeps its last consistent state")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click's own usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise


__all__ = ["app", "main"]
