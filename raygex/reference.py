"""The docs' reference pages, generated from the code: every config key (the pydantic models reachable from
:class:`~raygex.config.ExperimentConfig`) and every ``raygex`` command (the click group).

``python -m raygex.reference docs/reference`` writes ``config.md`` and ``cli.md`` there; tests/test_reference.py
checks that the committed pages equal what this renders, so rerun it after changing a config field or a command.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types
import click
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from raygex.cli import cli
from raygex.config import ControlKind, ExperimentConfig
from raygex.graphs.controls import CONTROL_KINDS

__all__ = ["Section", "cli_reference", "config_reference", "config_sections", "main"]

UNSET = getattr(click.core, "UNSET", None)  # click >= 8.3: an option without a default
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# Types whose allowed values a validator checks, not the annotation: what the reference shows for them.
NAMED_TYPES = {ControlKind: " | ".join(json.dumps(kind) for kind in CONTROL_KINDS)}


# -- Markdown -------------------------------------------------------------------------------------------------------

def prose(text: str) -> str:
    """Plain text for Markdown: ``<`` and ``*`` outside code spans escaped (``<task>`` is no HTML tag)."""
    parts, last = [], 0
    for match in CODE_SPAN.finditer(text):
        parts.append(_escape(text[last:match.start()]) + match.group(0))
        last = match.end()
    return "".join(parts) + _escape(text[last:])


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace("*", r"\*")


def cell(text: str) -> str:
    """One table cell: one line, ``|`` escaped."""
    return prose(" ".join(text.split())).replace("|", r"\|")


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """A Markdown table; the cells are Markdown already (see :func:`cell`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def anchor(name: str) -> str:
    """An explicit anchor (the same in MkDocs and on GitHub, whatever a heading's slug)."""
    return f'<a id="{name}"></a>'


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# -- config.md ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    """One model as the YAML holds it: under ``path`` (``""`` at the top, ``tasks[]`` for a list's entries), for
    one ``kind`` of a discriminated union (``None`` elsewhere)."""

    path: str
    model: type[BaseModel]
    kind: str | None = None
    discriminator: str | None = None

    @property
    def anchor(self) -> str:
        return slug(f"{self.path or 'top level'} {self.kind or ''}")

    @property
    def title(self) -> str:
        where = f"`{self.path}`" if self.path else "Top level"
        return where + (f" with `{self.discriminator}: {self.kind}`" if self.kind else "")

    def key(self, field: str) -> str:
        return f"{self.path}.{field}" if self.path else field


def _unwrap(annotation) -> tuple[Any, list]:
    """``Annotated[T, ...]`` as (T, its metadata)."""
    if typing.get_origin(annotation) is Annotated:
        inner, *metadata = typing.get_args(annotation)
        return inner, metadata
    return annotation, []


def _alternatives(annotation) -> list:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]


def _models_in(annotation) -> tuple[list[type[BaseModel]], str | None, bool]:
    """The models a field holds (directly or as list entries), their discriminator, and whether in a list."""
    annotation, meta = _unwrap(annotation)
    in_list = typing.get_origin(annotation) is list
    if in_list:
        annotation, meta = _unwrap(typing.get_args(annotation)[0])
    discriminator = next((m.discriminator for m in meta if isinstance(m, FieldInfo) and m.discriminator), None)
    models = [a for a in _alternatives(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return models, discriminator, in_list


def config_sections(model: type[BaseModel] = ExperimentConfig, path: str = "", kind: str | None = None,
                    discriminator: str | None = None) -> list[Section]:
    """Every model reachable from ``model``: itself, then each nested model in field order, depth first."""
    sections = [Section(path, model, kind, discriminator)]
    for name, field in model.model_fields.items():
        models, tag, in_list = _models_in(field.annotation)
        where = Section(path, model).key(name) + ("[]" if in_list else "")
        for nested in models:
            nested_kind = _literal_default(nested, tag) if tag else None
            sections += config_sections(nested, where, nested_kind, tag)
    return sections


def _literal_default(model: type[BaseModel], name: str) -> str:
    return str(model.model_fields[name].default)


def type_text(annotation, metadata=(), anchors: dict | None = None) -> str:
    """A readable type: ``int ≥ 1``, ``"asha" | "fifo"``, ``list[int | float] | float``, a model as a link."""
    named = [text for named, text in NAMED_TYPES.items() if annotation == named]
    if named:
        return named[0]
    annotation, meta = _unwrap(annotation)
    metadata = [*metadata, *meta]
    bounds = "".join(f" {sign} {getattr(m, attr)}" for m in metadata
                     for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")) if hasattr(m, attr))
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (Union, types.UnionType):
        parts = [type_text(a, metadata, anchors) for a in args if a is not type(None)]
        return " | ".join(parts + (["null"] if type(None) in args else []))
    if origin in (list, dict):
        inner = ", ".join(type_text(a, (), anchors) for a in args)
        least = next((m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)), 0)
        return f"{origin.__name__}[{inner}]" + (f" (at least {least})" if least else "")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        target = (anchors or {}).get(annotation)
        return f"[{annotation.__name__}](#{target})" if target else annotation.__name__
    if annotation is Any:
        return "any"
    name = getattr(annotation, "__name__", str(annotation))
    return name + (bounds if annotation in (int, float) else "")


def yaml_value(value: Any) -> str:
    """A default as a user writes it in YAML."""
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value and value.strip() == value else json.dumps(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def default_text(field: FieldInfo, required: bool = False) -> str:
    if required or field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "its keys' defaults"
    return f"`{yaml_value(value)}`"


def _section_rows(section: Section, anchors: dict) -> list[tuple[str, ...]]:
    return [(f"`{section.key(name)}`", cell(type_text(field.annotation, field.metadata, anchors)),
             default_text(field, required=name == section.discriminator), cell(field.description or ""))
            for name, field in section.model.model_fields.items()]


def config_reference() -> str:
    """``config.md``: a section and a table per model, every key as its dotted YAML path."""
    sections = config_sections()
    anchors = {}
    for section in sections:
        anchors.setdefault(section.model, section.anchor)
    lines = ["# Config reference", "",
             "<!-- Generated by `python -m raygex.reference docs/reference`: edit the pydantic models in "
             "raygex/config/, not this page. -->", "",
             prose("An experiment config is one YAML file (`configs/demo.yaml` is an annotated example). Keys are "
                   "written here as dotted paths: `search.scheduler.grace_period: 10` is `grace_period: 10` under "
                   "`scheduler:` under `search:`, and `raygex search --set search.scheduler.grace_period=10` "
                   "overrides it. `tasks[]` is each entry of the `tasks:` list. An unknown key is an error. Relative "
                   "paths resolve against the directory raygex runs in."), ""]
    for section in sections:
        doc = inspect.getdoc(section.model) if section.model.__doc__ else ""
        lines += [anchor(section.anchor), f"## {section.title}", "", f"*{section.model.__name__}*"
                  + (": " + prose(" ".join(doc.split())) if doc else ""), ""]
        lines += table(("Key", "Type", "Default", "Description"), _section_rows(section, anchors)) + [""]
    return "\n".join(lines)


# -- cli.md ---------------------------------------------------------------------------------------------------------

def help_markdown(text: str | None) -> list[str]:
    """Click help text as Markdown: paragraphs kept, a ``\\b`` paragraph (no rewrapping) as a code block, a
    heading line such as ``Examples:`` before it as text."""
    if not text:
        return []
    text = inspect.cleandoc(text).split("\f")[0]
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = paragraph.split("\n")
        if lines[0].strip() != "\b":
            out += [prose("\n".join(line.strip() for line in lines)), ""]
            continue
        lines = lines[1:]
        if lines and lines[0].rstrip().endswith(":") and not lines[0].startswith(" ") and len(lines) > 1:
            out += [prose(lines[0].strip()), ""]
            lines = lines[1:]
        code = inspect.cleandoc("\n".join(lines))
        shell = all(line.startswith("raygex ") or previous.endswith("\\")
                    for previous, line in zip([""] + code.split("\n"), code.split("\n")))
        out += ["```" + ("bash" if shell else "text"), code, "```", ""]
    return out


def param_type(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    kind = param.type
    if isinstance(kind, click.Choice):
        text = " \\| ".join(f"`{choice}`" for choice in kind.choices)
    elif isinstance(kind, (click.IntRange, click.FloatRange)):
        low = "" if kind.min is None else f"{'>' if kind.min_open else '≥'} {kind.min}"
        high = "" if kind.max is None else f"{'<' if kind.max_open else '≤'} {kind.max}"
        text = f"{'integer' if isinstance(kind, click.IntRange) else 'float'} {', '.join(p for p in (low, high) if p)}"
    elif param.metavar:
        text = f"`{param.metavar}`"
    else:
        text = kind.name
    return text + (" (repeatable)" if param.multiple else "")


def param_default(param: click.Parameter, ctx: click.Context) -> str:
    value = param.get_default(ctx, call=False)
    if callable(value):
        return "(computed)"
    if value is None or value is UNSET or value == () or value == []:
        return ""
    if isinstance(param, click.Option) and param.is_flag:
        if not param.secondary_opts:
            return "on" if value else ""
        return f"`{param.opts[0] if value else param.secondary_opts[0]}`"
    if isinstance(value, (list, tuple)):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{value}`"


def _option_rows(command: click.Command, ctx: click.Context) -> list[tuple[str, ...]]:
    rows = []
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        names = ", ".join(f"`{name}`" for name in [*param.opts, *param.secondary_opts])
        text = cell(param.help or "")
        if param.envvar:
            envvars = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar)
            text += " Environment: " + ", ".join(f"`{v}`" for v in envvars) + "."
        rows.append((names, param_type(param), param_default(param, ctx), text.strip()))
    return rows


def _argument_rows(command: click.Command) -> list[tuple[str, ...]]:
    return [(f"`{arg.human_readable_name}`", param_type(arg), "yes" if arg.required else "no")
            for arg in command.params if isinstance(arg, click.Argument)]


def _commands(group: click.Group, ctx: click.Context):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is not None and not command.hidden:
            yield command, click.Context(command, info_name=name, parent=ctx)


def _command_markdown(command: click.Command, ctx: click.Context, depth: int = 2) -> list[str]:
    """A command's section (``##`` for ``raygex`` and its commands, ``###`` for their subcommands)."""
    path = ctx.command_path
    lines = [anchor(slug(path)), f"{'#' * depth} `{path}`", ""]
    lines += ["```text", f"{path} {' '.join(command.collect_usage_pieces(ctx))}", "```", ""]
    lines += help_markdown(command.help)
    if _argument_rows(command):
        lines += table(("Argument", "Type", "Required"), _argument_rows(command)) + [""]
    if _option_rows(command, ctx):
        lines += table(("Option", "Type", "Default", "Description"), _option_rows(command, ctx)) + [""]
    if isinstance(command, click.Group):
        rows = [(f"[`{sub_ctx.command_path}`](#{slug(sub_ctx.command_path)})", cell(sub.get_short_help_str(1000)))
                for sub, sub_ctx in _commands(command, ctx)]
        lines += table(("Command", "What it does"), rows) + [""]
        for sub, sub_ctx in _commands(command, ctx):
            lines += _command_markdown(sub, sub_ctx, depth if ctx.parent is None else min(depth + 1, 4))
    return lines


def cli_reference() -> str:
    """``cli.md``: every ``raygex`` command and subcommand with its usage, help, arguments and options."""
    ctx = click.Context(cli, info_name="raygex")
    lines = ["# Command-line reference", "",
             "<!-- Generated by `python -m raygex.reference docs/reference`: edit the click commands in "
             "raygex/cli/, not this page. -->", "",
             prose("Every command takes `-h` / `--help`. A user error (a bad file, key or value) is one line on "
                   "stderr and exit code 2."), ""]
    return "\n".join(lines + _command_markdown(cli, ctx))


# -- the pages ------------------------------------------------------------------------------------------------------

PAGES = {"config.md": config_reference, "cli.md": cli_reference}


def main(argv: list[str] | None = None) -> None:
    """Write OUTDIR/config.md and OUTDIR/cli.md (``python -m raygex.reference OUTDIR``)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.exit("usage: python -m raygex.reference OUTDIR   (e.g. docs/reference)")
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, render in PAGES.items():
        (out / name).write_text(render())
        print(out / name)


if __name__ == "__main__":
    main()
