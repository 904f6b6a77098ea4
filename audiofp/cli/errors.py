"""The CLI's one mapping of errors to exit codes, and the one way a command fails.

Nothing else in ``audiofp`` knows about exit codes: the services raise our
errors (``audiofp.errors``), this table turns each into a code, and
:func:`fail` prints one line and exits. The root group calls :func:`fail` for
any error a command lets through; only the batch commands (``ingest``,
``match``) catch errors themselves, to go on with the next file.

Exit codes (documented in the README): 0 success; 1 some inputs of a batch
failed (the rest were done); 2 usage error (click's own); 3 bad input; 4 store
problem.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from ..errors import (
    AudioFPError,
    BadAudioError,
    ConflictError,
    IndexMismatchError,
    NotFoundError,
    ParameterError,
    RetryableError,
    StoreUnavailableError,
)

EXIT_PARTIAL, EXIT_BAD_INPUT, EXIT_STORE = 1, 3, 4

#: Error type -> exit code; the first type the error is an instance of wins, so
#: subclasses come before their bases. The line between 3 and 4 is who can fix
#: it: 3 when the user's own input is wrong (another file, id or value would
#: work), 4 when the store is (unreachable, or built by other code), so that a
#: script can tell "skip this input" from "stop and call an operator".
EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    # Not audio, truncated, silent, too long, too large, no audio track, nothing to fingerprint.
    (BadAudioError, EXIT_BAD_INPUT),
    # A value the user gave is out of range: a blank key name, a setting, a URL scheme.
    (ParameterError, EXIT_BAD_INPUT),
    # The user named a record that does not exist (a key or sound id).
    (NotFoundError, EXIT_BAD_INPUT),
    # The user asked for something the record's state forbids (revoking a revoked key).
    (ConflictError, EXIT_BAD_INPUT),
    # The index was built with other fingerprint parameters, or migrated by newer code:
    # no input can succeed until an operator acts.
    (IndexMismatchError, EXIT_STORE),
    # The database is unreachable, or another writer won a race: run the command again later.
    (StoreUnavailableError, EXIT_STORE),
    (RetryableError, EXIT_STORE),
    # Any other error of ours comes from the state of the store, not from one input.
    (AudioFPError, EXIT_STORE),
)

#: What a command may catch and hand to :func:`fail`; anything else is a bug and keeps its traceback.
KNOWN_ERRORS: tuple[type[Exception], ...] = tuple(cls for cls, _ in EXIT_CODES)


def exit_code(exc: Exception) -> int:
    """The exit code of a known error (:data:`EXIT_CODES`)."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    raise TypeError(f"not an error the CLI knows: {exc!r}") from exc


def is_input_error(exc: Exception) -> bool:
    """Whether ``exc`` concerns one input only, so a batch may go on with the next."""
    return exit_code(exc) == EXIT_BAD_INPUT


def one_line(exc: Exception) -> str:
    """The first line of the error's message (its type name if it has none)."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def fail(exc: Exception) -> NoReturn:
    """Print ``audiofp: error: <one line>`` on stderr and exit with the error's code."""
    click.echo(f"audiofp: error: {one_line(exc)}", err=True)
    sys.exit(exit_code(exc))
