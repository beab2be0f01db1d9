"""Event files to one normalised LazyFrame, collected by the run. A text file is read by Polars'
reader (parallel) until a run finds it cannot be (`unread_found`: a broken line, a row with
more cells than its header). An NDJSON file is then still read by the reader but for the lines
it skips (blank) or may not read, which are read one by one (`_Patch`): each bad line a row of
its own with its reason. If that cannot be, it is read line by line (still lazily, unless it is
not all UTF-8); a CSV file record by record (into memory). Bytes that are not UTF-8 are read
as U+FFFD: the row still reaches the ledger (as an unknown customer, say).

Consecutive files that Polars reads alike (NDJSON read whole; CSV of one header; Parquet whose
columns agree) are read by one scan. Every input row keeps where it came from (`_file`; `_row`,
numbered across its scan's files), so the ledger can account for it.
Properties that the plan needs become String columns `p.<name>`, compared as text; a number is
written by its shortest decimal text (`2.50` → `"2.5"`). Timestamps become UTC datetimes; a row
whose timestamp does not parse keeps a null `timestamp` and is counted invalid by the ledger.
"""

from __future__ import annotations

import codecs
import csv
import glob
import gzip
import io
import json
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import polars as pl
import zstandard
from polars._typing import PolarsDataType as DType

FORMATS = {".jsonl": "ndjson", ".ndjson": "ndjson", ".csv": "csv", ".parquet": "parquet"}
# (ext) NDJSON and CSV files may be compressed, with gzip or zstd: `events.jsonl.gz`, `events.csv.zst`
COMPRESSED = (".gz", ".zst")
EXTENSIONS = ", ".join([*FORMATS, *(e + c for c in COMPRESSED for e, f in FORMATS.items() if f != "parquet")])
FIELDS = ("transaction_id", "customer_id", "event_type", "timestamp")
PREFIX = "p."  # our columns
FLAT = "properties."  # flat property columns in CSV and Parquet files
UTC_TIME = pl.Datetime("us", "UTC")


class EventInputError(Exception):
    """An events argument that names no readable event file."""


# What a reader raises on a file it cannot read (OSError: a broken compressed file)
READ_ERRORS = (pl.exceptions.PolarsError, OSError)


class EventReadError(Exception):
    """Event files that exist but cannot be read (a corrupt Parquet file, broken CSV quoting):
    the run stops rather than account for part of them."""


@dataclass(frozen=True, slots=True)
class EventFile:
    index: int  # position in input order: files as given, globs and folders sorted
    path: Path
    format: str


EventPaths = Iterable[str | Path] | str | Path  # event files, globs and folders, or one of them


def event_paths(arguments: EventPaths) -> tuple[str | Path, ...]:
    """The paths, globs and folders given, as a tuple (an iterator can be read once only). One
    path may be given alone: a string is not a sequence of one-letter paths."""
    return (arguments,) if isinstance(arguments, str | Path) else tuple(arguments)


def format_of(path: Path) -> str | None:
    """An event file's format by its name's extension, None if it names no event file."""
    if path.suffix in COMPRESSED:
        inner = FORMATS.get(path.with_suffix("").suffix)
        return inner if inner != "parquet" else None  # (Parquet compresses its own columns)
    return FORMATS.get(path.suffix)


def _shown(path: Path, folder: Path) -> bool:
    """Whether a file found in a folder is neither hidden nor in a hidden folder under it (as
    spec files: `.git/`, macOS's `._events.jsonl`, which hold no events)."""
    return not any(part.startswith(".") for part in path.relative_to(folder).parts)


def expand(arguments: EventPaths) -> tuple[EventFile, ...]:
    """Paths, globs and folders (`event_paths`) to event files in input order; each file once.
    None is an error, as a glob matching nothing is."""
    paths: list[Path] = []
    seen: set[Path] = set()
    for argument in event_paths(arguments):
        text = str(argument)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if format_of(p) and p.is_file() and _shown(p, path))
        elif path.is_file():  # (before a glob: `a[1].jsonl` may be a file's name)
            if format_of(path) is None:
                raise EventInputError(f"{text}: unknown event file type; expected one of {EXTENSIONS}")
            found = [path]
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True) if format_of(Path(p)))
        else:
            raise EventInputError(f"{text}: no such file, folder or matching glob")
        if not found:
            raise EventInputError(f"{text}: holds no event files ({EXTENSIONS})")
        for p in found:
            if p not in seen:
                seen.add(p)
                paths.append(p)
    if not paths:
        raise EventInputError("no events given: name event files, globs or folders")
    return tuple(EventFile(i, p, format_of(p) or "") for i, p in enumerate(paths))


GZIP, ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"  # their files' first bytes


def _compression(path: Path) -> bytes | None:
    """How a file is compressed (GZIP, ZSTD), None if it is not, found as Polars finds it: by its
    first bytes."""
    with path.open("rb") as handle:
        start = handle.read(4)
    return GZIP if start[:2] == GZIP else ZSTD if start == ZSTD else None


def _frames(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The bytes of a file's zstd frames (`read`: of its bytes), one after another, decompressed;
    a frame cut short is an error (zstandard's stream reader ends such a file silently)."""
    context = zstandard.ZstdDecompressor()
    frame, data = None, b""
    while data or (data := read(1 << 20)):
        frame = frame or context.decompressobj()
        yield frame.decompress(data)
        data = frame.unused_data if frame.eof else b""
        frame = None if frame.eof else frame
    if frame is not None:
        raise zstandard.ZstdError("incomplete frame: the file is cut short")


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Reading a file here, where a broken compressed file is an EventReadError."""
    try:
        yield
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise EventReadError(f"could not read {path.as_posix()}: {exc}") from exc


def _chunks(path: Path) -> Iterator[bytes]:
    """A text event file's bytes, decompressed (each gzip member, each zstd frame), about a
    megabyte at a time."""
    compression = _compression(path)
    with _reading(path), gzip.open(path) if compression == GZIP else path.open("rb") as handle:
        read = _frames(handle.read) if compression == ZSTD else iter(partial(handle.read, 1 << 20), b"")
        yield from (chunk for chunk in read if chunk)


class _Stream(io.RawIOBase):
    """Chunks of bytes (`_chunks`) as a binary file to read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._rest = chunks, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._rest:
            self._rest = memoryview(next(self._chunks, b""))
        size = min(len(buffer), len(self._rest))
        buffer[:size], self._rest = self._rest[:size], self._rest[size:]
        return size


def text_bytes(path: Path) -> int:
    """The bytes of a text event file's text: its size, or for a compressed file its size
    times the ratio at which its first megabyte decompresses."""
    size = path.stat().st_size
    compression = _compression(path)
    if compression is None:
        return size
    with path.open("rb") as handle:
        start = handle.read(1 << 20)
    if compression == GZIP:
        inflate: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)  # (a gzip header)
    else:
        inflate = zstandard.ZstdDecompressor().decompressobj()
    try:
        text = len(inflate.decompress(start))
    except (zlib.error, zstandard.ZstdError):
        return size  # (broken: its scan will say so)
    # (of its first gzip member or zstd frame)
    return size * text // max(len(start) - len(inflate.unused_data), 1)


# Polars expands glob characters in the paths it reads: a file named `a[1].jsonl` matched no
# file (its rows silently missing), `b*.jsonl` every file so named. `expand` finds the files;
# Polars reads each one as named (NDJSON's scan takes no `glob` option: its paths are escaped).
# Several files read by one scan give each row's file as `_path` (`include`).
def scan_parquet(
    paths: Sequence[Path], include: str | None = None, schema: pl.Schema | None = None
) -> pl.LazyFrame:
    """Parquet files; given a `schema`, those of its columns that a file lacks are null."""
    given = schema is not None
    options: dict[str, Any] = {"missing_columns": "insert", "extra_columns": "ignore"} if given else {}
    named = [str(p) for p in paths]
    return pl.scan_parquet(named, glob=False, include_file_paths=include, schema=schema, **options)


def scan_lines(path: Path) -> pl.LazyFrame:
    return pl.scan_lines(path, glob=False)


def _scan_ndjson(
    paths: Sequence[Path], schema: Mapping[str, DType], include: str | None = None
) -> pl.LazyFrame:
    escaped = [re.sub(r"([][*?])", r"[\1]", str(p)) for p in paths]
    return pl.scan_ndjson(escaped, schema=schema, include_file_paths=include)


def _csv_scan(paths: Sequence[Path], include: str | None = None, ragged: bool = False) -> pl.LazyFrame:
    # (An empty file, without a header, holds no rows. No schema is given: with one, Polars
    # reads a row with more cells than it has by position, or drops the surplus. `ragged`: the
    # surplus is dropped, for a file whose rows that have one are known: `_Ragged`.)
    return pl.scan_csv(
        [str(p) for p in paths],
        infer_schema=False,
        encoding="utf8-lossy",
        raise_if_empty=False,
        glob=False,
        include_file_paths=include,
        truncate_ragged_lines=ragged,
    )


def _number_text(column: pl.Expr, dtype: DType) -> pl.Expr:
    """A property column as text, numbers by their shortest decimal form; a list or struct (not a
    property value a metric can use) as its JSON text, as the NDJSON reader gives it."""
    if dtype == pl.String:
        return column
    if dtype.is_nested():
        encoded = pl.struct(column.alias("v")).struct.json_encode()
        return pl.when(column.is_not_null()).then(encoded.str.strip_prefix('{"v":').str.strip_suffix("}"))
    if dtype.is_integer():
        return column.cast(pl.String)
    if isinstance(dtype, pl.Decimal):
        # "2.50" → "2.5", "3.00" → "3"
        return column.cast(pl.String).str.replace(r"(\.\d*?)0+$", "$1").str.replace(r"\.$", "")
    return column.cast(pl.String)


RFC_3339 = "%Y-%m-%dT%H:%M:%S%.f%#z"  # an offset: Z, +02:00, +0200 or +02
WITHOUT_OFFSET = "%Y-%m-%dT%H:%M:%S%.f"  # read as UTC
DATE = "%Y-%m-%d"  # midnight UTC


def _parsed(text: pl.Expr, form: str) -> pl.Expr:
    return text.str.to_datetime(form, time_zone="UTC", strict=False, time_unit="us")


def _timestamp(column: pl.Expr, dtype: DType) -> pl.Expr:
    if dtype == pl.String:
        # Each value read on its own (Polars' format inference would read every value of a
        # column by the first one's format: after a time without an offset, each "Z" was
        # unparseable). RFC 3339 as written; else with a space for the "T", in either case,
        # among spaces, without an offset (UTC), or a bare date (midnight UTC).
        loose = column.str.strip_chars().str.to_uppercase().str.replace(" ", "T", literal=True)
        exact = _parsed(column, RFC_3339)
        fallback = pl.coalesce(*(_parsed(loose, form) for form in (RFC_3339, WITHOUT_OFFSET, DATE)))
        return pl.when(exact.is_not_null()).then(exact).otherwise(fallback)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return column.dt.replace_time_zone("UTC").cast(UTC_TIME)
        return column.dt.convert_time_zone("UTC").cast(UTC_TIME)
    if isinstance(dtype, pl.Date):
        return column.cast(UTC_TIME)
    return pl.lit(None, dtype=UTC_TIME)


def _map_values(dtype: DType | None) -> DType | None:
    """The type of a map's values, when `dtype` is one: a list of key and value pairs with text
    keys, as Polars reads a Parquet MAP column (Spark and Arrow write `properties` so)."""
    if not isinstance(dtype, pl.List) or not isinstance(dtype.inner, pl.Struct):
        return None
    fields = {f.name: f.dtype for f in dtype.inner.fields}
    return fields["value"] if fields.keys() == {"key", "value"} and fields["key"] == pl.String else None


def _absent(column: pl.Expr, dtype: DType) -> pl.Expr:
    """No value, or empty text."""
    return column.is_null() | (column == "") if dtype == pl.String else column.is_null()


def _json_path(*names: str) -> str:
    """A JSONPath selecting a nested member by exact name (any characters)."""
    return "$" + "".join("[" + json.dumps(name) + "]" for name in names)


def _as_read(
    frame: pl.LazyFrame, name: str, members: pl.Expr, matched: Mapping[str, pl.Expr]
) -> tuple[pl.LazyFrame, dict[str, pl.Expr]]:
    """Members of a JSON object, each matched by its JSONPath (which gives a number as its
    float's text: `1000.0`, `1e-7`), as Polars' NDJSON reader gives them (`1000`, `0.0000001`):
    `members`, the object's JSON text, decoded once into column `name` with every member as
    text — so lines read one by one filter and group as they would read by the reader. A row
    where one of them is a list or an object (or text that starts like one) does not decode
    so: its members stay as matched."""
    if not matched:
        return frame, {}
    nested = pl.any_horizontal(*(m.str.contains(r"^[\[{]") for m in matched.values())).fill_null(False)
    frame = frame.with_columns(nested.alias(name + "_nested")).with_columns(
        pl.when(members.str.starts_with("{") & ~pl.col(name + "_nested"))
        .then(members)
        .str.json_decode(pl.Struct(dict.fromkeys(matched, pl.String())))
        .alias(name)
    )
    field, kept = pl.col(name).struct.field, pl.col(name + "_nested")
    return frame, {member: pl.when(kept).then(m).otherwise(field(member)) for member, m in matched.items()}


def _ndjson_schema(properties: Sequence[str]) -> dict[str, DType]:
    """Every field as text: Polars' reader writes a JSON number by its shortest decimal form."""
    schema: dict[str, DType] = dict.fromkeys(FIELDS, pl.String())
    if properties:
        schema["properties"] = pl.Struct(dict.fromkeys(properties, pl.String()))
    return schema


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _lines(path: Path) -> int:
    """The lines of a file as Polars' line reader counts them (a last line without its newline
    too), read in chunks here: a Polars query per file cost 1 ms a file (0.8 s for a thousand
    small files), and one query over many files starts a thread per file."""
    if _compression(path):  # (Polars decompresses faster: 1M events, 0.24 s against 0.58 s here)
        return int(scan_lines(path).select(pl.len()).collect().item())
    lines, last = 0, b"\n"
    for chunk in _chunks(path):
        lines += chunk.count(b"\n")
        last = chunk[-1:]
    return lines + (last != b"\n")


# Text files that Polars' readers cannot read whole, path → `_stamp`: so a changed file is
# looked at again. They are read line by line (NDJSON) or record by record (CSV) instead.
_UNREAD: dict[Path, tuple[int, int]] = {}


@dataclass(frozen=True, slots=True)
class _Patch:
    """An NDJSON file that Polars' reader reads but for some lines, which are read one by one:
    the lines it skips (blank) or may not read (`_suspect`), set `aside` in a Parquet file with
    their numbers (`_row`); `rows`, those numbers. The reader reads `copy`, the file with an
    empty object in place of each (so that each of its rows is the file's line: those rows are
    left out). `in_place`: some of those lines may be events, which must keep their place among
    the reader's rows (the first of a transaction id's rows in input order is the one that
    counts); the others claim no transaction id. `recoded`: the file is not all UTF-8, the copy
    has U+FFFD for its other bytes."""

    stamp: tuple[int, int]
    rows: pl.Series
    aside: Path
    copy: Path
    in_place: bool
    recoded: bool

    def discard(self) -> None:
        """Remove the files made for the patch."""
        for made in (self.aside, self.copy):
            made.unlink(missing_ok=True)


# NDJSON files read so, path → their `_Patch` (a changed file is looked at again)
_PATCHED: dict[Path, _Patch] = {}


@dataclass(frozen=True, slots=True)
class _Ragged:
    """A CSV file whose only records that Polars' reader cannot read have more cells than its
    header (`rows`, their numbers): it reads the file with those cut short, and each is an
    invalid row with its reason (`reasons`)."""

    stamp: tuple[int, int]
    rows: pl.Series
    reasons: pl.Series


# CSV files read so, path → their `_Ragged`
_RAGGED: dict[Path, _Ragged] = {}
# the folder of the files made for patches, made with the first one, removed when the process ends
_MADE: list[tempfile.TemporaryDirectory[str]] = []


def _unread(file: EventFile) -> bool:
    stamp = _UNREAD.get(file.path)  # (a file not marked is not looked at: 5,000 files, 15,000 stats)
    return stamp is not None and stamp == _stamp(file.path)


def _patch(file: EventFile) -> _Patch | None:
    patch = _PATCHED.get(file.path)
    return patch if patch is not None and patch.stamp == _stamp(file.path) else None


def _ragged(file: EventFile) -> _Ragged | None:
    ragged = _RAGGED.get(file.path)
    return ragged if ragged is not None and ragged.stamp == _stamp(file.path) else None


def _surplus(path: Path) -> _Ragged | None:
    """The records of a CSV file with more cells than its header (`_Ragged`), if each of its
    lines is one record (none has an odd number of quotes: a quoted value spans lines) and some
    are; None otherwise. Cells are counted by their commas, those in quoted values left out (in
    a UTF-8 copy of a file that is not all UTF-8: Polars' line reader refuses it)."""
    line = pl.col("line")
    cells = line.str.replace_all(r'"(?:[^"]|"")*"', "").str.count_matches(",", literal=True) + 1
    text = path if _utf8(path) else _utf8_copy(path)
    try:
        lines = scan_lines(text).select(
            cells.alias("cells"), (line.str.count_matches('"', literal=True) % 2 == 1).alias("_open")
        )
        header = lines.head(1).collect().get_column("cells")
        width = int(header.item()) if len(header) else 0
        found = _numbered(lines).filter(pl.col("_open") | (pl.col("cells") > width)).collect()
    finally:
        if text != path:
            text.unlink()
    if not width or found.is_empty() or found.get_column("_open").any():
        return None
    rows = (found.get_column("_row").cast(pl.UInt64) - 1).alias("_row")  # (the header is line 1)
    reasons = found.select(pl.format("{} cells where the header has " + str(width), "cells")).to_series()
    return _Ragged(_stamp(path), rows, reasons)


def _suspect(line: pl.Expr) -> pl.Expr:
    """Whether Polars' NDJSON reader may not read a line, or skips it, by checks cheaper than its
    own: blank; not starting with "{" (not an object); no transaction id that JSONPath finds (it
    finds none in malformed JSON); a `properties` member that is neither an object nor null —
    the first one, found by a pattern. A line the pattern misleads (an object's own `properties`
    before it) makes the copy fail to read as well: the file is then read line by line."""
    properties = line.str.extract(r'"properties"\s*:\s*(\S)', 1)
    return (
        (line.str.strip_chars() == "")
        | ~line.str.starts_with("{")
        | line.str.json_path_match("$.transaction_id").is_null()
        | (properties.is_not_null() & ~properties.is_in(["{", "n"]))
    )


def _made(suffix: str) -> Path:
    """A new file in a folder removed when the process ends."""
    if not _MADE:
        _MADE.append(tempfile.TemporaryDirectory(prefix="pricing-"))
    handle, name = tempfile.mkstemp(suffix=suffix, dir=_MADE[0].name)
    os.close(handle)
    return Path(name)


def _set_aside(path: Path, found: pl.Expr) -> tuple[Path, Path]:
    """The lines of a text file where `found` holds (of `line`), with their numbers (`_row`),
    into a Parquet file; and a copy of the file (decompressed) with an empty object in place of
    each of them: from one read of it."""
    aside, copy = _made(".parquet"), _made(".jsonl")
    lines = _numbered(scan_lines(path)).with_columns(found.alias("_found"))
    kept = pl.when("_found").then(pl.lit("{}")).otherwise("line")
    try:
        pl.collect_all(
            [
                lines.filter("_found").select("_row", "line").sink_parquet(aside, lazy=True),
                lines.select(kept).sink_csv(copy, include_header=False, quote_style="never", lazy=True),
            ]
        )
    except READ_ERRORS:
        aside.unlink()
        copy.unlink()
        raise
    return aside, copy


def _utf8_copy(path: Path) -> Path:
    """A copy of a text file (decompressed) that is not all UTF-8, its other bytes as U+FFFD, as
    they read line by line (`_lossy_lines`): Polars' readers refuse such a file."""
    copy = _made(".jsonl")
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        with copy.open("w", encoding="utf-8", newline="") as text:
            for chunk in _chunks(path):
                text.write(decoder.decode(chunk))
            text.write(decoder.decode(b"", final=True))
    except OSError:  # (no room for it)
        copy.unlink()
        raise
    return copy


def _patched(file: EventFile, rows: int | None, lines: int) -> _Patch | None:
    """The patch of an NDJSON file that the reader read `rows` rows of, short of its `lines`
    (each line it skipped is blank, or the file is read line by line), or failed to read (None:
    its suspect lines, found in a UTF-8 copy of a file that is not all UTF-8; if none, the copy
    is the patch); None if the file cannot be read so (no room for the copies)."""
    stamp, line = _stamp(file.path), pl.col("line")
    recoded = rows is None and not _utf8(file.path)
    text = file.path
    try:
        text = _utf8_copy(file.path) if recoded else file.path
        aside, copy = _set_aside(text, _suspect(line) if rows is None else line.str.strip_chars() == "")
    except READ_ERRORS:
        return None
    finally:
        if text != file.path:
            text.unlink()
    kept = pl.read_parquet(aside).select(
        pl.col("_row").cast(pl.UInt64), _malformed(line).is_null().alias("_event")
    )
    events = bool(kept.get_column("_event").any())
    patch = _Patch(stamp, kept.get_column("_row"), aside, copy, events, recoded)
    if (recoded or not kept.is_empty()) if rows is None else rows + kept.height == lines:
        return patch
    patch.discard()
    return None


def _reader_rows(path: Path, form: str, ragged: bool = False) -> int | None:
    """The rows Polars' reader reads from a text file, None if it cannot read it (NDJSON: a broken
    line, a line that is not an object, a `properties` that is not one; CSV: a row with more
    cells than the header, unless `ragged`, broken quoting)."""
    if form == "csv":
        check = _csv_scan([path], ragged=ragged).select(pl.len().alias("rows"), pl.all().null_count())
    else:
        schema = {**_ndjson_schema(()), "properties": pl.Struct({})}
        check = _scan_ndjson([path], schema).select(pl.len().alias("rows"), pl.all().null_count())
    try:
        return int(check.collect().get_column("rows").item())
    except READ_ERRORS:
        return None


def _mark(file: EventFile, rows: int | None) -> bool:
    """Mark a text file that the reader read `rows` rows of (None: it failed), unless those are
    all its rows; whether it was marked. An NDJSON file is patched (`_patched`) if it can be and
    is not already: a stray blank line, or one broken line, cost a run line by line (1M events,
    18 s and 17 s against 2 s). Otherwise it is read line by line; a CSV file, `_mark_csv`."""
    if file.format == "csv":
        return _mark_csv(file, rows)
    lines = 0 if rows is None else _lines(file.path)
    if rows == lines:
        return False
    patch = _patched(file, rows, lines) if _patch(file) is None else None
    old = _PATCHED.pop(file.path, None)
    if old is not None:
        old.discard()
    if patch is not None:
        _PATCHED[file.path] = patch
    else:
        _UNREAD[file.path] = _stamp(file.path)
    return True


def _mark_csv(file: EventFile, rows: int | None) -> bool:
    """Mark a CSV file that the reader failed to read (`rows` None): with its records that have
    more cells than its header (`_surplus`), else to be read record by record, as a file so
    marked whose `rows` fall short of its records (its lines but the header) is; whether it was
    marked. (One such record cost a run record by record: 1M events, 7.4–8.3 s against 0.75 s.)"""
    ragged = _ragged(file)
    if rows is not None and (ragged is None or rows == _lines(file.path) - 1):
        return False
    try:
        found = _surplus(file.path) if rows is None and ragged is None else None
    except READ_ERRORS:  # (no room for a UTF-8 copy)
        found = None
    _RAGGED.pop(file.path, None)
    if found is None:
        _UNREAD[file.path] = _stamp(file.path)
    else:
        _RAGGED[file.path] = found
    return True


def _failed(file: EventFile) -> bool:
    """After a run failed: mark a text file if Polars' reader cannot read it whole, or a patched
    file whose copy it cannot read, or a ragged one it cannot read so; whether it was marked."""
    patch, ragged = _patch(file), _ragged(file)
    if patch is None and ragged is None:
        return _mark(file, _reader_rows(file.path, file.format))
    if _reader_rows(file.path if patch is None else patch.copy, file.format, ragged is not None) is not None:
        return False
    return _mark(file, None)


def unread_found(files: Sequence[EventFile], rows: Mapping[int, int] | None = None) -> bool:
    """Mark the text files that Polars' readers cannot read whole (`_mark`); whether any was
    found. After a failed read (`rows` None) each text file not yet marked is read to find out
    (`_failed`); after a read that succeeded, an NDJSON file that gave fewer rows (`rows`: file
    index → rows read) than it has lines (the reader skips blank lines) is marked, as a ragged CSV
    file that gave fewer rows than it has records (`_mark_csv`). A file is not checked before
    its run: reading it once more cost a fifth of metering it (a fifth of 2.4 s for 1M NDJSON
    events)."""
    text = [f for f in files if f.format != "parquet" and not _unread(f)]
    if rows is None:
        marked = [_failed(f) for f in text]
    else:
        marked = [_mark(f, rows.get(f.index, 0)) for f in text if f.format == "ndjson" or _ragged(f)]
    return any(marked)


def _utf8(path: Path) -> bool:
    """Whether a file is UTF-8 text throughout (Polars' line reader refuses any other)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in _chunks(path):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _lossy_lines(path: Path) -> pl.LazyFrame:
    """The lines of a text file that is not all UTF-8, as Polars' line reader gives those of one
    that is (a line per newline, a last line without one too, "\\r\\n" read as a newline), into
    memory; bytes that are not UTF-8 read as U+FFFD, as CSV files are read."""
    frames: list[pl.DataFrame] = []
    rest = b""
    for chunk in _chunks(path):
        *lines, rest = (rest + chunk).split(b"\n")
        frames.append(_text_lines(lines))
    return pl.concat([*frames, _text_lines([rest] if rest else [])]).lazy()


def _text_lines(lines: list[bytes]) -> pl.DataFrame:
    text = [line.removesuffix(b"\r").decode(errors="replace") for line in lines]
    return pl.DataFrame({"line": text}, schema={"line": pl.String()})


def _csv_text(path: Path) -> TextIO:
    """A CSV file's text as Polars reads it: a byte-order mark dropped, bytes that are not UTF-8
    as U+FFFD, line ends left to the CSV reader."""
    raw = io.BufferedReader(_Stream(_chunks(path)), buffer_size=1 << 20)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


# Python's words for broken quoting, in a finance reader's
_CSV_ERRORS = {
    "unexpected end of data": "a quote is not closed (the rest of the file is this row)",
    "',' expected after '\"'": "text after a closing quote",
}
CSV_CHUNK = 100_000  # rows of a CSV file read record by record, put into Polars at a time


def _csv_records(path: Path) -> pl.LazyFrame:
    """A CSV file that Polars cannot read, record by record with Python's csv module, as a text
    column per name of its header and `_malformed`: a record with more cells than the header, or
    broken quoting (a quote not closed, text after a closing quote), is a row of its own with
    that reason; its cells are not read. Otherwise as Polars reads a CSV file: missing cells are
    absent, a blank line is a row of nothing, a repeated name is its first column."""
    chunks: list[pl.DataFrame] = []
    with _reading(path), _csv_text(path) as handle:
        reader = csv.reader(handle, strict=True)
        header = next(reader, [])
        first = {name: i for i, name in reversed(list(enumerate(header)))}
        schema = dict.fromkeys([*first, "_malformed"], pl.String())
        rows: list[list[str | None]] = []
        unread = [None] * len(first)

        def flush() -> None:
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
            chunks.append(pl.DataFrame(dict(zip(schema, columns, strict=True)), schema=schema))
            rows.clear()

        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rows.append([*unread, f"malformed CSV: {_CSV_ERRORS.get(str(exc), exc)}"])
            else:
                if len(record) > len(header):
                    rows.append([*unread, f"{len(record)} cells where the header has {len(header)}"])
                else:
                    rows.append([*(record[i] if i < len(record) else None for i in first.values()), None])
            if len(rows) == CSV_CHUNK:
                flush()
        flush()
    return pl.concat(chunks).lazy()


def _property_columns(
    available: Mapping[str, DType], properties: Sequence[str]
) -> tuple[dict[str, pl.Expr], dict[str, DType], str | None]:
    """Each property of a CSV or Parquet file (a `properties.<name>` column, else a field of a
    `properties` struct or map) and its type; and why the rows are invalid, when the file has a
    `properties` column of another type (they would silently be absent: every event unmatched)."""
    props: dict[str, pl.Expr] = {}
    types: dict[str, DType] = {}
    column = available.get("properties")
    fields = {f.name: f.dtype for f in column.fields} if isinstance(column, pl.Struct) else {}
    map_values = _map_values(column)
    for name in properties:
        flat = FLAT + name
        if flat in available:
            props[name], types[name] = pl.col(flat), available[flat]
        elif name in fields:
            props[name], types[name] = pl.col("properties").struct.field(name), fields[name]
        elif map_values is not None:
            entry = pl.element()
            value = entry.filter(entry.struct.field("key") == name).struct.field("value")
            props[name], types[name] = pl.col("properties").list.eval(value).list.first(), map_values
        else:
            props[name], types[name] = pl.lit(None, dtype=pl.String), pl.String()
    unknown = column is not None and not isinstance(column, pl.Struct) and map_values is None
    if not (unknown and any(FLAT + name not in available for name in properties)):
        return props, types, None
    wrong = f"the properties column is {column}: neither a struct nor a map of names to values"
    return props, types, f"{wrong} (nor are they {FLAT}<name> columns)"


@dataclass(frozen=True, slots=True)
class _Batch:
    """Consecutive files that one scan reads, and the columns each has (CSV, Parquet)."""

    files: tuple[EventFile, ...]
    columns: pl.Schema | None


def _columns(file: EventFile, properties: Sequence[str]) -> pl.Schema | None:
    """The columns of a file that Polars reads whole, as its scan reads them: of a CSV file, its
    header; of a Parquet file, those the run reads; of NDJSON, none (its schema is given). None
    for a file read on its own: line by line, record by record, or patched (`_Patch`)."""
    if _unread(file) or _patch(file) is not None:
        return None
    if file.format == "ndjson":
        return pl.Schema()
    try:
        if file.format == "csv":
            return _csv_scan([file.path]).collect_schema()
        available = scan_parquet([file.path]).collect_schema()
    except READ_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0]
        raise EventReadError(f"could not read {file.path.as_posix()}: {reason}") from exc
    read = {*FIELDS, "properties", *(FLAT + name for name in properties)}
    return pl.Schema({c: t for c, t in available.items() if c in read})


def _merged(batch: pl.Schema, columns: pl.Schema, parquet: bool) -> pl.Schema | None:
    """The columns of a batch with a file's added, if one scan can read them: NDJSON files, CSV
    files with one header; Parquet files whose columns agree in type, where a file that lacks a
    column has it null (a property absent, as it is from the file itself) — unless they hold a
    `properties` struct or map, whose fields could stand for another file's columns."""
    if batch == columns:
        return batch
    if not parquet or "properties" in batch or "properties" in columns:
        return None
    if any(batch[c] != t for c, t in columns.items() if c in batch):
        return None
    return pl.Schema({**batch, **columns})


def _batches(files: Sequence[EventFile], properties: Sequence[str]) -> list[_Batch]:
    """The files in runs that one scan each reads (`_merged`); a file read line by line, record
    by record, patched or ragged is read on its own. (A scan per file cost about 1 ms a file to
    plan and run: 500,000 events in 5,000 files, 5.5–8.1 s, now 2.6–3.1 s.)"""
    runs: list[tuple[list[EventFile], pl.Schema | None]] = []
    for file in files:
        columns = _columns(file, properties)
        if (
            runs
            and (last := runs[-1])[1] is not None
            and columns is not None
            and not _alone(file, last[0][-1])
        ):
            same = last[0][-1].format == file.format
            merged = _merged(last[1], columns, file.format == "parquet") if same else None
            if merged is not None:
                runs[-1] = (last[0] + [file], merged)
                continue
        runs.append(([file], columns))
    return [_Batch(tuple(run), columns) for run, columns in runs]


def _alone(*files: EventFile) -> bool:
    """Whether one of these files is a ragged CSV file, read on its own (its rows are numbered as
    its records)."""
    return any(_ragged(f) is not None for f in files)


@dataclass(frozen=True, slots=True)
class _Fields:
    """Where a scan's rows have each field and property, of which type, and why a row is invalid
    whatever its values (null: it is not)."""

    columns: Mapping[str, pl.Expr]
    types: Mapping[str, DType]
    props: Mapping[str, pl.Expr]
    prop_types: Mapping[str, DType]
    malformed: pl.Expr


def _text_fields(columns: Mapping[str, pl.Expr], props: Mapping[str, pl.Expr], malformed: pl.Expr) -> _Fields:
    """Fields and properties that are all text, as NDJSON's are."""
    text = pl.String()
    return _Fields(columns, dict.fromkeys(columns, text), props, dict.fromkeys(props, text), malformed)


def _numbered(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_row_index("_row", offset=1)


def _line_text(line: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """A line's text (a byte-order mark some editors write first left out) and its JSON text as
    a whole (null for malformed JSON, and for `null`, which is JSON but not an object)."""
    text = line.str.strip_prefix("\ufeff")
    return text, text.str.json_path_match("$")


def _malformed(line: pl.Expr) -> pl.Expr:
    """Why a line read one by one is no event (null: it may be one)."""
    text, whole = _line_text(line)
    return (
        pl.when(text.str.strip_chars() == "")
        .then(pl.lit("blank line"))
        .when(whole.is_null() & (text.str.strip_chars() != "null"))
        .then(pl.lit("malformed JSON"))
        .when(whole.is_null() | ~whole.str.starts_with("{"))
        .then(pl.lit("not a JSON object"))
    )


def _line_fields(lines: pl.LazyFrame, properties: Sequence[str]) -> tuple[pl.LazyFrame, _Fields]:
    """An NDJSON file's lines (`line`) read one by one, so that a broken line is an invalid row
    with its reason, not a failed run."""
    line, whole = _line_text(pl.col("line"))
    fields = {f: line.str.json_path_match(_json_path(f)) for f in FIELDS}
    lines, columns = _as_read(lines, "_fields", whole, fields)
    lines, props = _as_read(
        lines,
        "_properties",
        line.str.json_path_match(_json_path("properties")),
        {name: line.str.json_path_match(_json_path("properties", name)) for name in properties},
    )
    return lines, _text_fields(columns, props, _malformed(pl.col("line")))


def _table_fields(
    batch: _Batch, include: str | None, properties: Sequence[str]
) -> tuple[pl.LazyFrame, _Fields]:
    """The rows of CSV or Parquet files, their columns as fields and properties; a CSV file that
    Polars cannot read, record by record (into memory)."""
    file, paths = batch.files[0], [f.path for f in batch.files]
    malformed: pl.Expr = pl.lit(None, dtype=pl.String)
    if batch.columns is None:
        frame, malformed = _csv_records(file.path), pl.col("_malformed")
        available = frame.collect_schema()
    else:
        available = batch.columns
        csv, ragged = file.format == "csv", _ragged(file)
        frame = (
            _csv_scan(paths, include, ragged is not None) if csv else scan_parquet(paths, include, available)
        )
        if ragged is not None:  # (read on its own: `_row` is its record)
            record = pl.col("_row").cast(pl.UInt64)
            malformed = record.replace_strict(
                ragged.rows, ragged.reasons, default=None, return_dtype=pl.String
            )
    if file.format == "csv":  # an empty cell, quoted ("") or not, is an absent value
        read = [c for c in (*FIELDS, *(FLAT + n for n in properties)) if c in available]
        frame = frame.with_columns(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in read)
    columns = {f: pl.col(f) if f in available else pl.lit(None, dtype=pl.String) for f in FIELDS}
    types = {f: available.get(f, pl.String()) for f in FIELDS}
    if not (types["timestamp"] == pl.String or isinstance(types["timestamp"], pl.Datetime | pl.Date)):
        kind = types["timestamp"]
        malformed = pl.lit(f"the timestamp column is {kind}: neither a timestamp nor RFC 3339 text")
    props, prop_types, wrong = _property_columns(available, properties)
    if wrong is not None:
        malformed = pl.coalesce(malformed, pl.lit(wrong))
    return _numbered(frame), _Fields(columns, types, props, prop_types, malformed)


def _selected(
    frame: pl.LazyFrame, fields: _Fields, index: pl.Expr, properties: Sequence[str]
) -> pl.LazyFrame:
    """Rows numbered `_row` as the run reads them: `_file` (`index`), `_row`, FIELDS as text, the
    timestamp parsed, `_malformed`, each property as text."""
    columns, types, props = fields.columns, fields.types, fields.props
    return frame.select(
        index.alias("_file"),
        pl.col("_row").cast(pl.UInt64),
        *(columns[f].cast(pl.String).alias(f) for f in ("transaction_id", "customer_id", "event_type")),
        _timestamp(columns["timestamp"], types["timestamp"]).alias("timestamp"),
        _absent(columns["timestamp"], types["timestamp"]).alias("_no_timestamp"),
        fields.malformed.alias("_malformed"),
        *(_number_text(props[n], fields.prop_types[n]).alias(PREFIX + n) for n in properties),
    )


def _scan(batch: _Batch, properties: Sequence[str]) -> pl.LazyFrame:
    """The files of a batch with FIELDS, the properties and where each row came from: `_file`
    (its index) and `_row` (numbered from 1 across the batch's files)."""
    file, paths = batch.files[0], [f.path for f in batch.files]
    include = "_path" if len(paths) > 1 else None
    if include is None:
        index = pl.lit(file.index, dtype=pl.UInt32)
    else:  # (the batch's files are consecutive in input order)
        names = pl.Enum([str(p) for p in paths])
        index = pl.col(include).cast(names).to_physical().cast(pl.UInt32) + file.index
    if file.format != "ndjson":
        return _selected(*_table_fields(batch, include, properties), index, properties)
    if _unread(file):
        lines = scan_lines(file.path) if _utf8(file.path) else _lossy_lines(file.path)
        return _selected(*_line_fields(_numbered(lines), properties), index, properties)
    patch = _patch(file)
    read = _scan_ndjson([patch.copy] if patch else paths, _ndjson_schema(properties), include)
    props = {name: pl.col("properties").struct.field(name) for name in properties}
    fields = _text_fields({f: pl.col(f) for f in FIELDS}, props, pl.lit(None, dtype=pl.String))
    if patch is None:
        return _selected(_numbered(read), fields, index, properties)
    # The copy's rows are the file's lines, with those of the patch read one by one instead: in
    # line order if they must be (a merge took 0.6 s of 2.6 s for 1M events). (A mapping from
    # the rows the reader reads of a file to their lines held all of them in memory.)
    aside = pl.col("_row").cast(pl.UInt64).is_in(patch.rows.implode())
    rows = _selected(_numbered(read).filter(~aside), fields, index, properties)
    one_by_one = _selected(*_line_fields(pl.scan_parquet(patch.aside), properties), index, properties)
    return rows.merge_sorted(one_by_one, "_row") if patch.in_place else pl.concat([rows, one_by_one])


FORMAT_NAMES = {"ndjson": "NDJSON", "csv": "CSV", "parquet": "Parquet"}


def reading(files: Sequence[EventFile], properties: Iterable[str]) -> list[str]:
    """How a run reads the files (`pricing explain`): each scan, its files and how."""
    batches = _batches(files, sorted(set(properties)))
    lines = [f"events: {len(files)} file(s), {len(batches)} scan(s)"]
    for batch in batches:
        first, last = batch.files[0], batch.files[-1]
        kind = FORMAT_NAMES[first.format]
        named = first.path.as_posix()
        if len(batch.files) > 1:
            named += f" … {last.path.as_posix()} ({len(batch.files)} {kind} files)"
        how = f"Polars' {kind} reader"
        if _unread(first):
            unit = "line" if first.format == "ndjson" else "record"
            how = f"{unit} by {unit} (a {unit} {how} cannot read)"
        elif (patch := _patch(first)) is not None:
            how += " (of a copy, bytes that are not UTF-8 as U+FFFD)" if patch.recoded else " (of a copy)"
            if len(patch.rows):
                how += f", but for {len(patch.rows):,} line(s) it skips or may not read, read one by one"
        elif (ragged := _ragged(first)) is not None:
            how += (
                f", {len(ragged.rows):,} record(s) with more cells than the header cut short (invalid rows)"
            )
        lines.append(f"  {named}: {how}")
    return lines


def scan_events(files: Sequence[EventFile], properties: Iterable[str]) -> pl.LazyFrame:
    """All files as one lazy frame, in input order, with the given properties as columns."""
    names = sorted(set(properties))
    return pl.concat([_scan(batch, names) for batch in _batches(files, names)], how="vertical")
