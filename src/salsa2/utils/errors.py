"""User errors and the one way they are reported: a fault the user can fix is one line on stderr naming the
file/row/value and the fix, exit code 2; the traceback only with ``--verbose`` (CLI) or ``SALSA2_VERBOSE=1``
(stages)."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import TypeVar


class UserError(Exception):
    """A fault the user can fix (bad input, missing file, wrong option); never a bug."""


F = TypeVar("F", bound=Callable)
EXIT_USER_ERROR = 2
VERBOSE = {"on": bool(os.environ.get("SALSA2_VERBOSE"))}


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input, a missing file or a wrong option (each message names what and the fix):
    every salsa2 user error subclasses :class:`UserError`; OS and decoding errors name their file."""
    return (UserError, ValueError, OSError, UnicodeError)


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"error: {text}"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user error into ``error: <one line>`` on stderr and exit code 2 (re-raised when verbose)."""
    try:
        yield
    except user_error_types() as err:
        if VERBOSE["on"]:
            raise
        if isinstance(err, KeyboardInterrupt):  # pragma: no cover - not a user error type
            raise
        print(one_line(err), file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None


def cli_command(fn: F) -> F:
    """Decorator for typer commands: user errors -> one line, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with user_errors():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def run_stage(main: Callable[[], object]) -> None:
    """Run a stage script's ``main``: user errors -> one line, exit 2 (``SALSA2_VERBOSE=1``: the traceback)."""
    with user_errors():
        main()
