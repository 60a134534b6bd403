"""The ``classgap`` command line: thin commands over the library.

Every user error (bad option, bad file, bad value) is one line on stderr and exit code 1, and
so is a full disk, wherever it arises (the path and "no space left on device");
``--verbose`` shows the traceback. ``classgap compare --fail-on-drop`` exits 3 when a class
drops significantly by more than the given number of points.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from classgap._format import error_line
from classgap.cli.app import app
from classgap.errors import ClassgapError, disk_full

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit with its status (0 ok, 1 user error, 3 ``--fail-on-drop``)."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit status instead of exiting."""
    args = _expand_variadic(list(sys.argv[1:] if argv is None else argv))
    verbose = "--verbose" in args or "-v" in args
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(err)
            code = app(args=args, prog_name="classgap", standalone_mode=False)
    except ClassgapError as exc:
        if verbose:
            raise
        err.print(_error(str(exc)))
        return 1
    except typer.TyperException as exc:  # usage errors: unknown option, bad choice...
        if verbose:
            raise
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            return 0
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        err.print(_error(exc.format_message() + hint))
        return 1
    except typer.Abort:
        err.print("aborted")
        return 130
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:  # a full disk under a write classgap does not make (torch, sqlite)
        if verbose or (full := disk_full(exc)) is None:
            raise
        err.print(_error(str(full)))
        return 1
    return code if isinstance(code, int) else 0


# Options that take several values in a row (`--baseline a.npz b.npz`), as shells expand globs.
# Click options take one value per flag, so each value gets its own flag before parsing.
_VARIADIC = {"compare": ("--baseline", "-b", "--candidate", "-c"),
             "fix": ("--reference", "-r", "--candidate", "-c")}


def _expand_variadic(args: list[str]) -> list[str]:
    command = next((a for a in args if not a.startswith("-")), None)
    flags = _VARIADIC.get(command or "", ())
    out: list[str] = []
    current: str | None = None
    for arg in args:
        if arg in flags:
            current = arg
            out.append(arg)
            continue
        if arg.startswith("-"):
            current = None
        elif current is not None and out[-1] != current:
            out.append(current)  # a further value of the same option
        out.append(arg)
    return out


def _warning_printer(err: Console) -> Callable[..., None]:
    """``warnings.showwarning`` for the CLI: each distinct message once, on one line, as text
    (no file and source line; like errors, never markup)."""
    seen: set[str] = set()

    def show(message: Warning | str, category: type[Warning], *args: Any,
             **kwargs: Any) -> None:
        text = error_line(str(message))
        if text in seen:
            return
        seen.add(text)
        label = "note:" if category.__name__ == "InferredClassesWarning" else "warning:"
        err.print(Text.assemble((label, "bold yellow"), " ", text))

    return show


def _error(message: str) -> Text:
    """``error: MESSAGE`` on one line. The message quotes user input (names, paths, a worker's
    exception): it is text, never rich markup, and loses ANSI codes and line breaks."""
    return Text.assemble(("error:", "bold red"), " ", error_line(message))
from classgap.cli import study_cmds  # noqa: E402,F401,I001  (registers study/report)
from classgap.cli import train_cmds  # noqa: E402,F401  (registers train/list)
from classgap.cli import diag_cmds  # noqa: E402,F401  (registers hessian)
from classgap.cli import fix_cmds  # noqa: E402,F401  (registers fix fit/apply)
