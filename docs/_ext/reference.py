"""Writes the reference pages that come from the code, as the documentation build starts:
``_generated/cli.md`` from the command line's parser, ``_generated/config.md`` from the
configuration's dataclasses, and a copy of the example notebook. Nothing to keep in step by
hand: a flag or a setting added to the code is on its page at the next build."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
GENERATED = DOCS / "_generated"


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    """(group title, flags as written, help) of every option and positional of ``parser``."""
    rows = []
    for group in parser._action_groups:  # argparse keeps its groups here, in order
        for action in group._group_actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if action.option_strings:
                flags = ", ".join(action.option_strings)
                if action.nargs != 0 and not isinstance(action, argparse.BooleanOptionalAction):
                    metavar = action.metavar or (
                        "{" + ",".join(map(str, action.choices)) + "}"
                        if action.choices
                        else action.dest.upper()
                    )
                    flags += f" {metavar}"
            else:
                flags = action.metavar or action.dest
            rows.append((group.title or "", flags, action.help or ""))
    return rows


def cli_markdown() -> str:
    """The command line reference: every command, each with every option and its help."""
    from cxrvae.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    out = [
        "# Command line reference",
        "",
        "Written from the parser itself when the documentation is built; `cxrvae COMMAND "
        "--help` prints the same. Settings flags are the kebab-case names of the "
        "[configuration's fields](config.md); a flag given overrides a `--config` file.",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    out += [f"| [`{name}`](#cxrvae-{name}) | {helps[name]} |" for name in sub.choices]
    for name, p in sub.choices.items():
        out += ["", f"## cxrvae {name}", "", "```text", p.format_usage().strip(), "```", ""]
        out += [_escape(p.description or ""), ""]
        group = None
        for title, flags, text in _options(p):
            if title != group:
                group = title
                out += ["", f"**{title}**", "", "| option | meaning |", "| --- | --- |"]
            out.append(f"| `{flags}` | {_escape(text)} |")
    return "\n".join(out) + "\n"


def _field_help() -> dict[str, str]:
    """What each setting means: its flag's help where it has one, else the comment on its line
    in :mod:`cxrvae.config`."""
    import inspect
    import re

    from cxrvae import config
    from cxrvae.cli import build_parser

    helps = {}
    for line in inspect.getsource(config).splitlines():
        m = re.match(r"\s+(\w+): [^=]+= [^#]+#\s*(.+)$", line)
        if m:
            helps[m.group(1)] = m.group(2)
    run = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for action in run.choices["run"]._actions:
        if action.option_strings and action.help:
            helps[action.dest] = action.help
    return helps


def config_markdown() -> str:
    """The configuration reference: every section's fields, types, defaults and meaning."""
    from cxrvae.config import SECTIONS, RunConfig

    defaults, helps = RunConfig(), _field_help()
    out = [
        "# Configuration reference",
        "",
        "Written from the configuration's dataclasses when the documentation is built. A TOML "
        "file given with `--config` sets any of these (a field left out keeps its default); a "
        "flag of the same name in kebab case (`latent_dims`: `--latent-dims`) overrides the "
        "file. See [Configuration and replay](../configuration.md).",
        "",
        "| setting | type | default | meaning |",
        "| --- | --- | --- | --- |",
        f"| `seed` | int | `{defaults.seed}` | {_escape(helps.get('seed', ''))} |",
    ]
    for section, cls in SECTIONS.items():
        doc = " ".join((cls.__doc__ or "").strip().split())
        out += ["", f"## [{section}]", "", _escape(doc), ""]
        out += ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
        values = getattr(defaults, section)
        for f in dataclasses.fields(cls):
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            value = getattr(values, f.name)
            out.append(
                f"| `{f.name}` | {_escape(kind)} | `{value!r}` | {_escape(helps.get(f.name, ''))} |"
            )
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_pages(app=None) -> None:
    GENERATED.mkdir(exist_ok=True)
    for name, text in (("cli.md", cli_markdown()), ("config.md", config_markdown())):
        path = GENERATED / name
        if not path.exists() or path.read_text() != text:  # unchanged pages are not rebuilt
            path.write_text(text)
    notebook = DOCS.parent / "examples" / "quickstart.ipynb"
    shutil.copyfile(notebook, GENERATED / "notebook.ipynb")


def setup(app):
    app.connect("builder-inited", write_pages)
    return {"parallel_read_safe": True}
