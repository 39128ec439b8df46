"""Reading and writing TrackML events: CSV, gzipped CSV, Parquet; single events, directories and zips.

File names follow the challenge: ``<anything>event000001000-hits.csv`` (or ``.csv.gz``, ``.parquet``), one
file per part (hits, cells, particles, truth). A dataset is a directory or a zip archive holding many events,
read lazily one event at a time. Writes are complete or absent: every file of an event is first written
under a temporary name and only renamed into place once all of them are written.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from .errors import EventError, FormatError, MissingFileError
from .event import PARTS, Event, _example, coerce_table
from .validate import is_zip

FORMATS = ("csv", "csv.gz", "parquet")
_NAME = re.compile(r"^(?P<stem>(?P<prefix>.*?)event(?P<event_id>\d+))-(?P<part>hits|cells|particles|truth)"
                   r"\.(?P<ext>csv|csv\.gz|parquet)$")
# When an event has the same part in several formats, the fastest one is read.
_PREFERENCE = {"parquet": 0, "csv": 1, "csv.gz": 2}


@dataclass(frozen=True)
class _EventFiles:
    stem: str  # the name of the event inside its dataset, e.g. "train_1/event000001000"
    event_id: int
    files: dict  # part -> member name (zip) or Path (directory)


TEMPORARY = re.compile(r"^\..+\.tmp\d+$")  # the hidden name a file has between its write and its rename


class _Staged:
    """A file written before it has its name, then renamed into place whole.

    On Linux it is written unnamed in its folder (``O_TMPFILE``), so a process killed while writing it (a Dask
    worker whose client died exits at once) leaves nothing behind; only when complete does it get a hidden
    temporary name, and at once its own. Elsewhere the hidden name holds it from the start. The handle has no
    file name, so a gzip header carries none and the same table gives the same bytes in any process.
    """

    def __init__(self, final: Path):
        self.final = Path(final)
        self.tmp = self.final.with_name(f".{self.final.name}.tmp{os.getpid()}")
        try:
            fd = os.open(self.final.parent, os.O_TMPFILE | os.O_RDWR, 0o666)
            self.named = False
        except (AttributeError, OSError):  # not Linux, or a file system without unnamed files
            fd = os.open(self.tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o666)
            self.named = True
        self.handle = os.fdopen(fd, "wb")

    def publish(self) -> None:
        self.handle.flush()
        if not self.named:
            self.tmp.unlink(missing_ok=True)
            root = os.open("/", os.O_RDONLY)
            try:  # linkat(..., AT_SYMLINK_FOLLOW) through /proc gives the unnamed file a name
                os.link(f"/proc/self/fd/{self.handle.fileno()}", self.tmp, src_dir_fd=root, follow_symlinks=True)
            except OSError:  # no /proc (or not allowed): copy it to the temporary name instead
                import shutil

                with open(self.handle.fileno(), "rb", closefd=False) as src, open(self.tmp, "wb") as dst:
                    src.seek(0)
                    shutil.copyfileobj(src, dst)
            finally:
                os.close(root)
            self.named = True
        os.replace(self.tmp, self.final)
        self.named = False

    def discard(self) -> None:
        """Close the file; unless published, nothing of it stays."""
        self.handle.close()
        if self.named:
            self.tmp.unlink(missing_ok=True)
            self.named = False


def remove_temporaries(directory) -> int:
    """Remove the temporary files a killed writer left in ``directory`` (on Linux there are none but for a kill
    between two renames); returns how many."""
    removed = 0
    for path in Path(directory).iterdir() if Path(directory).is_dir() else ():
        if path.is_file() and TEMPORARY.match(path.name):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def parse_name(name: str) -> dict[str, Any] | None:
    """Split a TrackML file name into stem, prefix, event_id, part and extension; None if it is not one."""
    m = _NAME.match(name)
    if m is None:
        return None
    d = m.groupdict()
    d["event_id"] = int(d["event_id"])
    return d


def _parse_known(name: str) -> dict[str, Any]:
    """`parse_name` of a name already found to be a TrackML file name."""
    d = parse_name(name)
    assert d is not None, name
    return d


def _read_bytes_table(handle, ext: str, part: str, source: str) -> pd.DataFrame:
    try:
        if ext == "parquet":
            df = pd.read_parquet(handle)
        else:
            df = pd.read_csv(handle, compression="gzip" if ext == "csv.gz" else None, low_memory=False)
    except (EOFError, zlib.error, OSError) as exc:
        raise FormatError(f"{source}: truncated or corrupt file ({exc})") from None
    except pd.errors.EmptyDataError:
        raise FormatError(f"{source}: empty file, expected a CSV header") from None
    except pd.errors.ParserError as exc:
        first = str(exc).strip().splitlines()[0]
        raise FormatError(f"{source}: malformed CSV ({first})") from None
    except UnicodeDecodeError:
        raise FormatError(f"{source}: not a text CSV file") from None
    except Exception as exc:  # pyarrow raises its own types for a broken Parquet file
        raise FormatError(f"{source}: cannot read {ext} ({type(exc).__name__}: {exc})") from None
    try:
        return coerce_table(df, part, source)
    except EventError as exc:
        raise FormatError(str(exc)) from None


def read_table(path, part: str) -> pd.DataFrame:
    """Read one TrackML table (part = hits, cells, particles or truth) from a CSV, .csv.gz or Parquet file."""
    path = Path(path)
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; expected one of {', '.join(PARTS)}")
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    name = path.name
    ext = "parquet" if name.endswith(".parquet") else "csv.gz" if name.endswith(".gz") else "csv"
    with open(path, "rb") as handle:
        return _read_bytes_table(handle, ext, part, str(path))


class Dataset:
    """The events of a directory (searched recursively) or of a zip archive, read lazily.

    An event is there when its hits file is (a write renames the hits file last). Two events of one id (in two
    folders) are refused: `FormatError`.

    >>> import tempfile
    >>> from deepreco.io import Dataset, example_event, write_event
    >>> folder = tempfile.mkdtemp()
    >>> files = write_event(example_event(), folder, format="parquet")   # real TrackML event 1001, shipped
    >>> [event.event_id for event in Dataset(folder)]  # one event in memory at a time
    [1001]
    """

    def __init__(self, path, parts: tuple[str, ...] | list[str] | None = None):
        self.path = Path(path)
        self.parts = tuple(parts) if parts is not None else None
        if not self.path.exists():
            raise MissingFileError(f"{self.path}: no such file or directory")
        self._zip = is_zip(self.path)
        if self.path.is_file() and not self._zip:
            raise FormatError(f"{self.path}: not a directory or a zip archive of events")
        self._events = self._scan()

    def _scan(self) -> dict[str, _EventFiles]:
        if self._zip:
            try:
                with zipfile.ZipFile(self.path) as zf:
                    names = [n for n in zf.namelist() if not n.endswith("/")]
            except zipfile.BadZipFile as exc:
                raise FormatError(f"{self.path}: corrupt zip archive ({exc})") from None
            entries: list[tuple[str, str | Path]] = [(n, n) for n in names]
        else:
            entries = [(p.relative_to(self.path).as_posix(), p) for p in sorted(self.path.rglob("*event*"))
                       if p.is_file() and not p.name.startswith(".")]
        found: dict[str, dict] = {}
        for rel, ref in entries:
            d = parse_name(rel)
            if d is None:
                continue
            files = found.setdefault(d["stem"], {"event_id": d["event_id"], "files": {}})["files"]
            best = files.get(d["part"])
            if best is None or _PREFERENCE[d["ext"]] < _PREFERENCE[best[0]]:
                files[d["part"]] = (d["ext"], ref)
        events = {stem: _EventFiles(stem, v["event_id"], {p: ref for p, (_, ref) in v["files"].items()})
                  for stem, v in sorted(found.items()) if "hits" in v["files"]}
        # two events of one id would be read as one by id, and their outputs (submission, plots) overwrite each other
        stems: dict[int, list[str]] = {}
        for e in events.values():
            stems.setdefault(e.event_id, []).append(e.stem)
        twice = {i: s for i, s in stems.items() if len(s) > 1}
        if twice:
            first, names = next(iter(twice.items()))
            more = f" (and {len(twice) - 1} other id(s) more than once)" if len(twice) > 1 else ""
            raise FormatError(f"{self.path}: event id {first} appears {len(names)} times ({', '.join(names)}){more}; "
                              "give one event per id")
        return events

    @property
    def names(self) -> list[str]:
        return list(self._events)

    @property
    def event_ids(self) -> list[int]:
        return [e.event_id for e in self._events.values()]

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        for name in self._events:
            yield self.read(name)

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, {len(self)} events)"

    def subset(self, names) -> Dataset:
        """The same dataset reduced to the events ``names`` (no new scan): small to send to a worker, which
        reads its event from it."""
        import copy

        part = copy.copy(self)
        part._events = {name: self._events[name] for name in names}
        return part

    def _lookup(self, key) -> _EventFiles:
        if isinstance(key, str) and key in self._events:
            return self._events[key]
        matches = [e for e in self._events.values() if e.event_id == int(key)]  # one at most (`_scan`)
        if not matches:
            raise MissingFileError(f"{self.path}: no event {key}")
        return matches[0]

    def read(self, key, parts: tuple[str, ...] | list[str] | None = None) -> Event:
        """Read one event, by its event id or its name; ``parts`` that are asked for must be present."""
        entry = self._lookup(key)
        parts = tuple(parts) if parts is not None else self.parts
        wanted = parts if parts is not None else PARTS
        unknown = set(wanted) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown part(s) {', '.join(sorted(unknown))}; expected some of {', '.join(PARTS)}")
        if parts is not None:
            absent = [p for p in parts if p not in entry.files]
            if absent:
                raise MissingFileError(f"{self.path}: event {entry.stem} has no {', '.join(absent)} file")
        tables: dict[str, pd.DataFrame] = {}
        sources: dict[str, str] = {}
        zf = zipfile.ZipFile(self.path) if self._zip else None
        try:
            for part in wanted:
                ref = entry.files.get(part)
                if ref is None:
                    continue
                ext = _parse_known(Path(str(ref)).name)["ext"]
                source = f"{self.path}:{ref}" if self._zip else str(ref)
                if zf is not None:
                    try:
                        data = zf.read(ref)
                    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                        raise FormatError(f"{source}: corrupt zip member ({exc})") from None
                    tables[part] = _read_bytes_table(io.BytesIO(data), ext, part, source)
                else:
                    tables[part] = read_table(ref, part)
                sources[part] = source
        finally:
            if zf is not None:
                zf.close()
        return Event(event_id=entry.event_id, sources=sources, **cast(dict[str, Any], tables))


def read_event(path, parts: tuple[str, ...] | list[str] | None = None) -> Event:
    """Read one event from any of its files, its prefix (``dir/event000001000``), or a one-event folder/zip.

    Every part found beside it is read unless ``parts`` names which to read; a named part that is absent is
    an error. The tables are checked against each other (see `Event.check`).
    """
    path = Path(path)
    if path.is_dir() or is_zip(path):
        ds = Dataset(path, parts)
        if not len(ds):
            raise FormatError(_no_event(path))
        if len(ds) != 1:
            raise FormatError(f"{path}: holds {len(ds)} events; read it with Dataset, or name one event")
        return ds.read(ds.names[0])
    d = parse_name(path.name)
    if path.is_file() and d is None:
        raise FormatError(f"{path}: not an event file (a name like event000001000-hits.csv), nor a folder or a zip "
                          "of events")
    if path.is_file() and d is not None:
        stem = d["stem"]
    elif not path.exists() and path.parent.is_dir():
        stem = path.name  # a prefix such as dir/event000001000
    else:
        raise MissingFileError(f"{path}: no such file or event prefix")
    files: dict[str, tuple[str, Path]] = {}
    for candidate in sorted(path.parent.glob(f"{stem}-*")):
        c = parse_name(candidate.name)
        if c is None or c["stem"] != stem:
            continue
        best = files.get(c["part"])
        if best is None or _PREFERENCE[c["ext"]] < _PREFERENCE[best[0]]:
            files[c["part"]] = (c["ext"], candidate)
    if not files:
        raise MissingFileError(f"{path}: no such file or event prefix")
    if "hits" not in files:
        raise MissingFileError(f"{path}: event {stem} has no hits file")
    wanted = tuple(parts) if parts is not None else PARTS
    if parts is not None:
        absent = [p for p in parts if p not in files]
        if absent:
            raise MissingFileError(f"{path}: event {stem} has no {', '.join(absent)} file")
    tables: dict[str, pd.DataFrame] = {p: read_table(files[p][1], p) for p in wanted if p in files}
    event_id = _parse_known(files["hits"][1].name)["event_id"]
    return Event(event_id=event_id, sources={p: str(files[p][1]) for p in tables}, **cast(dict[str, Any], tables))


def write_event(event: Event, directory, format: str = "csv", name: str | None = None) -> list[Path]:
    """Write the event's tables as ``<directory>/<name>-<part>.<format>``; returns the paths written.

    ``name`` defaults to ``event<event_id, 9 digits>``. Every file is written under a temporary name first
    and renamed only when all are complete, so an interrupted write leaves nothing behind. Gzip headers carry
    no time stamp, so the same event gives the same bytes.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if name is None:
        name = f"event{int(event.event_id or 0):09d}"
    staged: list[_Staged] = []
    try:
        for part in PARTS:
            table = getattr(event, part)
            if table is None:
                continue
            staged.append(_Staged(directory / f"{name}-{part}.{format}"))
            if format == "parquet":
                table.to_parquet(staged[-1].handle, index=False)
            else:
                compression = {"method": "gzip", "mtime": 0} if format == "csv.gz" else None
                table.to_csv(staged[-1].handle, index=False, compression=compression, mode="wb")
        # The hits file goes last: an event is only seen through its hits, so a run cut between two
        # renames leaves no event behind, only parts that no reader picks up.
        for file in sorted(staged, key=lambda f: f.final.name.endswith(f"-hits.{format}")):
            file.publish()
    finally:
        for file in staged:
            file.discard()
    return [file.final for file in staged]


def example_event() -> Event:
    """Real TrackML training event 1001 shipped with the package: hits and particles, no truth."""
    data = resources.files("deepreco") / "data"
    with resources.as_file(data / "event000001001-hits.csv.gz") as hits_path, \
            resources.as_file(data / "event000001001-particles.csv.gz") as particles_path:
        return Event(hits=read_table(hits_path, "hits"), particles=read_table(particles_path, "particles"),
                     event_id=1001, sources={"hits": "deepreco:event000001001-hits.csv.gz",
                                             "particles": "deepreco:event000001001-particles.csv.gz"})


def open_path(path) -> Event | Dataset:
    """An event if ``path`` names one (a file, a prefix, a one-event folder), else the dataset it holds."""
    path = Path(path)
    if path.is_dir() or is_zip(path):
        ds = Dataset(path)
        if not len(ds):
            raise FormatError(_no_event(path))
        return ds.read(ds.names[0]) if len(ds) == 1 else ds
    return read_event(path)


def _no_event(path: Path) -> str:
    return f"{path}: holds no event (no file named like event000001000-hits.csv, .csv.gz or .parquet)"


def read_submission(path, event_id: int | None = None) -> pd.DataFrame:
    """Read a TrackML submission (hit_id, track_id; optionally event_id) as int64 columns.

    A file with an ``event_id`` column may hold many events: ``event_id`` picks one (required then, unless
    the file holds a single event).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    ext = "parquet" if path.name.endswith(".parquet") else "csv.gz" if path.name.endswith(".gz") else "csv"
    try:
        with open(path, "rb") as handle:
            df = pd.read_parquet(handle) if ext == "parquet" else pd.read_csv(
                handle, compression="gzip" if ext == "csv.gz" else None)
    except pd.errors.EmptyDataError:
        raise FormatError(f"{path}: empty file, expected a CSV header hit_id,track_id") from None
    except Exception as exc:
        raise FormatError(f"{path}: cannot read submission ({type(exc).__name__}: {exc})") from None
    missing = [c for c in ("hit_id", "track_id") if c not in df.columns]
    if missing:
        raise FormatError(f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                          f"(has {', '.join(map(str, df.columns)) or 'none'})")
    for col in [c for c in ("event_id", "hit_id", "track_id") if c in df.columns]:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise FormatError(f"{path}: column {col} has a missing or non-integer value {df[col].iloc[row]!r} "
                              f"(row {row + 1})")
        # beyond int64 the cast below would wrap 2^63 round to a negative number
        huge = (values >= 2**63) | (values < -(2**63))
        if huge.any():
            row = int(np.flatnonzero(huge.to_numpy())[0])
            raise FormatError(f"{path}: column {col} has a value {df[col].iloc[row]} that does not fit a 64-bit "
                              f"integer (row {row + 1}; the largest is {2**63 - 1})")
        df[col] = values.astype(np.int64)
    if "event_id" in df.columns:
        ids = np.unique(df["event_id"].to_numpy())
        if event_id is None and len(ids) > 1:
            raise FormatError(f"{path}: holds {len(ids)} events; say which one")
        if event_id is not None:
            df = df[df["event_id"] == event_id]
            if df.empty and len(ids):
                raise FormatError(f"{path}: no rows for event {event_id} (it has {_example(ids)})")
    return df[["hit_id", "track_id"]].reset_index(drop=True)


def write_submission(tracks: pd.DataFrame, path, event_id: int | None = None) -> Path:
    """Write (hit_id, track_id), with event_id first when given, as a TrackML submission CSV; atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = tracks[["hit_id", "track_id"]].astype(np.int64)
    if event_id is not None:
        out.insert(0, "event_id", np.int64(event_id))
    file = _Staged(path)
    try:
        out.to_csv(file.handle, index=False, mode="wb",
                   compression={"method": "gzip", "mtime": 0} if path.name.endswith(".gz") else None)
        file.publish()
    finally:
        file.discard()
    return path
