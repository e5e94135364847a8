"""The documentation's reference pages are written from the code: every command and option
of the parser, every setting of the configuration."""

import argparse
import dataclasses
import importlib.util
from pathlib import Path

import pytest

from cxrvae.cli import build_parser
from cxrvae.config import SECTIONS

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("reference", DOCS / "_ext" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_line_page_lists_every_option_of_every_command(reference):
    page = reference.cli_markdown()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        section = page.split(f"\n## cxrvae {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for flag in action.option_strings or [action.metavar or action.dest]:
                assert f"`{flag}" in section or f", {flag}" in section, (name, flag)
            if action.help:
                assert action.help.replace("|", "\\|") in section, (name, action.dest)
        assert parser.description in section


def test_the_configuration_page_lists_every_setting_with_its_default(reference):
    page = reference.config_markdown()
    for section, cls in SECTIONS.items():
        part = page.split(f"\n## [{section}]\n", 1)[1].split("\n## ", 1)[0]
        for f in dataclasses.fields(cls):
            row = next(line for line in part.splitlines() if line.startswith(f"| `{f.name}` |"))
            assert f"`{getattr(cls(), f.name)!r}`" in row
            assert row.rstrip(" |").split("|")[-1].strip(), f"{f.name} has no meaning"
