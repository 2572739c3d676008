"""`ragortune` command line: registers every command module on one Typer app."""

from __future__ import annotations

import sys

from ragortune.config import configure_threads
from ragortune.errors import RagortuneError

# Thread pools read their sizes once, when numpy and torch load: set them before anything does.
try:
    configure_threads()
    _THREADS_ERROR: RagortuneError | None = None
except RagortuneError as _exc:
    _THREADS_ERROR = _exc

from ragortune.cli.app import app, err_console, print_error  # noqa: E402

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
    if _THREADS_ERROR is not None:
        print_error(_THREADS_ERROR)
        sys.exit(2)
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
