"""The CLI's error contract, asserted the same way by every test file that checks a refusal."""

from __future__ import annotations

from typing import Any


def one_line_error(res: Any, *needles: str, token: str | None = None) -> str:
    """Exit 2, exactly one line on stderr starting with 'error: ' and holding every needle, no traceback,
    never ``token`` (a secret that must not leak); returns the line."""
    assert res.code == 2, (res.code, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    if token:
        assert token not in res.stderr and token not in res.stdout
    return lines[0]
