"""The tensor members (``weights``, ``optimizer``, ``state``) in the safetensors layout: written from the tensors' own
memory, read back straight into newly allocated tensors.

The layout is safetensors' (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian header
length N, N bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`` and
then the tensors' raw little-endian bytes one after another, offsets relative to the end of the header.

torch is imported inside the functions: reading a manifest (``seqwb info``, file lists) must not pay for it.
"""

from __future__ import annotations

import io
import json
import math
import sys
from typing import Any, Callable

from workbench.core.projectfile.format import is_int
from workbench.schema.errors import ProjectFileError

# safetensors metadata key holding the tensor names in their original order (safetensors sorts them on disk).
ORDER_KEY = "seqwb.order"

# torch dtype name -> safetensors dtype name, for the dtypes both know (safetensors has no complex numbers).
_SAFETENSORS_DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8",
    "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8", "bool": "BOOL",
    "float8_e5m2": "F8_E5M2", "float8_e4m3fn": "F8_E4M3",
}
_TORCH_DTYPE_NAMES = {st: name for name, st in _SAFETENSORS_DTYPES.items()}

# Tensors are read in slices of this size.  zipfile's member reader hands out a new bytes object per read, which
# readinto then copies into the tensor: a slice bounds that temporary (a whole 40 MB tensor would be allocated and
# faulted in a second time) and keeps it in the CPU cache for the copy.  Reading a 161 MB checkpoint took the same
# time with 1 and 4 MiB slices, ~12% longer with 256 KiB (more calls) and with 16 MiB (out of cache).
READ_SLICE = 1 << 20


def tensor_chunks(tensors: dict[str, Any], what: str) -> tuple[Any, ...]:
    """The safetensors member of ``tensors`` as pieces of memory to write one after another: the header, then one
    uint8 memoryview per tensor onto the tensor's own memory.

    No serialised copy of the tensors is made (only tensors on a GPU or not contiguous are copied); the writer
    copies the views through small buffers as it writes them.  ``what`` names the checkpoint field in errors.
    """
    import torch

    if sys.byteorder != "little":  # the raw memory is not the file's byte order: let safetensors convert
        return (_safetensors_bytes(tensors, what),)
    prepared = []
    for index, (name, tensor) in enumerate(tensors.items()):
        _check_tensor(name, tensor, what, torch)
        dtype = _SAFETENSORS_DTYPES.get(str(tensor.dtype).removeprefix("torch."))
        if dtype is None:
            raise TypeError(f"checkpoint.{what}[{name!r}] has dtype {tensor.dtype}, which a project file cannot "
                            f"store")
        t = tensor.detach()
        if t.device.type != "cpu":
            t = t.to("cpu")
        t = t.contiguous()  # a no-op for the usual contiguous tensor
        # Widest elements first (as safetensors does), so that with the header padded to 8 bytes every tensor
        # starts at a multiple of its element size (readers that map the file, like safetensors', use it in place).
        prepared.append((-t.element_size(), index, name, dtype, t))
    prepared.sort(key=lambda item: item[:2])
    header: dict[str, Any] = {}
    chunks: list[Any] = []
    offset = 0
    for _, _, name, dtype, t in prepared:
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        if nbytes:
            # uint8 view of the tensor's own memory (numpy knows no bfloat16; the view also covers bool)
            chunks.append(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
        offset += nbytes
    header["__metadata__"] = {ORDER_KEY: json.dumps(list(tensors))}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    text += b" " * (-len(text) % 8)  # padded with spaces to 8 bytes, like safetensors' own writer
    return (len(text).to_bytes(8, "little") + text, *chunks)


def _check_tensor(name: Any, tensor: Any, what: str, torch: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"checkpoint.{what}: tensor names must be strings, got {name!r}")
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"checkpoint.{what}[{name!r}] is a {type(tensor).__name__}, not a torch.Tensor")


def _safetensors_bytes(tensors: dict[str, Any], what: str) -> bytes:
    """safetensors bytes of ``tensors`` made by the safetensors library (used on big-endian machines only)."""
    import torch
    import safetensors.torch

    prepared: dict[str, Any] = {}
    storages: set[int] = set()
    for name, tensor in tensors.items():
        _check_tensor(name, tensor, what, torch)
        t = tensor.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr and ptr in storages:
            # Tied weights and views share memory, which safetensors refuses; each gets its own copy.
            t = t.clone()
            ptr = t.untyped_storage().data_ptr()
        storages.add(ptr)
        prepared[name] = t
    return safetensors.torch.save(prepared, metadata={ORDER_KEY: json.dumps(list(prepared))})


def read_tensors(stream: io.BufferedIOBase, size: int, label: str, name: str,
                 update: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """The tensors of the ``size``-byte safetensors member read from ``stream``, each read straight into its own
    newly allocated tensor; ``update`` (if given) receives every piece read, in order (to hash the member).

    The header is checked as strictly as the safetensors library checks it (known dtypes, shapes, offsets that
    tile the data exactly with no gaps or overlaps) before any tensor is allocated.  Exactly ``size`` bytes are
    read, so a zip member's stream reaches its end, where zipfile checks the member's CRC-32."""
    import torch

    def bad(why: str) -> ProjectFileError:
        return ProjectFileError(f"{label}: member {name} is not a valid safetensors file ({why})")

    def read_into(view: memoryview) -> None:
        for start in range(0, len(view), READ_SLICE):
            piece = view[start:start + READ_SLICE]
            done = 0
            while done < len(piece):
                n = stream.readinto(piece[done:])
                if not n:
                    raise ProjectFileError(f"{label}: member {name} is truncated")
                done += n
            if update is not None:
                update(piece)

    if size < 8:
        raise bad("shorter than the 8-byte header length")
    prefix = memoryview(bytearray(8))
    read_into(prefix)
    header_len = int.from_bytes(prefix, "little")
    if header_len > size - 8:
        raise bad(f"the header length {header_len} runs past the end of the member")
    text = memoryview(bytearray(header_len))
    read_into(text)
    try:
        header = json.loads(bytes(text).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"its header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict)
                                     and all(isinstance(v, str) for v in metadata.values())):
        raise bad("its __metadata__ is not a table of strings")
    spans = []
    for key, spec in header.items():
        if not isinstance(spec, dict):
            raise bad(f"the entry of {key!r} is not an object")
        dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
        if dtype not in _TORCH_DTYPE_NAMES:
            raise bad(f"{key!r} has the unknown dtype {dtype!r}")
        torch_dtype = getattr(torch, _TORCH_DTYPE_NAMES[dtype], None)
        if torch_dtype is None:
            raise bad(f"{key!r} has the dtype {dtype}, which this torch does not have")
        if not (isinstance(shape, list) and all(is_int(d) and d >= 0 for d in shape)):
            raise bad(f"{key!r} has the malformed shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(is_int(o) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise bad(f"{key!r} has malformed data_offsets {offsets!r}")
        itemsize = torch.empty((), dtype=torch_dtype).element_size()
        if offsets[1] - offsets[0] != math.prod(shape) * itemsize:
            raise bad(f"{key!r}: data_offsets {offsets} do not fit shape {shape} of {dtype}")
        spans.append((offsets[0], offsets[1], key, torch_dtype, shape))
    spans.sort(key=lambda span: span[:2])
    end = 0
    for begin, stop, key, _, _ in spans:
        if begin != end:
            raise bad(f"the data of {key!r} does not start where the previous tensor ends")
        end = stop
    if end != size - 8 - header_len:
        raise bad(f"the tensors cover {end} bytes of data, the member holds {size - 8 - header_len}")
    tensors = {}
    for _, _, key, torch_dtype, shape in spans:
        boolean = torch_dtype == torch.bool
        tensor = torch.empty(shape, dtype=torch.uint8 if boolean else torch_dtype)
        if tensor.numel():
            read_into(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))  # type: ignore[arg-type]
        tensors[key] = tensor != 0 if boolean else tensor   # bytes other than 0 and 1 are no valid bools
    order = _ordered_names(metadata)
    ordered = {key: tensors[key] for key in order if key in tensors}
    ordered.update((key, t) for key, t in tensors.items() if key not in ordered)
    return ordered


def _ordered_names(metadata: Any) -> list[str]:
    try:
        order = json.loads((metadata or {}).get(ORDER_KEY, "[]"))
    except (ValueError, TypeError, AttributeError, RecursionError):
        return []
    return [key for key in order if isinstance(key, str)] if isinstance(order, list) else []
