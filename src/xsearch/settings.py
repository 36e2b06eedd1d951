"""Defaults from a configuration file, ``xsearch.toml``.

Looked for, first found wins: ``$XSEARCH_CONFIG`` (a file; empty = no config file), else
``./xsearch.toml``, else ``$XDG_CONFIG_HOME/xsearch/xsearch.toml`` (``~/.config/...``). Top-level
keys are option names and apply to every command that has that option (``index``, ``model``,
``layout``...); a table ``[command.query]`` (any command name) sets that command's options only.

The result is a click ``default_map``, so precedence is click's: flag > environment variable >
this file > built-in default.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .errors import ConfigError

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
#: Options whose value is a path: relative paths in the file are relative to the file.
PATH_KEYS = ("index",)
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
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc


def _options(cmd: click.Command) -> dict[str, click.Option]:
    """Long option names (without dashes) -> option."""
    out = {}
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name not in _NEVER:
            for opt in p.opts + p.secondary_opts:
                if opt.startswith("--"):
                    out[opt[2:]] = p
    return out


def _convert(source: Path, key: str, cmd: click.Command, opt: click.Option, value: object):
    if opt.multiple and not isinstance(value, list):
        value = [value]
    if isinstance(value, dict) or (not opt.multiple and isinstance(value, list)):
        raise ConfigError(f"{source}: key {key!r}: expected one value, got "
                          f"{type(value).__name__}")
    if key.split(".")[-1] in PATH_KEYS and isinstance(value, str):
        value = str(source.parent / Path(value).expanduser())
    try:
        opt.type_cast_value(click.Context(cmd), value)
    except click.BadParameter as exc:
        raise ConfigError(f"{source}: key {key!r}: {exc.message}") from None
    return value


def default_map(group: click.Group, config: dict, source: Path) -> dict:
    """Turn a parsed file into click's ``default_map`` for ``group``, validating every key."""
    commands = group.commands
    per_command: dict[str, dict[str, object]] = {name: {} for name in commands}
    tables = config.get(TABLES, {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: key {TABLES!r} must be a table of commands, e.g. "
                          f"[{TABLES}.query]")
    for key, value in config.items():
        if key == TABLES:
            continue
        name = key.replace("_", "-")
        hits = [(c, cmd, _options(cmd).get(name)) for c, cmd in commands.items()]
        hits = [(c, cmd, opt) for c, cmd, opt in hits
                if opt is not None and (c, opt.name) not in _TOP_LEVEL_SKIP]
        if not hits:
            if name in RESERVED:
                continue
            hint = f"; options of one command go in [{TABLES}.{name}]" if name in commands \
                else ""
            raise ConfigError(f"{source}: unknown key {key!r}{hint} (known: "
                              + ", ".join(sorted(_all_keys(group))) + ")")
        for c, cmd, opt in hits:
            per_command[c][opt.name] = _convert(source, key, cmd, opt, value)
    for key, table in tables.items():
        name = key.replace("_", "-")
        if name not in commands or not isinstance(table, dict):
            raise ConfigError(f"{source}: unknown key '{TABLES}.{key}' (commands: "
                              + ", ".join(sorted(commands)) + ")")
        cmd = commands[name]
        opts = _options(cmd)
        for sub, value in table.items():
            opt = opts.get(sub.replace("_", "-"))
            where = f"{TABLES}.{key}.{sub}"
            if opt is None:
                raise ConfigError(f"{source}: unknown key '{where}' (xsearch {name} "
                                  "options: " + ", ".join(sorted(opts)) + ")")
            per_command[name][opt.name] = _convert(source, where, cmd, opt, value)
    return {name: values for name, values in per_command.items() if values}


def _all_keys(group: click.Group) -> set[str]:
    keys = set(RESERVED)
    for cmd in group.commands.values():
        keys |= set(_options(cmd))
    return keys


def load_defaults(group: click.Group, cwd: Path | None = None) -> tuple[dict, Path | None]:
    """(default_map, file it came from) for the configuration file in effect."""
    path = find_config(cwd)
    if path is None:
        return {}, None
    return default_map(group, read_config(path), path), path
