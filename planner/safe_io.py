"""Bounded reads and atomic writes for every file the planner reads or writes.

Reads: ``read_text_limited`` opens only regular files (never a device, FIFO or directory), refuses a file over a
stated size before reading it, reads at most that many bytes and decodes them as strict UTF-8 (a UTF-8 byte-order
mark is dropped; UTF-16 and other encodings are refused by name).

Writes: ``Outputs`` stages each output in a temporary file in the destination's folder; ``commit`` renames every
one into place only after all of them were written, so a failed, full or killed write leaves the old files as they
were. Errors are one-line InputErrors naming the option's field.

This module imports only the standard library and ``planner.errors`` (no numpy, pydantic or cvxpy).
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from planner.errors import InputError

KIB = 1024
MIB = 1024 * KIB

# Size limits (bytes) per reader. A fitted law file with a 100,000-sample bootstrap of 7 coefficients is ~18 MB.
MAX_LAW_FILE = 32 * MIB
MAX_RUNS_FILE = 16 * MIB
MAX_CATALOG_FILE = 4 * MIB
MAX_SHAPE_FILE = 1 * MIB
_SHOWN = 120  # characters of a path quoted in a message


def shown(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message: at most ~120 characters (the middle elided), no line breaks."""
    s = os.fspath(path).replace("\n", "\\n").replace("\r", "\\r")
    return s if len(s) <= _SHOWN else s[: _SHOWN // 2] + "…" + s[-_SHOWN // 2 :]


def _size(n: int) -> str:
    return f"{n / MIB:.4g} MiB" if n >= MIB else f"{n / KIB:.4g} KiB" if n >= KIB else f"{n:,} bytes"


def read_bytes_limited(path: str | os.PathLike[str], field: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; InputError(field) for anything else."""
    name = shown(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError) as e:  # ValueError: embedded NUL in the path
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise InputError(field, f"cannot read {name} ({reason})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise InputError(field, f"{name} is {kind}; give a regular file of at most {_size(max_bytes)}")
        if st.st_size > max_bytes:
            raise InputError(field, f"{name} is {_size(st.st_size)}; the limit is {_size(max_bytes)}")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(MIB, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:  # the file grew while it was read
            raise InputError(field, f"{name} is over the limit of {_size(max_bytes)}")
        return b"".join(chunks)
    except OSError as e:
        raise InputError(field, f"cannot read {name} ({e.strerror or e})") from None
    finally:
        os.close(fd)


def decode_utf8(data: bytes, field: str, name: str) -> str:
    """Strict UTF-8 text (a leading byte-order mark dropped); InputError(field) naming the encoding problem."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(field, f"{shown(name)} is UTF-16 text; save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(field, f"{shown(name)} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    if "\x00" in text:
        raise InputError(field, f"{shown(name)} contains NUL bytes (UTF-16 or binary?); save it as UTF-8 text")
    return text.removeprefix("\ufeff")


def read_text_limited(path: str | os.PathLike[str], field: str, max_bytes: int) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``; InputError(field) otherwise (see module doc)."""
    return decode_utf8(read_bytes_limited(path, field, max_bytes), field, os.fspath(path))


# ------------------------------------------------------------------------------------------------ writes


def check_output(path: str | os.PathLike[str] | None, field: str) -> os.stat_result | None:
    """InputError(field) unless ``path`` can be an output file: a file name (not a directory, device or FIFO)
    in an existing folder. Returns the existing file's stat, or None for a new file. Nothing is created."""
    if path is None:
        return None
    name = shown(path)
    dest = Path(path)
    if not os.fspath(path) or dest.name in ("", ".", ".."):
        raise InputError(field, f"{name!r} is not a file name")
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        st = None
    except (OSError, ValueError) as e:
        raise InputError(field, f"cannot write {name} ({getattr(e, 'strerror', None) or e})") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(field, f"{name} is a directory; give a file path (an existing file is replaced)")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InputError(field, f"{name} is not a regular file; give a file path")
    if st is None and not dest.parent.is_dir():
        raise InputError(field, f"cannot write {name} (folder {shown(dest.parent)} does not exist)")
    return st



class Outputs:
    """Atomic writes of one or more output files.

    ``tmp = outs.stage(path, field)`` checks the destination and returns a fresh temporary path next to it; the
    caller writes ``tmp``. ``commit()`` flushes every temporary file to disk and renames each onto its
    destination (if a rename fails, the files already renamed are restored from hard-link backups);
    ``discard()`` (or leaving the ``with`` block by an exception) deletes them. A destination that exists is
    replaced only by a complete file.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path, str]] = []  # (temporary, destination, field)

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def stage(self, path: str | os.PathLike[str], field: str) -> Path:
        """A temporary file path in ``path``'s folder for the output of option ``field``."""
        dest = Path(path)
        name = shown(path)
        for _tmp, other, other_field in self._staged:
            if os.path.abspath(other) == os.path.abspath(dest):
                raise InputError(field, f"{name} is also the output of {other_field}; give different files")
        st = check_output(path, field)
        mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666  # new files: 0o666 less the umask
        tmp = dest.with_name(f".{dest.name[:60]}.{secrets.token_hex(4)}.tmp{dest.suffix[:16]}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            os.close(fd)
        except (OSError, ValueError) as e:
            raise InputError(field, f"cannot write {name} ({getattr(e, 'strerror', None) or e})") from None
        self._staged.append((tmp, dest, field))
        return tmp

    def write(self, path: str | os.PathLike[str], field: str, writer: Callable[[Path], object]) -> Path:
        """Stage ``path`` and call ``writer(tmp)``; an OSError becomes InputError(field). Returns ``path``."""
        tmp = self.stage(path, field)
        try:
            writer(tmp)
        except OSError as e:
            raise InputError(field, f"cannot write {shown(path)} ({e.strerror or e})") from None
        return Path(path)

    def write_text(self, path: str | os.PathLike[str], field: str, text: str) -> Path:
        """Stage ``path`` with UTF-8 ``text``."""
        return self.write(path, field, lambda tmp: tmp.write_bytes(text.encode("utf-8")))

    def commit(self) -> list[Path]:
        """Flush every staged file and rename it into place (only after all were written). Returns the paths."""
        try:
            for tmp, dest, field in self._staged:
                try:
                    fd = os.open(tmp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                except OSError as e:
                    raise InputError(field, f"cannot write {shown(dest)} ({e.strerror or e})") from None
            self._rename_all()
            done = [dest for _tmp, dest, _field in self._staged]
            self._staged = []
            return done
        except BaseException:
            self.discard()
            raise

    def _rename_all(self) -> None:
        """Rename every staged file onto its destination; if one rename fails, put back the files already
        replaced (from hard-link backups) so the command changes all of its outputs or none."""
        backups: list[tuple[Path | None, Path]] = []  # (backup of the old file or None if new, destination)
        try:
            for tmp, dest, field in self._staged:
                backup = None
                if dest.exists():
                    backup = dest.with_name(f".{dest.name[:60]}.{secrets.token_hex(4)}.bak")
                    try:
                        os.link(dest, backup)
                    except OSError:  # no hard links here: this file cannot be put back
                        backup = None
                try:
                    os.replace(tmp, dest)
                except OSError as e:
                    if backup is not None:
                        os.unlink(backup)
                    raise InputError(field, f"cannot write {shown(dest)} ({e.strerror or e})") from None
                backups.append((backup, dest))
        except BaseException:
            for backup, dest in reversed(backups):
                try:
                    if backup is not None:
                        os.replace(backup, dest)
                    else:
                        os.unlink(dest)
                except OSError:
                    pass
            raise
        for backup, _dest in backups:
            if backup is not None:
                try:
                    os.unlink(backup)
                except OSError:
                    pass

    def discard(self) -> None:
        """Delete every staged temporary file; destinations are untouched."""
        for tmp, _dest, _field in self._staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        self._staged = []


def write_atomic(path: str | os.PathLike[str], field: str, writer: Callable[[Path], object]) -> Path:
    """One output written through a temporary file and renamed into place (see ``Outputs``)."""
    with Outputs() as outs:
        outs.write(path, field, writer)
    return Path(path)


def write_output(path: str | os.PathLike[str], field: str, writer: Callable[[Path], object],
                 outputs: Outputs | None = None) -> Path:
    """Stage ``writer``'s output in ``outputs`` (renamed on its commit), or write it atomically now."""
    if outputs is None:
        return write_atomic(path, field, writer)
    return outputs.write(path, field, writer)
