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


def parse_methods(text: str | None, *, quick: bool = False, bundle=None) -> list[str]:
    """``--method``'s comma-separated registry names, each checked; None: every method that applies to ``bundle``
    (without one: every method for any model, so not the ViT-only ones; ``quick``: only those not marked slow)."""
    from glimpse.saliency import REGISTRY, get_method

    if text is None:

        def applies(m) -> bool:
            return m.info.models == "any" if bundle is None else m.applies(bundle) is None

        return [n for n, m in REGISTRY.items() if not (quick and m.info.slow) and applies(m)]
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise CliError("--method: give at least one method name")
    for n in names:
        get_method(n)
    return names


def parse_params(items: list[str], names: list[str]) -> dict[str, dict]:
    """``--param METHOD.NAME=VALUE`` items as one parameter dict per method of ``names``."""
    out: dict[str, dict] = {n: {} for n in names}
    for item in items:
        key, sep, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise CliError(f"--param: expected METHOD.NAME=VALUE, got {item!r}")
        if method not in out:
            raise CliError(f"--param: method {method!r} is not among --method ({', '.join(names)})")
        out[method][name] = value
    return out


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
