"""The commands of ``lossfuzz`` (floor 6, the faces): one module each, with ``add_parser(subparsers)`` that
declares the command (its options come from :mod:`harness.options`) and a handler that reads the input,
runs the work below and writes the files. :mod:`harness.cli` is the argparse face over them.

Bad input is raised as :class:`harness.options.UsageError` (one line); file and module reads are wrapped
in :func:`harness.options.reading_input` where they happen.
"""

from __future__ import annotations

# name -> module, in the order `lossfuzz --help` lists them; each module is imported only to build the parser.
COMMANDS: dict[str, str] = {
    "exact": "harness.commands.exact",
    "run": "harness.commands.run",
    "sweep": "harness.commands.sweep",
    "audit": "harness.commands.audit",
    "gate": "harness.commands.gate",
    "compare": "harness.commands.compare",
}

__all__ = ["COMMANDS"]
