"""Event files: the paths, globs and folders given, as files in input order; their formats and
compression (gzip, zstd: found by their first bytes, as Polars finds it); their bytes and lines;
and the plain Polars scans of them, each file read as named."""

from __future__ import annotations

import codecs
import csv
import glob
import gzip
import io
import re
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
    """Paths, globs and folders (`event_paths`) to event files in input order; each file once,
    as first named, however else it is named again (`./a.jsonl`, its absolute path, a link to
    it: its rows were read twice, the second time all duplicates). None is an error, as a glob
    matching nothing is."""
    paths: list[Path] = []
    seen: set[tuple[int, int]] = set()  # (device, inode)
    for argument in event_paths(arguments):
        text = str(argument)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if format_of(p) and p.is_file() and _shown(p, path))
        elif path.is_file():  # (before a glob: `a[1].jsonl` may be a file's name)
            if format_of(path) is None:
                raise EventInputError(f"{text}: unknown event file type; expected one of {EXTENSIONS}")
            found = [path]
        elif path.exists():  # `--events <(zcat events.jsonl.gz)` names a pipe
            raise EventInputError(
                f"{text}: a pipe or device, not a file: a run reads its event files more than once;"
                " write the events to a file (gzip and zstd files are read as they are)"
            )
        elif glob.has_magic(text):
            found = sorted(
                p for p in map(Path, glob.glob(text, recursive=True)) if format_of(p) and p.is_file()
            )
        else:
            raise EventInputError(f"{text}: no such file, folder or matching glob")
        if not found:
            raise EventInputError(f"{text}: holds no event files ({EXTENSIONS})")
        for p in found:
            status = p.stat()
            if (status.st_dev, status.st_ino) not in seen:
                seen.add((status.st_dev, status.st_ino))
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
def read_guard(path: Path) -> Iterator[None]:
    """Reading a file here, where a broken compressed file is an EventReadError."""
    try:
        yield
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise EventReadError(f"could not read {path.as_posix()}: {exc}") from exc


def chunks(path: Path) -> Iterator[bytes]:
    """A text event file's bytes, decompressed (each gzip member, each zstd frame), about a
    megabyte at a time."""
    compression = _compression(path)
    with read_guard(path), gzip.open(path) if compression == GZIP else path.open("rb") as handle:
        read = _frames(handle.read) if compression == ZSTD else iter(partial(handle.read, 1 << 20), b"")
        yield from (chunk for chunk in read if chunk)


class _Stream(io.RawIOBase):
    """Chunks of bytes (`chunks`) as a binary file to read."""

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


def scan_ndjson(
    paths: Sequence[Path], schema: Mapping[str, DType], include: str | None = None
) -> pl.LazyFrame:
    escaped = [re.sub(r"([][*?])", r"[\1]", str(p)) for p in paths]
    return pl.scan_ndjson(escaped, schema=schema, include_file_paths=include)


def scan_csv(paths: Sequence[Path], include: str | None = None) -> pl.LazyFrame:
    # (An empty file, without a header, holds no rows. No schema is given: with one, Polars
    # reads a row with more cells than it has by position, or drops the surplus.)
    return pl.scan_csv(
        [str(p) for p in paths],
        infer_schema=False,
        encoding="utf8-lossy",
        raise_if_empty=False,
        glob=False,
        include_file_paths=include,
    )


def ndjson_schema(properties: Sequence[str]) -> dict[str, DType]:
    """Every field as text: Polars' reader writes a JSON number by its shortest decimal form."""
    schema: dict[str, DType] = dict.fromkeys(FIELDS, pl.String())
    if properties:
        schema["properties"] = pl.Struct(dict.fromkeys(properties, pl.String()))
    return schema


def file_stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def line_count(path: Path) -> int:
    """The lines of a file as Polars' line reader counts them (a last line without its newline
    too), read in chunks here: a Polars query per file cost 1 ms a file (0.8 s for a thousand
    small files), and one query over many files starts a thread per file."""
    if _compression(path):  # (Polars decompresses faster: 1M events, 0.24 s against 0.58 s here)
        return int(scan_lines(path).select(pl.len()).collect().item())
    lines, last = 0, b"\n"
    for chunk in chunks(path):
        lines += chunk.count(b"\n")
        last = chunk[-1:]
    return lines + (last != b"\n")


def utf8(path: Path) -> bool:
    """Whether a file is UTF-8 text throughout (Polars' line reader refuses any other)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in chunks(path):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def lossy_lines(path: Path) -> pl.LazyFrame:
    """The lines of a text file that is not all UTF-8, as Polars' line reader gives those of one
    that is (a line per newline, a last line without one too, "\\r\\n" read as a newline), into
    memory; bytes that are not UTF-8 read as U+FFFD, as CSV files are read."""
    frames: list[pl.DataFrame] = []
    rest = b""
    for chunk in chunks(path):
        *lines, rest = (rest + chunk).split(b"\n")
        frames.append(_text_lines(lines))
    return pl.concat([*frames, _text_lines([rest] if rest else [])]).lazy()


def _text_lines(lines: list[bytes]) -> pl.DataFrame:
    text = [line.removesuffix(b"\r").decode(errors="replace") for line in lines]
    return pl.DataFrame({"line": text}, schema={"line": pl.String()})


def csv_text(path: Path) -> TextIO:
    """A CSV file's text as Polars reads it: a byte-order mark dropped, bytes that are not UTF-8
    as U+FFFD, line ends left to the CSV reader."""
    raw = io.BufferedReader(_Stream(chunks(path)), buffer_size=1 << 20)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


# Python's words for broken quoting, in a finance reader's
_CSV_ERRORS = {
    "unexpected end of data": "a quote is not closed (the rest of the file is this row)",
    "',' expected after '\"'": "text after a closing quote",
}


def csv_records(reader: Iterator[list[str]]) -> Iterator[list[str] | csv.Error]:
    """The records of Python's CSV reader, a record it cannot read as its error (the reader goes
    on with the next line)."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield exc


def column_names(header: Sequence[str]) -> list[str]:
    """A CSV header's column names as Polars' reader names them: the second column of a name is
    `<name>_duplicated_0`, the third `<name>_duplicated_1`… (which a run does not read)."""
    names: list[str] = []
    repeats: dict[str, int] = {}
    for name in header:
        if name in repeats:
            names.append(f"{name}_duplicated_{repeats[name]}")
            repeats[name] += 1
        else:
            names.append(name)
            repeats[name] = 0
    if len(set(names)) < len(names):  # (`a,a_duplicated_0,a`: Polars' reader refuses it so)
        raise EventReadError(f"the CSV header {', '.join(header)} names a column twice over")
    return names


class CsvRows:
    """Records of a CSV file read by Python's csv module as rows of text, as Polars reads them: a
    column per cell of its header (`column_names`), missing cells absent, a blank line a row of
    nothing; and `_malformed`: a record with more cells than the header, or broken quoting (a
    quote not closed, text after a closing quote), is a row of its own with that reason, its
    cells not read."""

    def __init__(self, header: Sequence[str]) -> None:
        self.width = len(header)
        self.schema = dict.fromkeys([*column_names(header), "_malformed"], pl.String())

    def row(self, record: list[str] | csv.Error) -> list[str | None]:
        if isinstance(record, csv.Error):
            reason = f"malformed CSV: {_CSV_ERRORS.get(str(record), record)}"
        elif len(record) > self.width:
            reason = f"{len(record)} cells where the header has {self.width}"
        else:
            return [*record, *(None for _ in range(self.width - len(record))), None]
        return [*(None for _ in range(self.width)), reason]  # (its cells not read)

    def frame(self, rows: Sequence[Sequence[str | None]]) -> pl.DataFrame:
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in self.schema]
        return pl.DataFrame(dict(zip(self.schema, columns, strict=True)), schema=self.schema)


CSV_CHUNK = 100_000  # rows of a CSV file read record by record, put into Polars at a time


def csv_frames(path: Path) -> Iterator[pl.DataFrame]:
    """A CSV file read record by record by Python's csv module (`CsvRows`), CSV_CHUNK rows at a
    time (at least one frame, which has its columns)."""
    with read_guard(path), csv_text(path) as handle:
        reader = csv.reader(handle, strict=True)
        layout = CsvRows(next(reader, []))
        rows: list[list[str | None]] = []
        yielded = False
        for record in csv_records(reader):
            rows.append(layout.row(record))
            if len(rows) == CSV_CHUNK:
                yield layout.frame(rows)
                rows.clear()
                yielded = True
        if rows or not yielded:
            yield layout.frame(rows)


def numbered(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_row_index("_row", offset=1)


def line_text(line: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """A line's text (a byte-order mark some editors write first left out) and its JSON text as
    a whole (null for malformed JSON, and for `null`, which is JSON but not an object)."""
    text = line.str.strip_prefix("\ufeff")
    return text, text.str.json_path_match("$")


def line_fault(line: pl.Expr) -> pl.Expr:
    """Why a line read one by one is no event (null: it may be one)."""
    text, whole = line_text(line)
    return (
        pl.when(text.str.strip_chars() == "")
        .then(pl.lit("blank line"))
        .when(whole.is_null() & (text.str.strip_chars() != "null"))
        .then(pl.lit("malformed JSON"))
        .when(whole.is_null() | ~whole.str.starts_with("{"))
        .then(pl.lit("not a JSON object"))
    )
