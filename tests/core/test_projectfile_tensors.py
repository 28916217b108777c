"""The project file's tensor members (workbench.core.projectfile.tensors; issue 7, speed point 4): streamed from
the tensors' memory in the safetensors layout, read back through zipfile straight into new tensors.

The round trips, error messages and safety checks of the format itself are in test_projectfile.py; here: the
writer's members are what the ``safetensors`` library (and so the previous reader) reads, bit for bit; old-style
members (safetensors' own writer, deflated members, unaligned tensors) still load; a tensor changing during a save
never yields a file with a checksum mismatch.  Temporary files of killed saves: test_atomic_saves.py.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import safetensors.numpy
import safetensors.torch
import torch

from tests.core.test_projectfile import assert_projects_equal, make_project, members_of, rewrite
from workbench.core import projectfile as pf
from workbench.schema.errors import ProjectFileError
from workbench.core.project import Checkpoint

torch.set_num_threads(1)


def bits(t: torch.Tensor) -> bytes:
    """The exact bytes of a tensor (NaN payloads and -0.0 included)."""
    t = t.detach().cpu().contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def all_dtypes() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    base = torch.randn(6, 5, generator=g, dtype=torch.float64)
    big = torch.randn(10, 12, generator=g)
    tensors = {
        "f64": base.clone(),
        "f32": torch.tensor([1.5, -0.0, float("nan"), float("inf"), -float("inf"), 1e-45]),
        "f16": torch.randn(7, generator=g).half(),
        "bf16": torch.randn(3, 3, generator=g).to(torch.bfloat16),
        "i64": torch.tensor([-(2 ** 63), 2 ** 63 - 1, 0], dtype=torch.int64),
        "i32": torch.tensor([-(2 ** 31), 5], dtype=torch.int32),
        "i16": torch.tensor([-300, 300, 1], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.arange(250, 256, dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(2.25, dtype=torch.float64),
        "empty": torch.zeros(0, 3),
        "transposed": big.t(),                 # not contiguous
        "every_other": big[:, ::2],            # not contiguous, a view into big
        "slice_a": big[2:4],                   # two views sharing one storage
        "slice_b": big[5:9],
        "odd_f16": torch.randn(3, generator=g).half(),  # 6 bytes: what follows would be unaligned without sorting
    }
    tensors["tied"] = tensors["f64"]           # the same tensor under two names
    return tensors


def project_with(weights: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor] | None = None):
    project = make_project()
    ck = project.checkpoint
    project.checkpoint = Checkpoint(weights=weights, graph_hash=ck.graph_hash, step=ck.step, epoch=ck.epoch,
                                    optimizer=ck.optimizer, optimizer_meta=ck.optimizer_meta,
                                    trainer_state=ck.trainer_state, tensors=tensors if tensors is not None else
                                    ck.tensors)
    return project


def test_streamed_members_are_valid_safetensors_read_by_the_library(tmp_path: Path) -> None:
    weights = all_dtypes()
    project = project_with(weights)
    path = tmp_path / "p.seqwb"
    pf.save_project(project, path)
    members = members_of(path)
    manifest = json.loads(members[pf.MANIFEST])
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None                       # every CRC-32 is right
        assert zf.namelist()[0] == pf.MANIFEST            # listings show the manifest first
        for name in (pf.WEIGHTS, pf.OPTIMIZER, pf.STATE, pf.HISTORY_ARRAYS):
            assert zf.getinfo(name).compress_type == zipfile.ZIP_STORED
    for name, data in members.items():
        if name != pf.MANIFEST:                           # what the previous reader checks
            assert manifest["members"][name] == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    # the safetensors library reads the members this writer streamed, bit for bit
    read = safetensors.torch.load(members[pf.WEIGHTS])
    assert set(read) == set(weights)
    for key, want in weights.items():
        assert read[key].dtype == want.dtype and read[key].shape == want.shape, key
        assert bits(read[key]) == bits(want), key
    size = int.from_bytes(members[pf.WEIGHTS][:8], "little")
    assert size % 8 == 0                                  # padded, so every tensor starts aligned
    header = json.loads(members[pf.WEIGHTS][8:8 + size])
    assert json.loads(header["__metadata__"]["seqwb.order"]) == list(weights)
    for key, spec in header.items():
        if key != "__metadata__":
            assert (8 + size + spec["data_offsets"][0]) % weights[key].element_size() == 0, key
    for name, want in ((pf.OPTIMIZER, project.checkpoint.optimizer), (pf.STATE, project.checkpoint.tensors)):
        read = safetensors.torch.load(members[name])
        assert {k: bits(v) for k, v in read.items()} == {k: bits(v) for k, v in want.items()}
    assert set(safetensors.numpy.load(members[pf.HISTORY_ARRAYS])) >= {"run-1/loss/train/step"}


def test_round_trip_is_exact_for_every_dtype_and_layout(tmp_path: Path) -> None:
    weights = all_dtypes()
    path = tmp_path / "p.seqwb"
    project = project_with(weights)
    pf.save_project(project, path)
    loaded = pf.load_project(path)
    assert loaded.to_json() == project.to_json()
    assert_projects_equal_tensors(loaded.checkpoint, project.checkpoint)   # bit for bit (NaN included)
    got = loaded.checkpoint.weights
    assert list(got) == list(weights)                     # the saved order, not safetensors' sorted order
    for key, want in weights.items():
        assert got[key].dtype == want.dtype and got[key].shape == want.shape, key
        assert bits(got[key]) == bits(want), key
    # each loaded tensor has memory of its own (torch.set_rng_state, for one, crashes on a view into a buffer)
    for tensors in (got, loaded.checkpoint.optimizer, loaded.checkpoint.tensors):
        for key, t in tensors.items():
            assert t.storage_offset() == 0 and t.untyped_storage().nbytes() == t.numel() * t.element_size(), key
    # loaded tensors are ordinary writable tensors: changing one changes nothing else
    before = bits(got["slice_b"])
    got["slice_a"].add_(1.0)
    got["f32"][0] = 7.0
    assert bits(got["slice_b"]) == before and got["f32"][0].item() == 7.0
    # and saving what was loaded gives the same tensors again
    pf.save_project(loaded, path)
    again = pf.load_project(path).checkpoint.weights
    assert bits(again["slice_a"]) == bits(got["slice_a"]) and bits(again["f64"]) == bits(weights["f64"])


def test_files_written_by_the_previous_writer_still_load(tmp_path: Path) -> None:
    project = make_project()
    path = tmp_path / "old.seqwb"
    pf.save_project(project, path)
    ck = project.checkpoint
    # the previous writer: safetensors' own serialiser, members deflated by another zip tool (rewrite deflates)
    old = {pf.WEIGHTS: safetensors.torch.save(ck.weights, metadata={"seqwb.order": json.dumps(list(ck.weights))}),
           pf.OPTIMIZER: safetensors.torch.save(ck.optimizer), pf.STATE: safetensors.torch.save(ck.tensors)}
    rewrite(path, replace=old)
    assert_projects_equal_tensors(pf.load_project(path).checkpoint, ck)
    # the same members stored (not deflated), as the previous writer stored them
    stored = tmp_path / "stored.seqwb"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(stored, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_STORED)
    assert_projects_equal_tensors(pf.load_project(stored).checkpoint, ck)


def assert_projects_equal_tensors(got: Checkpoint, want: Checkpoint) -> None:
    for g, w in ((got.weights, want.weights), (got.optimizer, want.optimizer), (got.tensors, want.tensors)):
        assert set(g) == set(w)
        for key in w:
            assert g[key].dtype == w[key].dtype and bits(g[key]) == bits(w[key]), key


def safetensors_bytes(entries: list[tuple[str, str, list[int], bytes]], pad: bool = False) -> bytes:
    """A safetensors member written by hand: (name, dtype, shape, raw bytes) in this order, no alignment."""
    header, data = {}, b""
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data


def store(path: Path, replace: dict[str, bytes]) -> None:
    """Rewrite ``path`` with ``replace``d members, refreshed checksums, every member stored (the fast path)."""
    members = members_of(path)
    members.update(replace)
    doc = json.loads(members[pf.MANIFEST])
    for name, data in members.items():
        if name in doc["members"]:
            doc["members"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    members[pf.MANIFEST] = json.dumps(doc).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)


def test_unaligned_tensors_from_other_writers_load(tmp_path: Path) -> None:
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path)
    values = torch.tensor([1.25, -3.5, 1e30])
    doubles = torch.tensor([2.0 ** -1074, -1.0], dtype=torch.float64)
    member = safetensors_bytes([("bytes", "U8", [3], b"\x01\x02\x03"), ("f32", "F32", [3], bits(values)),
                                ("f64", "F64", [2], bits(doubles)), ("flag", "BOOL", [2], b"\x01\x00")])
    assert safetensors.torch.load(member)["f32"].tolist() == values.tolist()  # a valid file for the library
    store(path, {pf.WEIGHTS: member})
    got = pf.load_project(path).checkpoint.weights
    assert bits(got["f32"]) == bits(values) and bits(got["f64"]) == bits(doubles)
    assert got["bytes"].tolist() == [1, 2, 3] and got["flag"].tolist() == [True, False]


@pytest.mark.parametrize("member, why", [
    (b"\x05\x00\x00", "shorter than the 8-byte header length"),
    ((1000).to_bytes(8, "little") + b"{}", "runs past the end"),
    ((2).to_bytes(8, "little") + b"[]", "not a JSON object"),
    ((3).to_bytes(8, "little") + b"{x}", "header is not JSON"),
    (safetensors_bytes([("a", "C64", [1], b"\x00" * 8)]), "unknown dtype"),
    (safetensors_bytes([("a", "F32", [-1], b"")]), "malformed shape"),
    (safetensors_bytes([("a", "F32", [3], b"\x00" * 8)]), "do not fit shape"),
    (safetensors_bytes([("a", "F32", [2], b"\x00" * 8)]) + b"\x00" * 4, "the member holds"),
])
def test_malformed_stored_tensor_members(tmp_path: Path, member: bytes, why: str) -> None:
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path)
    store(path, {pf.OPTIMIZER: member})
    with pytest.raises(ProjectFileError, match=f"member {pf.OPTIMIZER} is not a valid safetensors file") as info:
        pf.load_project(path)
    assert why in str(info.value) and str(path) in str(info.value)


def test_overlapping_tensors_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path)
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()
    store(path, {pf.STATE: len(header).to_bytes(8, "little") + header + b"\x00" * 12})
    with pytest.raises(ProjectFileError, match="does not start where the previous tensor ends"):
        pf.load_project(path)


def test_a_tensor_changing_during_the_save_never_breaks_the_checksums(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # A checkpoint can be shared with a trainer that changes its tensors in place (an optimizer restored from
    # it); the save copies each slice once and hashes, checks and writes that copy, so the file stays consistent.
    project = make_project()
    moving = torch.zeros(4096)
    project.checkpoint.optimizer["moving"] = moving
    monkeypatch.setattr(pf.writer._StreamWriter, "SLICE", 1024)
    real_write = zipfile._ZipWriteFile.write

    def write_then_change(self, data):  # the "trainer" steps between two slices of the member
        n = real_write(self, data)
        moving.add_(1.0)
        return n

    monkeypatch.setattr(zipfile._ZipWriteFile, "write", write_then_change)
    path = tmp_path / "p.seqwb"
    pf.save_project(project, path)
    monkeypatch.undo()
    loaded = pf.load_project(path).checkpoint.optimizer["moving"]   # would raise "checksum mismatch"
    assert loaded.shape == moving.shape
    assert len(set(loaded.tolist())) > 1       # it did change while being written: slices differ


def test_zip64_headers_of_streamed_members_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Members of 4 GiB and more get zip64 local headers (a longer extra field before the data); a lowered limit
    # makes the small test members take that path.
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 64)
    project = make_project()
    path = tmp_path / "p.seqwb"
    pf.save_project(project, path)
    with zipfile.ZipFile(path) as zf:
        assert any(len(info.extra) for info in zf.infolist())
    assert_projects_equal(pf.load_project(path), project)


@pytest.mark.parametrize("deflated", [False, True], ids=["stored", "deflated"])
def test_tensor_members_are_read_through_zipfile_in_slices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           deflated: bool) -> None:
    # Slices of 7 bytes end inside the length prefix, the header and the tensors; stored members and members
    # deflated by other zip tools (rewrite deflates) take the same path, zipfile's own member reader.
    project = project_with(all_dtypes())
    path = tmp_path / "p.seqwb"
    pf.save_project(project, path)
    if deflated:
        rewrite(path)
    monkeypatch.setattr(pf.tensors, "READ_SLICE", 7)
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    assert_projects_equal_tensors(pf.load_project(path).checkpoint, project.checkpoint)
    assert {pf.WEIGHTS, pf.OPTIMIZER, pf.STATE} <= set(opened)


def test_tensor_members_are_checked_against_the_zips_crc_too(tmp_path: Path) -> None:
    # A byte changed after the file was written, with the manifest's sha256 made to match the changed bytes: only
    # the zip's CRC-32, which zipfile checks at the end of the member, still describes the original.
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path)
    members = members_of(path)
    original = members[pf.WEIGHTS]
    changed = bytearray(original)
    changed[-1] ^= 0x01                                   # the last tensor's last byte: the header still parses
    doc = json.loads(members[pf.MANIFEST])
    doc["members"][pf.WEIGHTS]["sha256"] = hashlib.sha256(changed).hexdigest()
    members[pf.MANIFEST] = json.dumps(doc).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)
    blob = bytearray(path.read_bytes())
    at = blob.index(original)
    blob[at:at + len(original)] = changed
    path.write_bytes(bytes(blob))
    with pytest.raises(ProjectFileError, match=r"member weights\.safetensors is corrupt \(checksum mismatch\)"):
        pf.load_project(path)
