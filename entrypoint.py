#!/usr/bin/env python3
"""Runs the release action: the same program as `release-action` and `python -m release_action`."""

from release_action.cli import run

if __name__ == "__main__":
    run()
