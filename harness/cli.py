"""``lossfuzz``: the command line, the argparse face over :mod:`harness.commands`.

Exit codes: 0 success; 1 findings (a gate regression, ``audit --fail-on``, a regression marked by ``compare``); 2 bad input: a
:class:`~harness.options.UsageError` or an argparse error, one line on stderr (``--debug`` adds the
traceback); 3 an internal error: any other exception is a bug in lossfuzz, never dressed as bad input,
so it is shown with its traceback; 130 interrupted (143 when a SIGTERM came while the reports were written).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback
from typing import Sequence

from .commands import COMMANDS
from .options import UsageError

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FINDINGS", "EXIT_USAGE", "EXIT_INTERNAL", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is the one line that says what is wrong (``--help`` shows the usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"lossfuzz: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lossfuzz",
        description="Numerical verification and fuzzing of ML loss functions against exact oracles.",
        epilog="exit codes: 0 done, 1 findings (gate regression, audit --fail-on, compare regression), 2 bad input,"
        " 3 internal error (a bug: please report it with the traceback), 130 interrupted (143: a SIGTERM while the"
        " reports were written)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():  # each command module declares its own subparser
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:  # a second Ctrl-C while the first one's message was printed: still 130
        return _interrupted(exc, quiet=True, ignore_more=argv is None)


def _main(argv: Sequence[str] | None) -> int:
    from ._files import WriteError, release_locks

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except (UsageError, WriteError) as exc:  # bad input, or a file that cannot be written (named)
        if args.debug:
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"lossfuzz: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        return _interrupted(exc, ignore_more=argv is None)
    except Exception as exc:  # noqa: BLE001 - a bug: shown in full, with its own exit code
        traceback.print_exc()
        print(f"lossfuzz: internal error: {type(exc).__name__}: {exc} (a bug in lossfuzz, not bad input;"
              " please report it with the traceback above)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        release_locks()


def _interrupted(exc: KeyboardInterrupt, quiet: bool = False, ignore_more: bool = True) -> int:
    """Ctrl-C or SIGTERM: one line, exit 128 + the signal (130 for SIGINT, 143 for SIGTERM). The command
    line process (``ignore_more``; not a caller of ``main(argv)``) ignores further ones from here, so that
    none escapes as a traceback or a death by signal (exit -2) while it exits."""
    if ignore_more:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    signum = getattr(exc, "signum", signal.SIGINT)
    if not quiet:
        print(f"lossfuzz: {exc}" if str(exc) else "lossfuzz: interrupted", file=sys.stderr)
    return 128 + int(signum)


if __name__ == "__main__":
    sys.exit(main())
