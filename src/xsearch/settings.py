"""Defaults from a configuration file, ``xsearch.toml``.

Looked for, first found wins: ``$XSEARCH_CONFIG`` (a file; empty = no config file), else
``./xsearch.toml``, else ``$XDG_CONFIG_HOME/xsearch/xsearch.toml`` (``~/.config/...``). Top-level
keys are option names and apply to every command that has that option (``index``, ``model``,
``layout``...); a table ``[command.query]`` (any command name) sets that command's options only.

The result is a click ``default_map``, so precedence is click's: flag > environment variable >
this file > built-in default.
"""

from __future__ import annotations

import datetime
import math
import os
import sys
from pathlib import Path

import click

from .errors import ConfigError, first_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FILE_NAME = "xsearch.toml"
ENV_VAR = "XSEARCH_CONFIG"
#: Keys accepted before the options that read them exist in every version (pass-through).
RESERVED = ("engine", "exclude", "include")
#: The table holding one table per command: ``[command.query]``.
TABLES = "command"
_NEVER = ("help", "version")
#: (command, option) pairs a top-level key does not reach: ``query --model`` only checks the
#: index's model, so a default there would make every other index fail.
_TOP_LEVEL_SKIP = {("query", "model")}


def find_config(cwd: Path | None = None, env: dict | None = None) -> Path | None:
    """The configuration file in effect, or None."""
    env = os.environ if env is None else env
    named = env.get(ENV_VAR)
    if named is not None:
        if not named.strip():
            return None
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"{ENV_VAR} names {path}, which is not a file")
        return path
    local = (cwd or Path.cwd()) / FILE_NAME
    if local.is_file():
        return Path(FILE_NAME) if cwd is None else local
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = Path(base) / "xsearch" / FILE_NAME
    return user if user.is_file() else None


def read_config(path: Path) -> dict:
    """The file's tables; a syntax error is a ConfigError naming the file and line."""
    try:
        # A byte order mark (Notepad's UTF-8) is not TOML; it says nothing of the keys.
        return tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc


def _options(cmd: click.Command, negated: bool = False) -> dict[str, click.Option]:
    """Long option names (without dashes) -> option; ``negated``: the names of on/off
    options' off side instead (``no-json``), whose value the file gives inverted."""
    out = {}
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name not in _NEVER:
            for opt in p.secondary_opts if negated else p.opts:
                if opt.startswith("--"):
                    out[opt[2:]] = p
    return out


def _lookup(cmd: click.Command, name: str) -> tuple[click.Option | None, bool]:
    """(the option a file key names, whether the key is its off side: no-json = true is
    json = false)."""
    opt = _options(cmd).get(name)
    if opt is not None:
        return opt, False
    opt = _options(cmd, negated=True).get(name)
    return opt, opt is not None


def _value(source: Path, key: str, cmd: click.Command, opt: click.Option, negated: bool,
           value: object) -> object:
    value = _convert(source, key, cmd, opt, value)
    return not value if negated else value


def _shown(value: object) -> str:
    """A value as the file spells its type: 'the integer 5', 'an array'."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the float {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime.date, datetime.time)):
        return f"the date/time {value.isoformat()}"
    return type(value).__name__


def _check_type(opt: click.Option, value: object) -> str | None:
    """Why ``value`` (one item, for a repeatable option) cannot be ``opt``'s, or None.

    Stricter than click, which reads any value as the text a command line would give: the
    file is typed, so ``top-k = 2.5`` or ``json = 1`` is a mistake, not a 2 or a true."""
    kind = opt.type
    if isinstance(kind, click.types.BoolParamType):
        return None if isinstance(value, bool) else f"expected true or false, got {_shown(value)}"
    if isinstance(kind, click.types.IntParamType):
        # true is an int to Python, not to TOML.
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"expected an integer, got {_shown(value)}"
    if isinstance(kind, click.types.FloatParamType):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {_shown(value)}"
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if not isinstance(value, str):
        return f"expected a string, got {_shown(value)}"
    if "\x00" in value:
        return "the string holds a NUL character"
    if isinstance(kind, click.Path) and not value:
        return "expected a path, got an empty string"
    return None


def _beside(source: Path, value: object) -> object:
    """A path the config file gives, relative to that file (``-``, standard input, stays)."""
    if not isinstance(value, str) or value == "-":
        return value
    return str(source.parent / Path(value).expanduser())


def _convert(source: Path, key: str, cmd: click.Command, opt: click.Option, value: object):
    """``value`` checked as ``opt``'s default (a relative path, for an option that takes a
    file or folder, made relative to ``source``)."""
    listed = opt.multiple and isinstance(value, list)
    if opt.multiple and not listed:
        value = [value]
    for n, item in enumerate(value if opt.multiple else [value], 1):
        why = _check_type(opt, item)
        if why is not None:
            where = f"item {n}: " if listed else ""
            raise ConfigError(f"{source}: key {key!r}: {where}{why}")
    if isinstance(opt.type, (click.Path, click.File)):  # --index, --labels, --out...
        value = [_beside(source, v) for v in value] if opt.multiple else _beside(source, value)
    try:
        # Closing the context closes what a File option opened to check its value.
        with click.Context(cmd) as ctx:
            opt.process_value(ctx, value)
    except click.ClickException as exc:
        raise ConfigError(f"{source}: key {key!r}: {first_line(exc)}") from None
    return value


def default_map(group: click.Group, config: dict, source: Path) -> dict:
    """Turn a parsed file into click's ``default_map`` for ``group``, validating every key."""
    commands = group.commands
    per_command: dict[str, dict[str, object]] = {name: {} for name in commands}
    tables = config.get(TABLES, {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: key {TABLES!r} must be a table of commands, e.g. "
                          f"[{TABLES}.query]")
    top_keys: dict[tuple[str, str], str] = {}  # (command, option) -> the key that set it
    for key, value in config.items():
        if key == TABLES:
            continue
        name = key.replace("_", "-")
        if isinstance(value, dict) and name in commands:
            raise ConfigError(f"{source}: key {key!r} is a table; options of one command go "
                              f"in [{TABLES}.{name}]")
        hits = [(c, cmd, *_lookup(cmd, name)) for c, cmd in commands.items()]
        hits = [(c, cmd, opt, neg) for c, cmd, opt, neg in hits
                if opt is not None and (c, opt.name) not in _TOP_LEVEL_SKIP]
        if not hits:
            if name in RESERVED:
                continue
            hint = f"; options of one command go in [{TABLES}.{name}]" if name in commands \
                else ""
            raise ConfigError(f"{source}: unknown key {key!r}{hint} (known: "
                              + ", ".join(sorted(_all_keys(group))) + ")")
        for c, cmd, opt, neg in hits:
            _twice(source, key, top_keys, (c, opt.name), opt)
            per_command[c][opt.name] = _value(source, key, cmd, opt, neg, value)
    for key, table in tables.items():
        name = key.replace("_", "-")
        if name not in commands:
            raise ConfigError(f"{source}: unknown key '{TABLES}.{key}' (commands: "
                              + ", ".join(sorted(commands)) + ")")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: key '{TABLES}.{key}': expected a table of xsearch "
                              f"{name}'s options ([{TABLES}.{name}]), got {_shown(table)}")
        cmd = commands[name]
        opts = _options(cmd)
        table_keys: dict[tuple[str, str], str] = {}
        for sub, value in table.items():
            opt, neg = _lookup(cmd, sub.replace("_", "-"))
            where = f"{TABLES}.{key}.{sub}"
            if opt is None:
                raise ConfigError(f"{source}: unknown key '{where}' (xsearch {name} "
                                  "options: " + ", ".join(sorted(opts)) + ")")
            _twice(source, where, table_keys, (name, opt.name), opt)
            per_command[name][opt.name] = _value(source, where, cmd, opt, neg, value)
    return {name: values for name, values in per_command.items() if values}


def _twice(source: Path, key: str, seen: dict[tuple[str, str], str],
           target: tuple[str, str], opt: click.Option) -> None:
    """Refuse two keys of one table that set one option (json and no-json, top-k and
    top_k): which one wins would be the file's order."""
    if (other := seen.setdefault(target, key)) != key:
        flag = next((o for o in opt.opts if o.startswith("--")), opt.opts[0])
        raise ConfigError(f"{source}: keys {other!r} and {key!r} both set xsearch "
                          f"{target[0]}'s {flag}; keep one")


def _all_keys(group: click.Group) -> set[str]:
    """The keys an unknown key's error lists: every option's, but hidden ones (a no- key,
    ``no-json``, is the off side of one listed)."""
    keys = set(RESERVED)
    for cmd in group.commands.values():
        keys |= {name for name, opt in _options(cmd).items() if not opt.hidden}
    return keys


def load_defaults(group: click.Group, cwd: Path | None = None) -> tuple[dict, Path | None]:
    """(default_map, file it came from) for the configuration file in effect."""
    path = find_config(cwd)
    if path is None:
        return {}, None
    return default_map(group, read_config(path), path), path
