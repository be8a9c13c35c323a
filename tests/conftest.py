"""Shared test settings and fixtures: Qt runs offscreen so the suite works on machines without a display."""

import os

import cv2
import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import ImageFile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel decoder runs (a decompression bomb must be refused from its header)."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(cv2, "imdecode", forbidden)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    monkeypatch.setattr(imagecodecs, "jpeg8_decode", forbidden)
    monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)
