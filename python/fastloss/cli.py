"""The command line: ``python -m fastloss`` (also installed as ``fastloss``)."""

from __future__ import annotations

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastloss", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train linear classifiers on a data set")
    sub.add_parser("config", help="print the build configuration")
    args = parser.parse_args(argv)
    if args.command == "config":
        from . import show_config

        show_config()
        return 0
    print("fastloss train: the linear classifiers are coming (see the issue tracker).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
