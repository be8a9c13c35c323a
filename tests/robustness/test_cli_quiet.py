"""The command line over a folder of broken files: one line per failure on stderr, nothing from the libraries.

Two real processes (stderr of a process is what a user sees; in-process, pytest's own log capture would
hide what Python's logging prints): `export` over every cut file of the generated corpus and PngSuite's
corrupt files next to good ones, and `info` on a multi-page TIFF whose page chain is damaged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from robust_corpus import CUTS, FIRST_FRAME_INTACT, GENERATED, PNGSUITE_FILES, ROOT, write_generated

from pyramid_explorer.commands import IMAGE_SUFFIXES


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "pyramid_explorer", *map(str, args)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300, check=False)


def test_export_of_a_folder_of_broken_files_says_one_line_each(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_generated(corpus)
    for path in PNGSUITE_FILES:
        if path.name.startswith("x"):
            shutil.copy(path, corpus / path.name)
    inputs = sorted(p for p in corpus.iterdir() if p.suffix in IMAGE_SUFFIXES)
    broken = [p for p in inputs if p.name.startswith("x")
              or (p.name.split("-", 1)[0] in CUTS and p.name.split("-", 1)[1] not in FIRST_FRAME_INTACT)]
    result = run("export", corpus, "--out", tmp_path / "out", "--quiet", "--kinds", "gaussian")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0] == f"pyramid-explorer export: {len(broken)} of {len(inputs)} inputs failed:"
    assert sorted(line.split(":", 1)[0].strip() for line in lines[1:]) == sorted(map(str, broken))
    assert len(lines) == len(broken) + 1
    exported = [folder for folder in (tmp_path / "out").iterdir() if (folder / "manifest.json").exists()]
    assert len(exported) == len(inputs) - len(broken)
    assert len(GENERATED) > 20


def test_info_on_a_damaged_multi_page_tiff_prints_no_library_complaints(tmp_path: Path):
    write_generated(tmp_path)
    result = run("info", tmp_path / "half-three-pages.tif")
    assert result.returncode == 0 and "first of 2 frames" in result.stdout
    assert result.stderr == ""
    result = run("info", tmp_path / "half-palette.tif")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"pyramid-explorer info: error: {tmp_path / 'half-palette.tif'}: corrupt TIFF: a palette image "
        "without a colour map"]
