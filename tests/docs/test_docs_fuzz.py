"""The long fuzz run of docs/security.md names every file that holds property tests."""

from __future__ import annotations

import re

from tests.support.harness import ROOT

TESTS = ROOT / "tests"


def _fuzz_command() -> str:
    text = (ROOT / "docs" / "security.md").read_text()
    section = text[text.index("## Fuzzing") :]
    command = re.search(r"```sh\n(.*?)```", section, re.S)
    assert command, "no command in the Fuzzing section"
    return command[1].replace("\\\n", " ")


def _property_test_files() -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for path in TESTS.rglob("test_*.py")
        if re.search(r"^@given\(", path.read_text(), re.M)
    }


def test_fuzz_command_runs_every_property_test_file() -> None:
    command = _fuzz_command()
    assert "--hypothesis-profile=fuzz" in command
    named = set(command.split())
    files = _property_test_files()
    assert len(files) >= 5
    assert files <= named, files - named

