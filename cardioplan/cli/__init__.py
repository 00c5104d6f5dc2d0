"""The ``cardioplan`` command line: a thin layer over the library.

Each subcommand lives in its own module of this package with two functions::

    def register(subparsers) -> argparse.ArgumentParser   # adds the subcommand and its options
    def run(args: argparse.Namespace) -> int              # does the work, returns the exit code

Exit codes: 0 success, 1 input or processing error (a :class:`~cardioplan.errors.CardioPlanError`
with a message that names the problem and the fix), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence

from cardioplan import __version__, progress
from cardioplan.errors import CardioPlanError

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = ["demo", "info", "import_", "segment", "evaluate", "mesh", "export", "view",
            "snapshot", "report", "vr"]
"""Subcommand modules, in the order ``--help`` lists them."""

log = logging.getLogger("cardioplan")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cardioplan",
        description="CardioPlan: DICOM CT/MRI -> labelled heart structures -> 3D meshes -> "
                    "desktop review and VR rehearsal.  Run `cardioplan COMMAND --help` for "
                    "each command's options and examples.",
        epilog="Example: cardioplan demo   (runs the whole pipeline on the bundled phantom)",
    )
    parser.add_argument("--version", action="version", version=f"cardioplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"cardioplan.cli.{name}")
        sp = module.register(sub)
        _add_common(sp)
        sp.set_defaults(_run=module.run)
    return parser


def _add_common(sp: argparse.ArgumentParser) -> None:
    group = sp.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="more log messages (-vv for debug)")
    group.add_argument("-q", "--quiet", action="store_true",
                       help="only errors; no progress bars")


_LOGGERS = ("cardioplan", "segmentation", "vr")


@contextlib.contextmanager
def _cli_logging(verbose: int, quiet: bool) -> Iterator[None]:
    """Log the packages' messages to stderr at the level the flags ask for, then restore.

    Restoring matters because :func:`main` is also called from Python (tests, notebooks).
    """
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else
                                         logging.INFO if verbose == 1 else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    saved = {}
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers))
        logger.handlers = [h for h in logger.handlers if isinstance(h, logging.NullHandler)]
        logger.addHandler(handler)
        logger.setLevel(level)
    try:
        yield
    finally:
        for name, (old_level, old_handlers) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(old_level)
            logger.handlers = old_handlers


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (so tests can call it directly)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    was_enabled = progress.is_enabled()
    progress.enable(not args.quiet and sys.stderr.isatty())
    with _cli_logging(args.verbose, args.quiet):
        try:
            return int(args._run(args) or 0)
        except CardioPlanError as exc:
            log.error("%s", exc)
            return 1
        except KeyboardInterrupt:
            log.error("interrupted; outputs are written atomically, so nothing half-written "
                      "was left")
            return 130
        finally:
            progress.enable(was_enabled)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
