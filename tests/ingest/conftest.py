"""Playwright for the Prices page: Debian's chromium, never `playwright install`."""

import os

import pytest


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    path = os.environ.get("CHROMIUM_PATH") or "/usr/lib/chromium/chromium"
    if not os.path.exists(path):
        pytest.skip(f"chromium not found at {path} (scripts/run_tests.py installs it)")
    return {**browser_type_launch_args, "executable_path": path,
            "args": ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]}
