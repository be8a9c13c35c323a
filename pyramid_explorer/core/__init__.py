"""Qt-free numerical core: pure functions on numpy arrays (numpy and OpenCV only)."""
