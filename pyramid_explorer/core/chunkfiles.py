"""A compressed chunk file written from memory the writing thread keeps, past the page cache when it can.

The big-image exports write hundreds of chunk files of a few MB; what this saves is fresh memory, which
costs more than the copying itself (every new page is allocated, zeroed by the kernel and, on a virtual
machine, backed by the host anew). On the 2-core virtual machine this project is measured on, buffered
writes copied into fresh page-cache pages at about 0.6 GB/s: for the 1.8 GB of compressed chunks of a
16000 x 16000 RGB export with its bands, 27% of `perf`'s samples, more than LZ4. And numcodecs' `encode`
returns every compressed chunk in a new `bytes`, whose pages glibc hands back to the kernel when it is
freed. So:
- a Blosc chunk is compressed by the Blosc library inside numcodecs (`blosc_compress_ctx`, the call
  `Blosc.encode` makes off the main thread: the same bytes) into a buffer this thread keeps;
- the file's whole blocks are written from that buffer with O_DIRECT (the disk reads our memory; no page
  cache), its last partial block as usual.
Other codecs, a numcodecs without that symbol, a system without O_DIRECT (not Linux) and a file system
that refuses it (older tmpfs, some FUSE file systems) take the ordinary path; the bytes on disk are the
same either way.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np

from pyramid_explorer.core.scratch import aligned_buffer

ALIGN = 4096  # O_DIRECT's alignment of address, offset and length: a page covers every logical block size
_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux only


def _blosc_compress() -> Any:
    """`blosc_compress_ctx` of the Blosc library numcodecs carries, or None where it cannot be had."""
    try:
        function = ctypes.CDLL(numcodecs.blosc.__file__).blosc_compress_ctx
    except (OSError, AttributeError):
        return None
    c = ctypes
    function.argtypes = [c.c_int, c.c_int, c.c_size_t, c.c_size_t, c.c_void_p, c.c_void_p, c.c_size_t,
                         c.c_char_p, c.c_size_t, c.c_int]
    function.restype = c.c_int
    return function


_BLOSC_COMPRESS = _blosc_compress()


def write_chunk(path: Path, chunk: np.ndarray, compressor: Any) -> None:
    """Create (or replace) the file `path` holding C-contiguous `chunk` encoded by `compressor`."""
    data = compressed(chunk, compressor)
    head = len(data) // ALIGN * ALIGN
    if not (_DIRECT and head and _write_direct(path, data, head)):
        path.write_bytes(data)


def compressed(chunk: np.ndarray, compressor: Any) -> memoryview:
    """`compressor.encode(chunk)`; for Blosc in this thread's buffer (valid until its next call), starting
    on an `ALIGN` boundary."""
    if not (_BLOSC_COMPRESS is not None and isinstance(compressor, numcodecs.Blosc)
            and compressor.shuffle in (numcodecs.Blosc.NOSHUFFLE, numcodecs.Blosc.SHUFFLE,
                                       numcodecs.Blosc.BITSHUFFLE)
            and getattr(compressor, "_typesize", None) is None and chunk.flags.c_contiguous):
        return memoryview(compressor.encode(chunk))
    out = aligned_buffer("compressed", chunk.nbytes + numcodecs.blosc.MAX_OVERHEAD, ALIGN)
    size = _BLOSC_COMPRESS(compressor.clevel, compressor.shuffle, chunk.itemsize, chunk.nbytes,
                           chunk.ctypes.data, out.ctypes.data, out.nbytes, compressor.cname.encode(),
                           compressor.blocksize, 1)
    return out[:size].data if size > 0 else memoryview(compressor.encode(chunk))


def _write_direct(path: Path, data: memoryview, head: int) -> bool:
    """Write `data`, its first `head` bytes (whole blocks) with O_DIRECT; False when the file system
    refuses O_DIRECT (the file is then for the caller to write)."""
    import fcntl  # Unix only, as O_DIRECT

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _DIRECT, 0o666)
    except OSError as error:
        if error.errno == errno.EINVAL:
            return False
        raise
    try:
        view = data
        if np.frombuffer(data, np.uint8).ctypes.data % ALIGN:  # O_DIRECT reads from aligned memory only
            staged = aligned_buffer("direct", len(data), ALIGN)
            staged[:] = np.frombuffer(data, np.uint8)
            view = staged.data
        try:
            _write_all(fd, view[:head])
        except OSError as error:
            if error.errno == errno.EINVAL:  # blocks larger than ALIGN, or a file system that checks late
                return False
            raise
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_DIRECT)
        _write_all(fd, view[head:])
    finally:
        os.close(fd)
    return True


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]
