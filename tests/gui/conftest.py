"""GUI fixtures (tests/qt_fixtures.py): Qt warnings and leaked threads fail a test; `open_image`, which opens
a guitools.make_image() of a chosen size in the window, and `opened`, the window with the default one open
(helpers to drive it are in guitools.py)."""

from collections.abc import Callable

import pytest
from guitools import make_image, open_and_wait, write_png
from qt_fixtures import make_window, no_leaked_threads, qt_warnings_fail, settings_store, window  # noqa: F401

from pyramid_explorer.app.main_window import MainWindow


@pytest.fixture
def open_image(qtbot, window, tmp_path) -> Callable[..., MainWindow]:  # noqa: F811 (the imported `window`)
    """open_image(height, width): `window` with make_image(height, width) open as src.png, everything it
    shows computed (no size: make_image's own)."""
    def open_(*size: int) -> MainWindow:
        return open_and_wait(qtbot, window, write_png(tmp_path / "src.png", make_image(*size)))
    return open_


@pytest.fixture
def opened(open_image):
    """`window` with guitools.make_image() open as src.png, everything it shows computed."""
    return open_image()
