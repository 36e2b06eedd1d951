"""Which indexed files a path or glob names (``query --path``), read as ``xsearch rm`` reads a
path, and how a stored path is shown."""

from __future__ import annotations

import fnmatch
import os
import re
import sqlite3
from glob import escape as glob_escape
from pathlib import Path

from .texts import has_surrogates


def display_path(path: str) -> str:
    """Path relative to the working directory when it lies below it."""
    try:
        return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


def path_globs(glob: str, here: str) -> tuple[list[str], str | None]:
    """(globs over the stored absolute path, glob over the file name or None) for --path,
    read as ``xsearch rm`` reads a path: ``~``, ``.``, ``..`` and ``//`` folded, relative to
    ``here``; a glob starting with a wildcard also matches anywhere, a bare one by name, and
    a path without wildcards also every file below it (a folder)."""
    g = os.path.expanduser(glob)
    if os.path.isabs(g):
        globs = [os.path.normpath(g)]
    else:
        globs = [os.path.normpath(os.path.join(glob_escape(here), g))]
        if re.search(r"[*?\[]", g.split(os.sep)[0]):
            globs.append(os.path.normpath(g))
    if not re.search(r"[*?\[]", g):  # a folder names every file below it, as for rm
        globs.append(os.path.join(globs[0].rstrip(os.sep), "*"))
    return globs, None if os.sep in g or os.path.isabs(g) else os.path.normpath(g)


def paths_that_may_match(glob: str, here: str) -> tuple[str, list[str]]:
    """SQL for the indexed paths a --path glob can match: every path, or, when each of its
    forms (``path_globs``) starts with a literal part holding a "/", only paths starting with
    one of those parts (a range on the primary key, not a pass over every file)."""
    globs, name = path_globs(glob, here)
    starts = [re.split(r"[*?\[]", g, maxsplit=1)[0] for g in globs]
    if os.name != "posix" or name is not None or any("/" not in p for p in starts):
        return "SELECT path FROM files", []
    sql = " OR ".join("(path >= ? AND path < ?)" for _ in starts)
    bounds = [x for p in starts for x in (p, p + "\U0010ffff")]
    return f"SELECT path FROM files WHERE {sql}", bounds


def matching_paths(conn: sqlite3.Connection, glob: str, here: str) -> list[str]:
    """Indexed paths (``files.path``) that ``glob`` names, relative to ``here``; the glob is
    matched once per file, not once per passage."""
    if has_surrogates(glob):  # bytes that are not UTF-8: no indexed path holds them
        return []
    globs, name = path_globs(glob, here)
    matchers = [re.compile(fnmatch.translate(os.path.normcase(g))).match for g in globs]
    by_name = name and re.compile(fnmatch.translate(os.path.normcase(name))).match
    # A name such as report[1].txt also names itself, as it does for rm.
    exact = os.path.normcase(os.path.normpath(os.path.join(here, os.path.expanduser(glob))))
    out = []
    for (p,) in conn.execute(*paths_that_may_match(glob, here)):
        c = os.path.normcase(p)
        if c == exact or any(m(c) for m in matchers) or (
                by_name and by_name(os.path.basename(c))):
            out.append(p)
    return out
