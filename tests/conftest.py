"""Shared test plumbing: the time each lesson costs the suite, printed at the end of `make test`."""

from __future__ import annotations

from collections import defaultdict

import pytest

# lesson -> {what was done with it: seconds}; filled by the fixtures that execute lessons
LESSON_SECONDS: dict[str, dict[str, float]] = defaultdict(dict)


@pytest.fixture(scope="session")
def lesson_seconds() -> dict[str, dict[str, float]]:
    """Record here how long each execution of a lesson took (printed after the run)."""
    return LESSON_SECONDS


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per lesson: each execution's seconds and their sum, so that growth shows with every lesson."""
    if not LESSON_SECONDS:
        return
    terminalreporter.section("time per lesson (the suite executes each lesson at most twice)")
    for lesson, parts in sorted(LESSON_SECONDS.items()):
        detail = ", ".join(f"{what} {seconds:.1f} s" for what, seconds in parts.items())
        terminalreporter.write_line(f"{lesson:<28} {sum(parts.values()):6.1f} s  ({detail})")
    total = sum(sum(parts.values()) for parts in LESSON_SECONDS.values())
    terminalreporter.write_line(f"{'all lessons':<28} {total:6.1f} s")
