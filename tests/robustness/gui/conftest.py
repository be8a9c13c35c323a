"""GUI fixtures (tests/qt_fixtures.py): Qt warnings and leaked threads fail a test."""

from qt_fixtures import make_window, no_leaked_threads, qt_warnings_fail, settings_store, window  # noqa: F401
