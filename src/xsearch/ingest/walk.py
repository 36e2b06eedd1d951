"""Walking: which files under the given roots get indexed.

Order is deterministic (arguments in the order given, folders depth-first in sorted name
order). Skipped, each counted in :class:`WalkResult`:

- hidden names and build/virtualenv folders (``.git``, ``.venv``, ``node_modules``, ``build``,
  ``*.egg-info``, any folder holding ``pyvenv.cfg``...) unless ``hidden=True`` or an
  ``include`` pattern names them;
- paths matched by ``.gitignore`` / ``.xsearchignore`` files found in the walked folders
  (gitignore semantics via ``pathspec``; the deepest file with a matching rule decides),
  unless ``use_ignore_files=False``;
- paths matched by ``exclude`` patterns, and files not matched by ``include`` patterns when
  any are given (gitignore-style patterns, relative to the root argument);
- symlinks whose target lies outside every root argument, unless ``follow_symlinks=True``
  (broken links too); a folder reached twice (a link loop) is walked once;
- FIFOs, sockets and devices (never opened);
- names that are not valid UTF-8 (skipped with a warning showing them escaped, so no later
  ``.encode("utf-8")`` can fail on them).

Files named explicitly as arguments are taken as they are (hidden or excluded or not).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xsearch.errors import IngestError

from .base import display_path, err
from .files import open_regular
from .formats import supported_suffixes
from .reader import fmt_suffixes

#: Folders skipped by default (besides every hidden name): virtualenvs, caches, build output.
DEFAULT_SKIP_DIRS = frozenset(
    {
        "venv", "node_modules", "__pycache__", "build", "dist", "site-packages", "__pypackages__",
        "bower_components",
    }
)  # fmt: skip
DEFAULT_SKIP_GLOBS = ("*.egg-info",)
IGNORE_FILES = (".gitignore", ".xsearchignore")
_IGNORE_FILE_MAX = 1 << 20


@dataclass
class WalkOptions:
    """What :func:`walk` takes and skips; see the module docstring."""

    suffixes: Collection[str] = field(default_factory=supported_suffixes)
    exclude: Sequence[str] = ()
    include: Sequence[str] = ()
    use_ignore_files: bool = True
    hidden: bool = False
    follow_symlinks: bool = False


@dataclass
class WalkResult:
    """The files to index, in a stable order, and what was skipped on the way."""

    files: list[Path] = field(default_factory=list)
    excluded: int = 0  # by exclude patterns, or not matching include patterns
    ignored: int = 0  # by .gitignore / .xsearchignore
    hidden: int = 0  # hidden names, build and virtualenv folders
    special: int = 0  # FIFOs, sockets, devices
    links_skipped: int = 0  # symlinks leaving the roots, broken links
    bad_names: int = 0  # names that are not valid UTF-8
    warnings: list[str] = field(default_factory=list)
    #: A path left out as another name (symlink) of a file taken: path -> the path taken.
    aliases: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {
            "excluded": self.excluded,
            "ignored": self.ignored,
            "hidden": self.hidden,
            "special": self.special,
            "links_skipped": self.links_skipped,
            "bad_names": self.bad_names,
        }


def _spec(lines: Iterable[str]) -> Any:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(list(lines))


def _utf8_ok(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Walker:
    def __init__(self, options: WalkOptions, result: WalkResult,
                 fail: Callable[[Path, str], None]) -> None:
        self.options = options
        self.result = result
        self.fail = fail
        self.wanted = {s.lower() if s.startswith(".") else "." + s.lower()
                       for s in options.suffixes}
        self.exclude = _spec(options.exclude) if options.exclude else None
        self.include = _spec(options.include) if options.include else None
        self.include_parts = {part for pattern in options.include
                              for part in pattern.strip("/").split("/")
                              if part not in ("", "*", "**")}
        self.seen_files: dict[str, str] = {}  # real path -> the path taken
        self.seen_dirs: set[tuple[int, int]] = set()
        self.real_roots: list[str] = []

    def add_file(self, path: Path) -> None:
        real = os.path.realpath(path)
        if real not in self.seen_files:
            self.seen_files[real] = str(path)
            self.result.files.append(path)
        elif self.seen_files[real] != str(path):
            self.result.aliases[str(path)] = self.seen_files[real]

    def inside_roots(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep)
                   for r in self.real_roots)

    def named_by_include(self, name: str) -> bool:
        # A hidden name must be spelled with its dot ("*.md" does not reach ".notes.md").
        return any(fnmatch.fnmatch(name, part) and (part[0] == "." or name[0] != ".")
                   for part in self.include_parts)

    def default_skipped(self, name: str, path: str, is_dir: bool) -> bool:
        if self.options.hidden or self.named_by_include(name):
            return False
        if name.startswith("."):
            return True
        if not is_dir:
            return False
        return (name in DEFAULT_SKIP_DIRS
                or any(fnmatch.fnmatch(name, g) for g in DEFAULT_SKIP_GLOBS)
                or os.path.isfile(os.path.join(path, "pyvenv.cfg")))

    def ignore_specs(self, folder: str, rel: str) -> list[tuple[str, Any]]:
        specs: list[tuple[str, Any]] = []
        if not self.options.use_ignore_files:
            return specs
        for name in IGNORE_FILES:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                continue
            try:
                fd, _ = open_regular(path)
                with os.fdopen(fd, "rb") as fh:
                    data = fh.read(_IGNORE_FILE_MAX)
                specs.append((rel, _spec(data.decode("utf-8", "replace").splitlines())))
            except (IngestError, OSError, ValueError) as exc:
                self.result.warnings.append(f"{display_path(path)}: ignore file not used ({exc})")
        return specs

    @staticmethod
    def ignored_by(specs: list[tuple[str, Any]], rel: str, is_dir: bool) -> bool:
        # The deepest ignore file with a rule for this path decides (git semantics).
        for base, spec in reversed(specs):
            sub = rel[len(base) + 1:] if base else rel
            decision = spec.check_file(sub + "/" if is_dir else sub).include
            if decision is not None:
                return bool(decision)
        return False

    def walk_root(self, root: Path, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if key in self.seen_dirs:
            return
        self.seen_dirs.add(key)
        specs = self.ignore_specs(str(root), "")
        listing = self.list_dir(root)
        # Explicit stack of sorted listings instead of recursion: deep trees cannot overflow.
        stack: list[tuple[Iterator[os.DirEntry[str]], str, list[tuple[str, Any]]]] = []
        if listing is not None:
            stack.append((iter(listing), "", specs))
        while stack:
            entries, prefix, specs = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            pushed = self.visit(entry, prefix, specs)
            if pushed is not None:
                stack.append(pushed)

    def visit(self, entry: os.DirEntry[str], prefix: str, specs: list[tuple[str, Any]]
              ) -> tuple[Iterator[os.DirEntry[str]], str, list[tuple[str, Any]]] | None:
        result, name, path = self.result, entry.name, entry.path
        if not _utf8_ok(name):
            result.bad_names += 1
            result.warnings.append(f"{display_path(path)}: name is not valid UTF-8, skipped "
                                   "(rename it to index it)")
            return None
        rel = prefix + name
        try:
            if entry.is_symlink():
                if not self.options.follow_symlinks and not self.inside_roots(path):
                    result.links_skipped += 1
                    if os.path.exists(path):
                        result.warnings.append(
                            f"{display_path(path)}: symlink leads out of the indexed folders, "
                            "skipped (--follow-symlinks to follow it)")
                    return None
                try:
                    st = os.stat(path)
                except OSError:  # broken link
                    result.links_skipped += 1
                    return None
            else:
                st = entry.stat(follow_symlinks=False)
        except OSError as exc:  # a path too long (ENAMETOOLONG), an I/O error: said, not hid
            result.special += 1
            result.warnings.append(f"{display_path(path)}: cannot be looked at "
                                   f"({exc.strerror or exc}), skipped")
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        if not is_dir and not stat.S_ISREG(st.st_mode):
            result.special += 1
            if os.path.splitext(name)[1].lower() in self.wanted:
                result.warnings.append(f"{display_path(path)}: not a regular file (FIFO, "
                                       "socket or device), skipped")
            return None
        if not is_dir and os.path.splitext(name)[1].lower() not in self.wanted:
            return None  # counted nowhere: only files we would index count as left out
        if self.default_skipped(name, path, is_dir):
            result.hidden += 1
            return None
        if self.ignored_by(specs, rel, is_dir):
            result.ignored += 1
            return None
        if self.exclude is not None and self.exclude.match_file(rel + "/" if is_dir else rel):
            result.excluded += 1
            return None
        if not is_dir:
            if self.include is not None and not self.include.match_file(rel):
                result.excluded += 1
                return None
            self.add_file(Path(path))
            return None
        key = (st.st_dev, st.st_ino)
        if key in self.seen_dirs:  # symlink loop or folder already walked
            return None
        self.seen_dirs.add(key)
        listing = self.list_dir(Path(path))
        if listing is None:
            return None
        return iter(listing), rel + "/", specs + self.ignore_specs(path, rel)

    def list_dir(self, path: Path) -> list[os.DirEntry[str]] | None:
        try:
            with os.scandir(path) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.fail(path, f"cannot read: {exc.strerror or exc}")
            return None


def walk(
    roots: Iterable[Path | str],
    options: WalkOptions | None = None,
    *,
    on_error: Callable[[Path, IngestError], None] | None = None,
) -> WalkResult:
    """Find the files to index under ``roots`` (see the module docstring for what is skipped).

    A missing path, an explicitly named file with an unsupported suffix or an unreadable
    folder raises IngestError, or is passed to ``on_error`` (and skipped) when given.
    """
    options = options or WalkOptions()
    result = WalkResult()

    def fail(path: Path, reason: str) -> None:
        error = err(path, reason)
        if on_error is None:
            raise error
        on_error(path, error)

    walker = _Walker(options, result, fail)
    paths = [Path(r) for r in roots]
    walker.real_roots = [os.path.realpath(p) for p in paths]
    for root in paths:
        if not _utf8_ok(str(root)):
            result.bad_names += 1
            result.warnings.append(f"{display_path(root)}: name is not valid UTF-8, skipped")
            continue
        try:
            st = root.stat()
        except FileNotFoundError:
            fail(root, f"path not found: {root}")
            continue
        except OSError as exc:
            fail(root, f"cannot read: {exc.strerror or exc}")
            continue
        if stat.S_ISREG(st.st_mode):
            if root.suffix.lower() not in walker.wanted:
                kind = root.suffix.lower() or "(no suffix)"
                fail(root, f"unsupported file type {kind}; supported: "
                           f"{fmt_suffixes(walker.wanted)}")
            else:
                walker.add_file(root)
        elif stat.S_ISDIR(st.st_mode):
            walker.walk_root(root, st)
        else:
            result.special += 1
            result.warnings.append(f"{display_path(root)}: not a regular file or folder "
                                   "(FIFO, socket or device), skipped")
    return result


def iter_files(
    paths: Iterable[Path | str],
    suffixes: Collection[str] | None = None,
    *,
    on_error: Callable[[Path, IngestError], None] | None = None,
) -> Iterator[Path]:
    """Yield the files :func:`walk` finds under ``paths`` with default options."""
    options = WalkOptions() if suffixes is None else WalkOptions(suffixes=suffixes)
    yield from walk(paths, options, on_error=on_error).files
