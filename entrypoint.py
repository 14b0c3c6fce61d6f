#!/usr/bin/env python3
"""Runs the release action: the same program as `release-action` and `python -m release_action`."""
import sys

from release_action.cli import main

if __name__ == "__main__":
    sys.exit(main())
