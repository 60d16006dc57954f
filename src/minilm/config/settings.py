"""Settings that explain and check themselves: the machinery under every command's config.

A config is a dataclass whose fields are settings, or sections: fields whose type is a dataclass of
settings (training, student, objective, ...). Each setting is declared once, with everything about it:

    lr: float = setting(2e-4, "peak learning rate of AdamW", range="(0, inf)", hint="0 trains nothing")

* `setting(default, help, range=, choices=, unbounded=, hint=, shown=, resumable=)`: the help text (never
  the default: argparse appends that), an interval such as "[1, inf)" or "[0, 1)" for numbers (each item
  of a list), or the choices of a string, or for a number with no bounds the reason it has none.
* A `Section` checks its own settings when it is built (`check_settings`), then its own rules (`check`).
* `build(cls, values)` makes a config from flat `name: value` pairs (flags and YAML keys are the setting
  names, whatever section holds them); `load_config` reads them from a YAML file and the command line;
  `add_arguments` makes one flag per setting, grouped by section; `flatten` gives the flat pairs back.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from minilm.errors import MiniLMError


@dataclass(frozen=True)
class Interval:
    """A closed, open or half-open interval of numbers, written as in mathematics: "[0, 1)", "(0, inf)"."""

    low: float | None
    high: float | None
    low_open: bool
    high_open: bool

    @classmethod
    def parse(cls, text: str) -> "Interval":
        left, right = text.strip()[0], text.strip()[-1]
        low, high = (part.strip() for part in text.strip()[1:-1].split(","))
        if left not in "[(" or right not in "])":
            raise ValueError(f"not an interval: {text!r}")

        def bound(x: str):
            return None if x in ("inf", "-inf") else (float(x) if "." in x or "e" in x else int(x))
        return cls(bound(low), bound(high), left == "(", right == ")")

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        def shown(x):
            return str(x) if isinstance(x, int) else f"{x:g}"
        parts = [] if self.low is None else [f"{'>' if self.low_open else '>='} {shown(self.low)}"]
        parts += [] if self.high is None else [f"{'<' if self.high_open else '<='} {shown(self.high)}"]
        return " and ".join(parts)


def setting(default: Any, help: str, *, range: str | None = None, choices: tuple | None = None,
            unbounded: str | None = None, hint: str = "", shown: str | None = None, resumable: bool = False,
            former: str | None = None):
    """A config field that carries its own help, range or choices (see the module docstring).

    hint: said after a range error (what the value means at its edge, e.g. "-1 means 10% of the steps").
    shown: how `--help` shows the default when the value itself says little (e.g. None -> "4 x student_hidden").
    resumable: a resumed run may change it without becoming another run (output_dir, log_every, ...).
    former: the setting's earlier name, still read from YAML files and Python keywords (not as a flag).
    """
    metadata = {"help": help, "range": Interval.parse(range) if range else None, "choices": choices,
                "unbounded": unbounded, "hint": hint, "shown": shown, "resumable": resumable, "former": former}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """(the type inside Optional[...], whether None is allowed)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def item_type(tp: Any) -> Any:
    """int for `int`, `int | None` and `list[int]`: the type each value must have."""
    base, _ = strip_optional(tp)
    return typing.get_args(base)[0] if typing.get_origin(base) is list else base


def is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp) and issubclass(tp, Section)


def check_value(name: str, value: Any, f: dataclasses.Field) -> None:
    """One setting's value against its declared choices or range (each item of a list)."""
    if value is None:
        return
    meta = f.metadata
    for item in value if isinstance(value, list) else [value]:
        if meta.get("choices") is not None and item not in meta["choices"]:
            raise MiniLMError(f"{name} must be one of {', '.join(map(str, meta['choices']))}, got '{item}'")
        if isinstance(item, float) and not math.isfinite(item):
            raise MiniLMError(f"{name} must be a finite number, got {item}")
        interval = meta.get("range")
        if interval is not None and not isinstance(item, bool) and not interval.contains(item):
            shown = str(item) if isinstance(item, int) else f"{item:g}"
            hint = f" ({meta['hint']})" if meta.get("hint") else ""
            raise MiniLMError(f"{name} must be {interval.describe()}, got {shown}{hint}")


def check_settings(obj: Any) -> None:
    for f in dataclasses.fields(obj):
        if "help" in f.metadata:
            check_value(f.name, getattr(obj, f.name), f)


class Section:
    """A group of settings: converted to their declared types (so that `Objective(objective="minilm")` holds a
    list, as the command line makes it) and checked when built (ranges and choices, then its own `check`)."""

    TITLE = "options"

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            if "help" in f.metadata:
                setattr(self, f.name, coerce(f.name, getattr(self, f.name), hints[f.name]))
        self.resolve()
        check_settings(self)
        self.check()

    def resolve(self) -> None:
        """Read a setting's earlier spelling as today's (before the checks), so that earlier scripts and YAML
        files keep running."""

    def check(self) -> None:
        """Rules across this section's own settings (one-line `MiniLMError`s)."""


def with_defaults(cls: type, name: str, shown: dict[str, str] | None = None, module: str | None = None,
                  **defaults: Any) -> type:
    """A subclass of section `cls` with other defaults for some settings, their help and range unchanged
    (fine-tuning's learning rate is not distillation's). A default of None leaves the value to be decided later
    (the type admits None; `shown` says by what, as `--help` prints it). `module`: where the new class is defined
    (`cls`'s module unless given), so that it pickles."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": module or cls.__module__, "__doc__": cls.__doc__}
    for key, value in defaults.items():
        meta = dict(fields[key].metadata)
        if shown and key in shown:
            meta["shown"] = shown[key]
        elif value is not None:  # the base's words for its own default do not describe this one
            meta["shown"] = None
        hint = hints[key]
        namespace["__annotations__"][key] = hint | None if value is None and not strip_optional(hint)[1] else hint
        namespace[key] = field(default_factory=lambda v=value: list(v), metadata=meta) if isinstance(value, list) \
            else field(default=value, metadata=meta)
    return dataclass(type(name, (cls,), namespace))


def settings_of(cls: type) -> Iterator[tuple[str | None, dataclasses.Field, Any]]:
    """(section name or None, field, type) for every setting of a config class, sections opened."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if is_section(hints[f.name]):
            section_hints = typing.get_type_hints(hints[f.name])
            for g in dataclasses.fields(hints[f.name]):
                yield f.name, g, section_hints[g.name]
        else:
            yield None, f, hints[f.name]


def default_of(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def coerce(name: str, value: Any, tp: Any) -> Any:
    """Check and convert one value against a setting's type (int, float, str, bool, list[...], Optional)."""
    base, optional = strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise MiniLMError(f"config key '{name}' must not be empty")
    if typing.get_origin(base) is list:
        (inner,) = typing.get_args(base)
        return [coerce(name, v, inner) for v in (value if isinstance(value, list) else [value])]
    try:
        if base is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if base in (int, float) and isinstance(value, bool):
            raise MiniLMError(f"config key '{name}' expects {base.__name__}, got a boolean ({value}); YAML reads "
                              "yes/no/on/off as true/false")
        if base is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if base is str and not isinstance(value, (str, int, float)):  # str() would take a dict or a path list
            raise TypeError(value)
        return base(value)
    except (TypeError, ValueError):
        got = repr(value) if isinstance(value, (str, int, float)) else f"a {type(value).__name__} ({value!r:.60})"
        raise MiniLMError(f"config key '{name}' expects {getattr(base, '__name__', base)}, got {got}") from None


def build(cls: type, values: dict[str, Any]):
    """`cls` from flat setting names and values (unset settings keep their defaults); each section is
    checked as it is built, then the config's own rules."""
    owner = {f.name: (section, f, tp) for section, f, tp in settings_of(cls)}
    renamed = {f.metadata["former"]: name for name, (_, f, _) in owner.items() if f.metadata.get("former")}
    values = {renamed.get(k, k): v for k, v in values.items()}
    unknown = sorted(set(values) - set(owner))
    if unknown:
        raise MiniLMError(f"unknown config key(s) for {cls.__name__}: {', '.join(unknown)}")
    grouped: dict[str | None, dict[str, Any]] = {}
    for name, value in values.items():
        section, _, tp = owner[name]
        grouped.setdefault(section, {})[name] = coerce(name, value, tp)
    hints = typing.get_type_hints(cls)
    sections = {f.name: hints[f.name](**grouped.get(f.name, {})) for f in dataclasses.fields(cls)
                if is_section(hints[f.name])}
    return cls(**grouped.get(None, {}), **sections)


def flatten(cfg: Any) -> dict[str, Any]:
    """Every setting of a config as flat `name: value` pairs (what YAML files and run.json hold)."""
    flat = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, Section) and dataclasses.is_dataclass(value):
            flat.update({g.name: getattr(value, g.name) for g in dataclasses.fields(value)})
        else:
            flat[f.name] = value
    return flat


def resumable_names(cls: type) -> set[str]:
    return {f.name for _, f, _ in settings_of(cls) if f.metadata.get("resumable")}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error, not "the last wins"."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key '{key}' is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(yaml_path: str) -> dict[str, Any]:
    path = Path(yaml_path)
    if not path.is_file():
        raise MiniLMError(f"config file not found: {yaml_path}")
    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        raise MiniLMError(f"config file {yaml_path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise MiniLMError(f"config file {yaml_path} must hold a mapping of keys to values")
    return loaded


def load_config(cls: type, yaml_path: str | None = None, overrides: dict[str, Any] | None = None,
                command: str | None = None):
    """`cls` from its defaults, then a YAML file, then explicit overrides (flags).

    A YAML file may say which command it is for (`command: finetune`); run with another, it is refused.
    """
    values = read_yaml(yaml_path) if yaml_path else {}
    meant = values.pop("command", None)
    if meant is not None and command is not None and meant != command:
        raise MiniLMError(f"config file {yaml_path} is for `minilm {meant}`, not `minilm {command}`; run it with "
                          f"minilm {meant} --config {yaml_path}")
    values.update(overrides or {})
    return build(cls, values)


def help_text(f: dataclasses.Field) -> str:
    meta = f.metadata
    default = meta.get("shown") or default_of(f)
    if isinstance(default, list):
        default = " ".join(map(str, default)) or "none"
    return f"{meta['help']} (default: {default})".replace("%", "%%")


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One `--setting-name` flag per setting, in one argument group per section; unset flags stay out of the
    overrides (so that YAML values and defaults apply)."""
    hints = typing.get_type_hints(cls)
    groups: dict[str | None, Any] = {None: parser.add_argument_group(getattr(cls, "TITLE", "options"))}
    for f in dataclasses.fields(cls):
        if is_section(hints[f.name]):
            section = hints[f.name]
            groups[f.name] = parser.add_argument_group(section.TITLE, (section.__doc__ or "").strip() or None)
    for section, f, tp in settings_of(cls):
        base, _ = strip_optional(tp)
        flag = "--" + f.name.replace("_", "-")
        common = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text(f))
        if typing.get_origin(base) is list:
            groups[section].add_argument(flag, nargs="*", metavar=f.name.upper(), **common)
        elif base is bool:
            groups[section].add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        else:
            choices = f.metadata.get("choices")
            metavar = "{" + ",".join(map(str, choices)) + "}" if choices else f.name.upper()
            groups[section].add_argument(flag, metavar=metavar, **common)
