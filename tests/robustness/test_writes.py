"""No file is ever lost: every write goes through `core.io.atomic_write`, and a failing write changes nothing.

Already tested elsewhere (not repeated here): tests/test_io.py — an encoder failing after a partial
write (PNG, TIFF, NPY), a failing rename or fsync, a read-only folder, a target that is a folder, a
missing folder, an interrupted write, refusals of float/signed data for PNG and of unknown extensions;
tests/test_export.py — a disk filling up half-way through a TIFF export, a folder in the way, an output
folder vanishing mid-export, a manifest that cannot be written, the PNG visualisation mapping.

Added here: an audit of the source for write calls that bypass the helper; the same failures (disk
full after the temporary file is opened, a refused temporary file as a read-only folder gives, Ctrl+C
mid-write) injected into exports in every format and into the command line, checking that every file
already on disk is byte-identical afterwards and no temporary file remains; and a sweep showing that no
export writes non-representable data into an 8-bit file without marking it a visualisation.
"""

from __future__ import annotations

import ast
import errno
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import random_image, read_back, reference_arrays

from pyramid_explorer import commands
from pyramid_explorer.core import io as image_io
from pyramid_explorer.core.export import FORMATS, KINDS, MANIFEST_NAME, ExportError, export_pyramid
from pyramid_explorer.core.io import SAVE_EXTENSIONS, ImageSaveError, save_image
from pyramid_explorer.core.pyramid import gaussian_pyramid
from pyramid_explorer.core.upsampling import MODES

PACKAGE = Path(__file__).resolve().parents[2] / "pyramid_explorer"

# ----------------------------------------------------------------------------------------------- audit

# Every call that can create or change a file, by (module, enclosing function, call). Adding a write
# anywhere else fails `test_every_write_goes_through_atomic_write` until it is reviewed and listed here.
# The OME-Zarr export (core.chunked) is atomic per folder rather than per file: its tiles are written
# by zarr into a hidden partial folder, which replaces the target only once complete.
ALLOWED_WRITES = {
    ("core/io.py", "_create_temporary", "open"): "the temporary file of atomic_write (mode 'xb')",
    ("core/io.py", "atomic_write", "os.replace"): "atomic_write's rename over the target",
    ("core/io.py", "_npy_writer.write", "np.save"): "into atomic_write's file handle",
    ("core/imageheader.py", "pillow_open", "Image.open"): "the loader's Pillow reading a file (mode 'r')",
    ("core/tiff.py", "write_tiff", "tifffile.imwrite"): "into its callers' atomic_write handle",
    ("core/tiff.py", "write_pyramid", "tifffile.TiffWriter"): "into its callers' atomic_write handle",
    ("core/chunkfiles.py", "_write_direct", "os.open"): "OME-Zarr: a chunk file inside the hidden folder",
    ("core/chunkfiles.py", "write_chunk", "path.write_bytes"): "the same, where O_DIRECT is refused",
    ("core/bigtiff.py", "_RowFile.__init__", "open"): "raw scratch rows in a hidden folder, always removed",
    ("app/errors.py", "start_log_file", ".RotatingFileHandler"): "the log: appended to, never replacing data",
    ("core/chunked.py", "_replace", "os.replace"): "OME-Zarr: a finished hidden folder swapped into place",
    ("core/omezarr.py", "write_manifest", "path.write_text"): "OME-Zarr: inside that hidden folder",
    ("app/launch.py", "save_png", "buffer.open"): "an in-memory QBuffer for the screenshot's PNG bytes",
    ("app/launch.py", "save_png", "image.save"): "into that QBuffer; the bytes then go through atomic_write",
    ("core/convmatrix.py", "save_animation", ".save"): "Pillow's GIF/APNG into atomic_write's file handle",
}
_WRITING_CALLS = {"os.replace", "os.rename", "os.link", "os.symlink", "os.truncate", "os.remove",
                  "np.save", "np.savez", "np.savez_compressed", "np.savetxt", "tifffile.imwrite",
                  "tifffile.imsave", "tifffile.TiffWriter", "cv2.imwrite", "cv2.imwritemulti",
                  "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.move", "shutil.copytree"}
_WRITING_METHODS = {"save", "imwrite", "tofile", "write_text", "write_bytes", "touch", "TiffWriter",
                    "FileHandler", "RotatingFileHandler", "QSaveFile", "QFile"}
_WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"}


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else ""
        return f"{owner}.{func.attr}" if owner else f".{func.attr}"
    return ""


def _writes(call: ast.Call, name: str) -> bool:
    """Whether a call can create or change a file (conservative: an unknown open mode counts)."""
    bare = name.rsplit(".", 1)[-1]
    functions = ("open", "io.open", "os.fdopen")
    if name in functions or (name.endswith(".open") and name != "os.open"):  # x.open: Path.open, mode first
        at = 1 if name in functions else 0
        mode = call.args[at] if len(call.args) > at else next(
            (k.value for k in call.keywords if k.arg == "mode"), ast.Constant("r"))
        return not (isinstance(mode, ast.Constant) and not set(str(mode.value)) & set("wax+"))
    if name == "os.open":
        return any(isinstance(node, ast.Attribute) and node.attr in _WRITE_FLAGS
                   for node in ast.walk(call.args[1]))
    return name in _WRITING_CALLS or bare in _WRITING_METHODS


def write_sites() -> set[tuple[str, str, str]]:
    """(module, enclosing function, call) of every call in the package that can write a file."""
    sites = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()

        def visit(node: ast.AST, scope: tuple[str, ...], module: str = module) -> None:
            for child in ast.iter_child_nodes(node):
                inner = scope
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    inner = (*scope, child.name)
                if isinstance(child, ast.Call):
                    name = _call_name(child)
                    if _writes(child, name):
                        sites.add((module, ".".join(scope), name))
                visit(child, inner)

        visit(ast.parse(path.read_text(encoding="utf-8")), ())
    return sites


def test_every_write_goes_through_atomic_write():
    assert write_sites() == set(ALLOWED_WRITES)


def test_the_audit_would_notice_a_direct_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "sneaky.py").write_text(
        "import cv2, numpy as np\n"
        "def dump(a, p):\n"
        "    cv2.imwrite(p, a)\n"
        "    np.save(p, a)\n"
        "    open(p, mode='a').write('x')\n"
        "    open(p).read()\n"
        "    with open(p, 'rb') as fh: fh.read()\n"
        "    p.open('w')\n"
        "    p.open()\n"
        "class Panel:\n"
        "    def shoot(self, p):\n"
        "        self.grab().save(p)\n"
    )
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    assert write_sites() == {("sneaky.py", "dump", "cv2.imwrite"), ("sneaky.py", "dump", "np.save"),
                             ("sneaky.py", "dump", "open"), ("sneaky.py", "dump", "p.open"),
                             ("sneaky.py", "Panel.shoot", ".save")}


# ------------------------------------------------------------------------------------- failing writes


class _FullDisk(io.RawIOBase):
    """A file that takes `room` bytes and then fails with ENOSPC, as a full disk does."""

    def __init__(self, inner: io.BufferedWriter, room: int) -> None:
        super().__init__()
        self._inner, self._room = inner, room

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        left = self._room - self._inner.tell()
        if len(view) > left:
            self._inner.write(view[: max(left, 0)])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._inner.write(view)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def flush(self) -> None:
        self._inner.flush()

    def fileno(self) -> int:
        return self._inner.fileno()

    def close(self) -> None:
        super().close()  # flushes first
        self._inner.close()


def _disk_full(create: Callable[[str, str], tuple[str, io.BufferedWriter]], folder: str, name: str):
    temporary, fh = create(folder, name)
    return temporary, _FullDisk(fh, room=100)


def _read_only(create: Callable, folder: str, name: str):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), folder)


class _Interrupted(_FullDisk):
    """A file whose writer is interrupted by Ctrl+C after 10 bytes."""

    def write(self, data: bytes) -> int:
        self._inner.write(memoryview(data).cast("B")[:10])
        raise KeyboardInterrupt


def _ctrl_c(create: Callable, folder: str, name: str):
    temporary, fh = create(folder, name)
    return temporary, _Interrupted(fh, room=0)


FAILURES = {"disk-full": _disk_full, "read-only": _read_only, "ctrl-c": _ctrl_c}


def fail_nth_write(monkeypatch: pytest.MonkeyPatch, failure: str, nth: int) -> None:
    """Make the `nth` atomic write (1-based) fail as `failure` says, once its temporary file is due."""
    real = image_io._create_temporary
    calls = []

    def create(folder: str, name: str):
        calls.append(name)
        if len(calls) == nth:
            return FAILURES[failure](real, folder, name)
        return real(folder, name)

    monkeypatch.setattr(image_io, "_create_temporary", create)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def temporaries(folder: Path) -> list[str]:
    return [path.name for path in folder.iterdir() if path.name.endswith(".tmp")]


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_failing_export_keeps_every_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  fmt: str, failure: str):
    kinds = ("gaussian",) if fmt == "ome-tiff" else ("gaussian", "laplacian")
    first = random_image((19, 14), np.uint8, 3, seed=1)
    export_pyramid(first, tmp_path, kinds=kinds, fmt=fmt)
    before = snapshot(tmp_path)
    nth = 1 if fmt == "ome-tiff" else 3  # a single data file, or two replaced before the failure
    fail_nth_write(monkeypatch, failure, nth)
    second = random_image((19, 14), np.uint8, 3, seed=2)
    expected = KeyboardInterrupt if failure == "ctrl-c" else ExportError
    with pytest.raises(expected) as caught:
        export_pyramid(second, tmp_path, kinds=kinds, fmt=fmt, force=True)
    monkeypatch.undo()
    after = snapshot(tmp_path)
    assert temporaries(tmp_path) == [] and set(after) == set(before)
    replaced = [name for name in before if name != MANIFEST_NAME][: nth - 1]
    for name in before:
        if name in replaced:  # complete files of the second export
            assert after[name] != before[name]
            assert np.array_equal(read_back(tmp_path / name), gaussian_pyramid(second)[int(name[9:11])])
        elif name != MANIFEST_NAME or not replaced:
            assert after[name] == before[name], f"{name} changed"
    if expected is ExportError:
        message = str(caught.value)
        assert "\n" not in message and ("No space left" in message or "permission denied" in message)
        assert [path.name for path in caught.value.written if path.name != MANIFEST_NAME] == replaced
    if replaced and expected is ExportError:  # the manifest now describes what is on disk
        manifest = json.loads(after[MANIFEST_NAME])
        assert manifest["status"] == "failed" and [f["file"] for f in manifest["files"]] == replaced


@pytest.mark.parametrize("failure", ["disk-full", "read-only"])
def test_failing_command_line_export_is_one_line_and_keeps_files(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  failure: str):
    source = tmp_path / "photo.png"
    save_image(source, random_image((12, 10), np.uint8, 3, seed=3))
    out = tmp_path / "out"
    assert commands.main(["export", str(source), "--out", str(out), "--quiet"]) == commands.EXIT_OK
    before = snapshot(out / "photo")
    save_image(source, random_image((12, 10), np.uint8, 3, seed=4))
    capsys.readouterr()
    fail_nth_write(monkeypatch, failure, 1)
    status = commands.main(["export", str(source), "--out", str(out), "--quiet", "--force"])
    assert status == commands.EXIT_FAILED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gaussian_00.tiff" in err[0] and "Traceback" not in err[0]
    assert snapshot(out / "photo") == before and temporaries(out / "photo") == []


def test_failing_single_save_as_a_read_only_folder_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs as root too (chmod-based tests in test_io.py are skipped there)."""
    target = tmp_path / "keep.tif"
    save_image(target, random_image((5, 5), np.float32))
    before = target.read_bytes()
    fail_nth_write(monkeypatch, "read-only", 1)
    with pytest.raises(ImageSaveError, match="permission denied"):
        save_image(target, random_image((5, 5), np.float32, seed=1))
    assert target.read_bytes() == before and temporaries(tmp_path) == []


# ---------------------------------------------------------------------------- never silently 8-bit


@pytest.mark.parametrize(("dtype", "channels"), [(np.uint8, None), (np.uint8, 4), (np.uint16, 3),
                                                 (np.float32, None), (np.float32, 4)])
def test_png_export_marks_every_file_that_is_not_the_data(tmp_path: Path, dtype: type, channels: int | None):
    """A PNG holds the engine's array exactly, or the manifest calls it a visualisation with its mapping."""
    image = random_image((11, 14), dtype, channels, seed=5)
    export_pyramid(image, tmp_path, kinds=KINDS, fmt="png", modes=MODES)
    want = reference_arrays(image)
    want["mosaic", None, None] = None
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert len(manifest["files"]) > 20
    for entry in manifest["files"]:
        pixels = read_back(tmp_path / entry["file"])
        assert pixels.dtype in (np.uint8, np.uint16)
        if entry["kind"] == "mosaic":
            exact = image.dtype != np.float32  # Gaussian levels in their own integer dtype
        else:
            data = want[entry["kind"], entry["level"], entry["mode"]]
            exact = data.shape == pixels.shape and np.array_equal(data, pixels)
        assert (entry["role"] == "data") == exact, entry["file"]
        if not exact:
            assert "mapping" in entry["visualisation"] and entry["dtype"] == str(pixels.dtype)


def test_no_path_writes_jpeg(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """JPEG would drop alpha and change values; nothing writes it, and asking for it is refused."""
    assert not {".jpg", ".jpeg"} & set(SAVE_EXTENSIONS) and "jpeg" not in FORMATS
    rgba = random_image((4, 4), np.uint8, 4)
    for name in ("a.jpg", "a.JPEG"):
        with pytest.raises(ImageSaveError, match="unsupported file extension"):
            save_image(tmp_path / name, rgba)
    source = tmp_path / "a.png"
    save_image(source, rgba)
    status = commands.main(["export", str(source), "--out", str(tmp_path / "out"), "--format", "jpeg"])
    assert status == commands.EXIT_USAGE and "invalid choice: 'jpeg'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_failing_swap_of_an_ome_zarr_export_puts_the_earlier_one_back(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch):
    """The folder-level swap moves the old export aside, then the new one in; if the second move fails,
    the old export must return (tests/test_chunked_export.py covers failures before the swap)."""
    chunked = pytest.importorskip("pyramid_explorer.core.chunked")
    out = tmp_path / "out.ome.zarr"
    chunked.export_ome_zarr(da_array(random_image((20, 24), np.uint8, 3, seed=1)), out, chunk=8)
    before = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    real = os.replace
    swaps = []

    def new_one_fails(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        if Path(target) == out or Path(source) == out:  # zarr's own per-file replaces pass through
            swaps.append(Path(source).name.split("-")[0])
            if Path(source).name.startswith(".out.ome.zarr.partial"):
                raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        real(source, target)

    monkeypatch.setattr(os, "replace", new_one_fails)
    with pytest.raises(ExportError, match="nothing was written"):
        chunked.export_ome_zarr(da_array(random_image((20, 24), np.uint8, 3, seed=2)), out, chunk=8,
                                force=True)
    monkeypatch.undo()
    after = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert after == before
    assert swaps == ["out.ome.zarr", ".out.ome.zarr.partial", ".out.ome.zarr.old"]  # aside, in (fails), back
    assert [path.name for path in tmp_path.iterdir()] == ["out.ome.zarr"]


def da_array(image: np.ndarray):
    import dask.array

    return dask.array.from_array(image, chunks=(8, 8, -1))
