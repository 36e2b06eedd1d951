"""Typed library errors; the CLI turns each into a one-line message and a non-zero exit."""

from __future__ import annotations


class XsearchError(Exception):
    """Base class for every error xsearch reports to a user."""


def first_line(exc: BaseException, empty: str | None = None) -> str:
    """The first line of an error's message (``empty``, else its type's name, if it has none):
    what a one-line report of it shows."""
    if str(exc):
        return str(exc).splitlines()[0]
    return type(exc).__name__ if empty is None else empty


class ModelNotFoundError(XsearchError):
    """The embedding model named is neither bundled, cached nor a local folder."""


class IndexMismatchError(XsearchError):
    """The index was built with another model, dimension or chunking."""


class CorruptIndexError(XsearchError):
    """The index directory exists but its config, SQLite or FAISS file is unreadable."""


class EmptyIndexError(XsearchError):
    """There is no index yet, or it holds no passages."""


class IngestError(XsearchError):
    """A file could not be read or parsed."""


class SkippedFile(IngestError):
    """A file that is not worth failing over (binary, empty): skipped with a warning."""


class IndexLockedError(XsearchError):
    """Another process is writing the index."""


class IndexWriteError(XsearchError):
    """The index could not be written (disk full, read-only, I/O error); what was committed
    before stays as it was."""


class DatasetError(XsearchError):
    """A benchmark dataset is missing or malformed."""


class UnknownLanguageError(XsearchError):
    """A language code or name that is not recognised, or that the index holds no text in."""


class UnknownTopicError(XsearchError):
    """A topic label that the index does not hold."""


class NotIndexedError(XsearchError):
    """A path given to ``xsearch rm`` names no indexed file."""


class ConfigError(XsearchError):
    """The configuration file (xsearch.toml) is unreadable or holds a bad key or value."""


class NotFoundError(XsearchError):
    """A passage or document id that the index does not hold."""


def damaged(exc: BaseException, db: object = None) -> str:
    """One line for an index database SQLite finds damaged, with what mends it."""
    why = first_line(exc)
    if why.startswith("Could not decode to UTF-8"):  # its message quotes the garbage
        why = f"text of column {why.split('column ', 1)[-1].split(' ', 1)[0]} is not UTF-8"
    return (f"{f'index database {db}' if db else 'the index database'} is damaged "
            f"({why}); `xsearch index PATHS --full` rebuilds the index from your files")


class InvalidArgument(XsearchError, ValueError):
    """A library call was given a value it cannot take (the CLI's option types refuse it at
    the command line)."""
