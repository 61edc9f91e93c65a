"""``python -m glimpse``: the batch face of the same functions the app uses.

Each subcommand is one module in this package exposing ``register(subparsers)``, which adds a parser
whose ``func(args) -> int`` runs it. Modules are discovered, so a new subcommand is one new file.
Errors a user can fix (bad image, unknown model, bad option) exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


#: Exceptions that mean "the input or option is wrong", reported without a traceback.
def _user_errors() -> tuple[type[BaseException], ...]:
    from models.registry import ModelLoadError

    return (CliError, ValueError, FileNotFoundError, ModelLoadError, OSError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m glimpse",
        description="Glimpse: saliency, visual-complexity and cross-attention maps from the command line.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except _user_errors() as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
