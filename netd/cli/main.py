"""`netd` command line: `up`/`down` run and remove a cluster; the rest talk to a
running daemon over its HTTP API (netd.cli.commands)."""
from __future__ import annotations

import argparse
import sys

from netd.cli import lifecycle


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netd", description="A Kubernetes network on this "
                                     "Linux host.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lifecycle.add_parsers(sub)
    try:
        from netd.cli import commands
    except ImportError:  # the client commands are optional for `up`/`down`
        commands = None  # type: ignore[assignment]
    if commands is not None:
        commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
