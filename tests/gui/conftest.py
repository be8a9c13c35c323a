"""GUI fixtures (tests/qt_fixtures.py): Qt warnings and leaked threads fail a test; `opened`, the window
with a small image open (helpers to drive it are in guitools.py)."""

import pytest
from guitools import make_image, open_and_wait, write_png
from qt_fixtures import make_window, no_leaked_threads, qt_warnings_fail, settings_store, window  # noqa: F401


@pytest.fixture
def opened(qtbot, window, tmp_path):  # noqa: F811 (`window` is the fixture imported above)
    """`window` with guitools.make_image() open as src.png, everything it shows computed."""
    return open_and_wait(qtbot, window, write_png(tmp_path / "src.png", make_image()))
