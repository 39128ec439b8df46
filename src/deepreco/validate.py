"""Checks that every command makes on its options and paths before it starts any work.

They run as Click callbacks while the command line is parsed, so a bad value stops the command before a file
is written or a model loaded. A value the command cannot take (a number out of range, an output path that
cannot be written) is a usage error: ``typer.BadParameter`` (Click's), exit status 2, one line naming the option. A file
that is not what it claims to be is a data error: `deepreco.errors.FormatError` or `MissingFileError`, exit
status 1, one line naming the file. Light on imports: ``deepreco --help`` must stay fast.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import zipfile
from pathlib import Path

from typer import BadParameter

from .errors import DeepRecoError, FormatError, MissingFileError
from .registry import Registry

# 5 times the HL-LHC's mean of 200 collisions a crossing; more is a typo, not a physics case (Pythia would run
# for days on one event).
MAX_PILEUP = 1000.0


def _probe_writable(folder: Path, what: str) -> None:
    """Create and remove an empty hidden folder in ``folder``: the one test that a read-only mount, a virtual
    file system (/proc, /sys) and missing permissions all fail, whoever the user (``os.access`` sees a read-only
    mount, but root passes it on any folder's permission bits and on /proc, where nothing can be made)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".deepreco-probe-", dir=folder))
    except OSError as exc:
        raise BadParameter(f"{what}: cannot write in {folder} ({exc.strerror or exc})") from None


def _nearest_existing(path: Path) -> Path:
    for ancestor in (path, *path.parents):
        if ancestor.exists() or ancestor.is_symlink():
            return ancestor
    return Path("/")


def check_output(path: Path | None, folder: bool) -> Path | None:
    """``path`` if a command can write a file (``folder`` False) or make or fill a folder (True) there;
    `typer.BadParameter` naming the fault if not: an existing file where a folder is wanted or the other way
    round, a path inside a file, a parent the user may not write in, a read-only or virtual file system."""
    if path is None:
        return None
    path = Path(path)
    text = str(path)
    if path.is_dir() and not folder:
        raise BadParameter(f"{text} is a folder; give a file name")
    if path.exists() and not path.is_dir() and folder:
        raise BadParameter(f"{text} is a file, not a folder")
    # a file is written beside itself (a temporary name, then a rename): its folder must take new files
    base = _nearest_existing(path.absolute() if folder else path.absolute().parent)
    if not base.is_dir():
        raise BadParameter(f"{text} lies inside {base}, which is a file, not a folder")
    _probe_writable(base, text)
    return path


def output_folder(value: Path | None) -> Path | None:
    """Callback of an option naming a folder to write to (made when missing)."""
    return check_output(value, folder=True)


def output_file(value: Path | None) -> Path | None:
    """Callback of an option naming a file to write."""
    return check_output(value, folder=False)


IMAGE_SUFFIXES = (".png", ".pdf", ".svg")


def output_image(value: Path | None) -> Path | None:
    """Callback of an option naming an image to write: a file whose suffix matplotlib writes."""
    if value is not None and Path(value).suffix.lower() not in IMAGE_SUFFIXES:
        raise BadParameter(f"{value}: an image needs one of the suffixes {', '.join(IMAGE_SUFFIXES)}")
    return check_output(value, folder=False)


def finite(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False):
    """Callback of a float option: a finite number within [low, high] (an open end excluded)."""
    def check(value: float | None) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value):
            raise BadParameter(f"{value} is not a finite number")
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            lo = None if low is None else f"{'>' if low_open else '>='} {low:g}"
            hi = None if high is None else f"{'<' if high_open else '<='} {high:g}"
            need = f"x {lo} and x {hi}" if lo and hi else f"x {lo or hi}"
            raise BadParameter(f"{value:g} is not in the range {need}")
        return value
    return check


pileup_range = finite(0.0, MAX_PILEUP)


def one_of(*choices: str):
    """Callback of a text option that takes one of ``choices``."""
    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise BadParameter(f"{value!r} is not one of {', '.join(choices)}")
        return value
    return check


def known(registry: Registry, plus: tuple[str, ...] = ()):
    """Callback of an option that names things of ``registry`` (a `deepreco.registry.Registry`): one name, a
    repeated option's list, or a comma-separated list; a name may be followed by ``+`` and one of ``plus``
    ("clue+drn"), or by several of them, each once ("clue+drn+sc"); with ``tK`` among ``plus``, the last may be
    ``+t`` and a number above 0 ("clue+sc+t3", a time window). An unknown name is the registry's one-line
    error, found from the names alone, before the module behind them (and torch, pandas, numba with it) is
    imported."""
    def window(extra: str) -> bool:
        return "tK" in plus and re.fullmatch(r"t[0-9]+(\.[0-9]+)?", extra) is not None and float(extra[1:]) > 0

    def check(value):
        if value is None:
            return value
        for item in ([value] if isinstance(value, str) else value):
            for name in filter(None, (part.strip() for part in item.split(","))):
                base, *extras = name.split("+")
                registry.check(base if plus else name)
                if extras and window(extras[-1]):
                    extras = extras[:-1]
                if plus and (any(e not in plus or e == "tK" for e in extras) or len(set(extras)) < len(extras)):
                    raise DeepRecoError(f"unknown {registry.what} {name!r}: only "
                                        f"{', '.join('+' + p for p in plus)} may follow a {registry.what}"
                                        + (" (+tK last, K > 0)" if "tK" in plus else ""))
        return value
    return check


def _zip_or_none(path: Path) -> bool:
    """True for a whole zip archive; `FormatError` for a file that starts as one but is cut or corrupt."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        return False
    if not zipfile.is_zipfile(path):
        raise FormatError(f"{path}: corrupt or truncated zip archive (no central directory)")
    return True


def check_torch_file(path: Path | None, what: str = "model") -> Path | None:
    """``path`` if it is a file that ``torch.save`` could have written (a zip holding a ``data.pkl``), without
    importing torch; `MissingFileError` or `FormatError` naming the file if not."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such {what} file")
    if path.is_dir():
        raise FormatError(f"{path}: is a folder, not a deepreco {what} file")
    try:
        whole = _zip_or_none(path)
    except FormatError:
        raise FormatError(f"{path}: not a deepreco {what} file (a corrupt or truncated zip archive)") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if whole:
        try:
            with zipfile.ZipFile(path) as zf:
                whole = any(name.endswith("/data.pkl") or name == "data.pkl" for name in zf.namelist())
        except (zipfile.BadZipFile, OSError):
            whole = False
    if not whole:
        raise FormatError(f"{path}: not a deepreco {what} file")
    return path


def model_file(value: Path | None) -> Path | None:
    """Callback of a --model option."""
    return check_torch_file(value, "model")


def model_files(values: list[Path] | None) -> list[Path] | None:
    """Callback of a repeatable --model option (several: an ensemble, for the methods that take ``models``)."""
    return [model_file(v) for v in values] if values else None


def model_parameters(values: list[Path] | None) -> dict:
    """A method's parameters for the files of a repeatable --model: none, ``model`` for one, ``models`` for more."""
    if not values:
        return {}
    paths = [str(Path(v).resolve()) for v in values]
    return {"model": paths[0]} if len(paths) == 1 else {"models": paths}


def checkpoint_file(value: Path | None) -> Path | None:
    """Callback of a --resume option."""
    return check_torch_file(value, "checkpoint")


def _existing_file(value: Path | None, what: str) -> Path | None:
    if value is not None:
        if not Path(value).exists():
            raise MissingFileError(f"{value}: no such {what + ' ' if what else ''}file")
        if Path(value).is_dir():
            raise FormatError(f"{value}: is a folder, not a {what + ' ' if what else ''}file")
    return value


def existing_file(value: Path | None) -> Path | None:
    """Callback of an option naming a file to read (a particle list, ...)."""
    return _existing_file(value, "")


def settings_file(value: Path | None) -> Path | None:
    """Callback of a --config option (YAML settings)."""
    return _existing_file(value, "settings")


def _existing_folder(value: Path | None, what: str) -> Path | None:
    if value is not None:
        if not Path(value).exists():
            raise MissingFileError(f"{value}: no such {what}")
        if not Path(value).is_dir():
            raise FormatError(f"{value}: is a file, not a {what}")
    return value


def existing_folder(value: Path | None) -> Path | None:
    """Callback of an option naming a folder to read from."""
    return _existing_folder(value, "folder")


def model_repository(value: Path | None) -> Path | None:
    """Callback of ``serve``'s model repository."""
    return _existing_folder(value, "model repository")


def is_zip(path: Path) -> bool:
    """True for a zip archive; `FormatError` for a file that begins as one but is truncated or corrupt."""
    return Path(path).is_file() and _zip_or_none(Path(path))


__all__ = ["MAX_PILEUP", "check_output", "check_torch_file", "checkpoint_file", "existing_file", "existing_folder",
           "finite", "is_zip", "model_file", "model_repository", "one_of", "output_file", "output_folder",
           "output_image", "pileup_range", "settings_file"]
