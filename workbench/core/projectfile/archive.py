"""An open project zip: its directory checked before anything is decompressed, its manifest parsed, and its
members read and verified against the sizes and sha256 checksums the manifest recorded.

Every failure leaves :func:`reading` as one :class:`ProjectFileError` naming the file (and the member).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import stat
import zipfile
import zlib
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator, cast

import numpy as np
import safetensors.numpy

from workbench.core.projectfile import format as fmt
from workbench.core.projectfile.format import (KNOWN_MEMBERS, MAGIC_FORMAT, MANIFEST, describe_kind, human_bytes,
                                               is_int)
from workbench.core.projectfile.tensors import read_tensors
from workbench.schema.errors import ProjectFileError


@contextlib.contextmanager
def reading(label: str) -> Iterator[None]:
    """The boundary: whatever goes wrong while reading leaves as one ProjectFileError naming the file."""
    try:
        yield
    except ProjectFileError:
        raise
    except MemoryError as exc:
        # the limits keep what a file can make us allocate within reason; a machine that still has not got it
        # gets the same kind of one-line answer as any other file that cannot be read
        raise ProjectFileError(f"{label} is too large to read in the memory this process has") from exc
    except OSError as exc:
        raise ProjectFileError(f"{label} cannot be read: {exc.strerror or exc}") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ProjectFileError(f"{label} is truncated or corrupt ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - nothing but ProjectFileError may leave a load
        raise ProjectFileError(f"{label} cannot be read ({type(exc).__name__}: {exc})") from exc


class Archive:
    """An open project zip whose directory was checked; reads members against the manifest's checksums."""

    def __init__(self, zf: zipfile.ZipFile, label: str):
        self.zf = zf
        self.label = label
        self.infos = {info.filename: info for info in zf.infolist()}
        self.manifest: dict[str, Any] = {}

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: str | os.PathLike[str], label: str) -> Iterator["Archive"]:
        with open_regular_file(path, label) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(4)
            fh.seek(0)
            try:
                zf = zipfile.ZipFile(fh)
            except zipfile.BadZipFile:
                if head[:2] == b"PK":
                    raise ProjectFileError(f"{label} is truncated or corrupt") from None
                raise ProjectFileError(f"{label} is not a Sequence Workbench project (not a zip file)") from None
            with zf:
                _check_directory(zf.infolist(), label, size)
                archive = cls(zf, label)
                archive.manifest = _parse_manifest(archive, label)
                yield archive

    def has(self, name: str) -> bool:
        return name in self.infos

    def unknown_members(self) -> list[str]:
        return [name for name in self.infos if name not in KNOWN_MEMBERS]

    def raw(self, name: str) -> bytes:
        """A member's bytes, inflated no further than the limit of its kind (:data:`format.MEMBER_LIMITS`),
        whatever its header declares."""
        info = self._info(name)
        limit = fmt.MEMBER_LIMITS.get(name, fmt.MAX_MEMBER_BYTES)
        pieces: list[bytes] = []
        total = 0
        with self._member_errors(name), self.zf.open(info) as stream:
            while True:
                piece = stream.read(min(1 << 20, limit + 1 - total))
                if not piece:
                    break
                total += len(piece)
                if total > limit:
                    raise ProjectFileError(f"{self.label}: member {name} inflates to more than "
                                           f"{human_bytes(limit)}, the most a {name} may hold (a zip bomb?)")
                pieces.append(piece)
        return b"".join(pieces)

    def check_listing(self) -> None:
        """The manifest's member table is well formed and every member it lists is in the zip."""
        members = self.manifest.get("members")
        if not isinstance(members, dict):
            raise ProjectFileError(f"{self.label}: manifest.json is malformed (no member table)")
        for name, entry in members.items():
            if not (isinstance(entry, dict) and is_int(entry.get("size")) and isinstance(entry.get("sha256"), str)):
                raise ProjectFileError(f"{self.label}: manifest.json is malformed (bad entry for {name!r})")
            if name not in self.infos:
                raise ProjectFileError(f"{self.label}: member {name} is missing (the file is incomplete)")

    def read(self, name: str) -> bytes:
        """A member's bytes, checked against the size and sha256 the manifest recorded."""
        entry = self._entry(name)
        data = self.raw(name)
        if len(data) != entry["size"]:
            raise self._mismatch(name)
        self._verify_digest(name, entry, hashlib.sha256(data).hexdigest())
        return data

    def json(self, name: str, *, required: bool = False) -> Any:
        if not self.has(name):
            if required:
                raise ProjectFileError(f"{self.label}: member {name} is missing")
            return None
        return parse_json(self.read(name), self.label, name)

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        data = self.read(name)
        try:
            return safetensors.numpy.load(data)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise ProjectFileError(f"{self.label}: member {name} is not a valid safetensors file ({exc})") from exc

    def tensor_members(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """The tensors of the safetensors members ``names`` (present ones), each member verified against its sha256.

        Each member is streamed through zipfile (:meth:`zipfile.ZipFile.open`, which also checks its CRC-32 at the
        end) straight into the tensors, each allocated once with its own memory: the member is never held as one
        bytes object.  The sha256 of what was read is computed on a worker thread while the following pieces are
        read (hashlib releases the GIL), and checked before anything is returned.
        """
        names = [name for name in names if self.has(name)]
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqwb-sha256") \
            if (os.cpu_count() or 1) > 1 else None
        try:
            pending = [(name, self._entry(name), *self._stream_tensors(name, pool)) for name in names]
            out = {}
            for name, entry, tensors, digest in pending:
                self._verify_digest(name, entry, digest if isinstance(digest, str) else digest.result())
                out[name] = tensors
            return out
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _stream_tensors(self, name: str, pool: ThreadPoolExecutor | None) -> tuple[dict[str, Any], str | Future[str]]:
        """``(tensors, sha256 or its future)`` of the member ``name``, read through zipfile."""
        info = self._info(name)
        digest = hashlib.sha256()
        update = digest.update if pool is None else (lambda data: pool.submit(digest.update, data))
        with self._member_errors(name):
            # typeshed says IO[bytes]; it is a ZipExtFile, whose readinto the tensors are read with
            stream = cast(io.BufferedIOBase, self.zf.open(info))
        with stream:
            try:
                tensors = read_tensors(stream, info.file_size, self.label, name, update)
            except ProjectFileError:
                # A header that does not parse: if the member is damaged, say so (checksum mismatch) rather than
                # describe the damage; otherwise read() passes and the same error is raised from its bytes.
                read_tensors(io.BytesIO(self.read(name)), info.file_size, self.label, name)
                raise
            except zipfile.BadZipFile:
                # zipfile raises this while reading only when the member's CRC-32 fails at its end: the bytes
                # differ from what was written, which is what a sha256 mismatch would have said a moment later.
                raise self._mismatch(name) from None
            except EOFError:
                raise ProjectFileError(f"{self.label}: member {name} is truncated") from None
            except zlib.error as exc:
                raise ProjectFileError(f"{self.label}: member {name} is corrupt ({exc})") from exc
        return tensors, (digest.hexdigest() if pool is None else pool.submit(digest.hexdigest))

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self.infos[name]
        if info.flag_bits & 0x1:
            raise ProjectFileError(f"{self.label}: member {name} is encrypted")
        return info

    @contextlib.contextmanager
    def _member_errors(self, name: str) -> Iterator[None]:
        try:
            yield
        except NotImplementedError as exc:
            raise ProjectFileError(f"{self.label}: member {name} uses an unsupported compression ({exc})") from exc
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            raise ProjectFileError(f"{self.label}: member {name} is corrupt ({exc})") from exc

    def _entry(self, name: str) -> dict[str, Any]:
        entry = self.manifest["members"].get(name)
        if entry is None:
            raise ProjectFileError(f"{self.label}: member {name} is not listed in the manifest")
        return entry

    def _verify_digest(self, name: str, entry: dict[str, Any], digest: str) -> None:
        if digest != entry["sha256"].lower() or self.infos[name].file_size != entry["size"]:
            raise self._mismatch(name)

    def _mismatch(self, name: str) -> ProjectFileError:
        return ProjectFileError(f"{self.label}: member {name} is corrupt (checksum mismatch)")


@contextlib.contextmanager
def open_regular_file(path: str | os.PathLike[str], label: str) -> Iterator[io.BufferedReader]:
    """``path`` opened for reading if it is a regular file; otherwise one ProjectFileError that says what it is.

    Opened without blocking (a named pipe would wait for a writer for ever) and checked on the open descriptor
    (nothing can swap the file between the check and the read); a symbolic link is followed, and a loop is named.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ProjectFileError(f"{label} is a symbolic link that loops (it leads back to itself), not a "
                                   f"project file") from None
        if exc.errno == errno.EISDIR:
            raise ProjectFileError(f"{label} is a folder, not a project file") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ProjectFileError(f"{label} is {describe_kind(mode)}, not a project file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    # Unix zip tools keep the file type in the high bits of external_attr (create_system 3 is Unix)
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _check_directory(infos: list[zipfile.ZipInfo], label: str, archive_size: int | None = None) -> None:
    """Refuse unsafe names, duplicates, foreign compressions, too many members, links and absurd sizes, from the
    zip directory alone (nothing decompressed)."""
    if len(infos) > fmt.MAX_MEMBERS:
        raise ProjectFileError(f"{label} has {len(infos):,} members; a project has about ten (at most "
                               f"{fmt.MAX_MEMBERS} are read), so this is not a project file")
    counts = Counter(info.filename for info in infos)
    duplicates = sorted(name for name, n in counts.items() if n > 1)
    if duplicates:
        raise ProjectFileError(f"{label}: duplicate member name(s) {', '.join(map(repr, duplicates[:5]))}")
    total = 0
    for info in infos:
        name = info.filename
        if _unsafe_name(name):
            raise ProjectFileError(f"{label}: member name {name!r} is not allowed (absolute path or '..')")
        if name in KNOWN_MEMBERS:
            if info.compress_type not in fmt.COMPRESSIONS:
                method = {12: "bzip2", 14: "LZMA", 93: "Zstandard"}.get(info.compress_type,
                                                                     f"method {info.compress_type}")
                raise ProjectFileError(f"{label}: member {name} is compressed with {method}; a project file uses "
                                       f"only deflate and stored members")
            if _is_symlink(info):
                raise ProjectFileError(f"{label}: member {name} is a symbolic link, not data")
            limit = fmt.MEMBER_LIMITS.get(name, fmt.MAX_MEMBER_BYTES)
            if info.file_size > limit:
                raise ProjectFileError(f"{label}: member {name} says it holds {human_bytes(info.file_size)}, more "
                                       f"than the {human_bytes(limit)} a {name} may hold")
        if info.file_size > fmt.MAX_MEMBER_BYTES:
            raise ProjectFileError(f"{label}: member {name!r} is too large ({info.file_size} bytes)")
        if info.file_size > fmt.BOMB_MIN_BYTES and info.file_size > fmt.BOMB_MAX_RATIO * max(info.compress_size, 1):
            raise ProjectFileError(f"{label}: member {name!r} expands {info.file_size // max(info.compress_size, 1)}"
                                   f"-fold (a zip bomb?)")
        if archive_size is not None and info.header_offset + info.compress_size > archive_size:
            # the directory promises more bytes than the file has: reading would allocate for data not there
            raise ProjectFileError(f"{label}: member {name!r} runs past the end of the file (truncated or forged)")
        total += info.file_size
    if total > fmt.MAX_TOTAL_BYTES:
        raise ProjectFileError(f"{label}: the members add up to {total} bytes, more than a project can hold")


def symlink_members(infos: list[zipfile.ZipInfo]) -> set[str]:
    return {info.filename for info in infos if _is_symlink(info)}


_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe_name(name: str) -> bool:
    # Nothing is ever extracted to disk, but a file with such names was not written by us.
    if not name or name.startswith(("/", "\\")) or _DRIVE.match(name):
        return True
    return any(part == ".." for part in re.split(r"[/\\]", name))


def parse_json(data: bytes, label: str, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProjectFileError(f"{label}: member {name} is not valid JSON ({exc})") from exc


def _parse_manifest(archive: Archive, label: str) -> dict[str, Any]:
    if not archive.has(MANIFEST):
        raise ProjectFileError(f"{label} is not a Sequence Workbench project (it has no {MANIFEST})")
    manifest = parse_json(archive.raw(MANIFEST), label, MANIFEST)
    if not isinstance(manifest, dict):
        raise ProjectFileError(f"{label}: {MANIFEST} is malformed (expected a JSON object)")
    if manifest.get("format") != MAGIC_FORMAT:
        raise ProjectFileError(f"{label} is not a Sequence Workbench project (its manifest says format "
                               f"{manifest.get('format')!r}, expected {MAGIC_FORMAT!r})")
    version = manifest.get("format_version")
    if not is_int(version) or version < 0:
        raise ProjectFileError(f"{label}: {MANIFEST} is malformed (format_version {version!r})")
    return manifest
