"""Chunk files compressed into kept buffers and written past the page cache: the same bytes as numcodecs'
`encode` and an ordinary write, on every path (O_DIRECT, a file system refusing it, no Blosc symbol)."""

from __future__ import annotations

import errno
import os
from concurrent.futures import ThreadPoolExecutor

import numcodecs
import numpy as np
import pytest

from pyramid_explorer.core import chunkfiles

Blosc = numcodecs.Blosc
CODECS = [Blosc("lz4", 5, Blosc.SHUFFLE), Blosc("lz4", 7, Blosc.NOSHUFFLE),
          Blosc("zstd", 1, Blosc.BITSHUFFLE),
          Blosc("blosclz", 9, blocksize=4096)]
# compressed sizes below one block, at a few blocks, and raw-sized (noise does not compress)
SHAPES = [(7, 13), (3, 64, 65), (2, 300, 301)]


def chunk_of(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray((rng.normal(100, 30, shape)).clip(0, 250).astype(dtype))


def off_main_thread(function, *args):
    """numcodecs' Blosc encodes on the main thread with Blosc's own threads (other block order, same
    values); the exports encode on writer threads, where it makes the call `chunkfiles` makes."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


@pytest.mark.parametrize("codec", CODECS, ids=str)
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_compressed_is_numcodecs_encode(codec, dtype, shape):
    chunk = chunk_of(shape, dtype)
    ours = off_main_thread(lambda: bytes(chunkfiles.compressed(chunk, codec)))
    assert ours == off_main_thread(codec.encode, chunk)
    assert np.array_equal(np.frombuffer(codec.decode(ours), dtype).reshape(shape), chunk)


@pytest.mark.parametrize("codec", [numcodecs.Zstd(level=3), Blosc("lz4", 5, Blosc.SHUFFLE, typesize=4),
                                   Blosc("lz4", 5, Blosc.AUTOSHUFFLE)], ids=str)
def test_other_codecs_and_settings_take_their_own_encode(codec):
    chunk = chunk_of((40, 50), np.uint16)
    assert off_main_thread(lambda: bytes(chunkfiles.compressed(chunk, codec))) == \
        off_main_thread(codec.encode, chunk)


@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 5, 200_001])
def test_written_file_holds_the_bytes_whatever_its_size(tmp_path, monkeypatch, size):
    """Whole blocks go out with O_DIRECT, the tail through the page cache; the file is exactly the data."""
    data = np.random.default_rng(size).integers(0, 256, size, np.uint8)
    monkeypatch.setattr(chunkfiles, "compressed", lambda chunk, codec: memoryview(chunk))  # as it is
    path = tmp_path / "0"
    path.write_bytes(b"x" * (size + 9000))  # an earlier, longer file is replaced
    off_main_thread(chunkfiles.write_chunk, path, data, None)
    assert path.read_bytes() == data.tobytes()


def test_a_chunk_file_decodes_to_its_chunk(tmp_path):
    chunk, codec = chunk_of((3, 256, 256), np.int16), CODECS[1]
    off_main_thread(chunkfiles.write_chunk, tmp_path / "c", chunk, codec)
    assert (tmp_path / "c").read_bytes() == off_main_thread(codec.encode, chunk)


@pytest.mark.parametrize("refused", ["open", "write"])
def test_a_file_system_refusing_o_direct_gets_an_ordinary_write(tmp_path, monkeypatch, refused):
    if not chunkfiles._DIRECT:
        pytest.skip("no O_DIRECT on this system")
    chunk, codec = chunk_of((3, 128, 128), np.float32), CODECS[0]
    real_open, real_write, calls = os.open, chunkfiles._write_all, []

    def open_refusing(path, flags, *args):
        if flags & chunkfiles._DIRECT and refused == "open":
            calls.append("open")
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    def write_refusing(fd, view):
        if refused == "write" and not calls:
            calls.append("write")
            real_write(fd, view[:4096])  # a file system that fails part-way leaves a partial file
            raise OSError(errno.EINVAL, "Invalid argument")
        real_write(fd, view)

    monkeypatch.setattr(chunkfiles.os, "open", open_refusing)
    monkeypatch.setattr(chunkfiles, "_write_all", write_refusing)
    off_main_thread(chunkfiles.write_chunk, tmp_path / "c", chunk, codec)
    assert calls == [refused]
    assert (tmp_path / "c").read_bytes() == off_main_thread(codec.encode, chunk)


def test_other_errors_are_raised(tmp_path):
    with pytest.raises(FileNotFoundError):
        chunkfiles.write_chunk(tmp_path / "missing" / "c", chunk_of((64, 64), np.float32), CODECS[0])


def test_without_o_direct_or_the_blosc_symbol_the_file_is_the_same(tmp_path, monkeypatch):
    chunk, codec = chunk_of((2, 300, 301), np.uint8), CODECS[0]
    monkeypatch.setattr(chunkfiles, "_DIRECT", 0)
    monkeypatch.setattr(chunkfiles, "_BLOSC_COMPRESS", None)
    chunkfiles.write_chunk(tmp_path / "c", chunk, codec)
    assert (tmp_path / "c").read_bytes() == off_main_thread(codec.encode, chunk)
