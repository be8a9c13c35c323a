"""The Qt window: the only part of the package that imports PySide6 and pyqtgraph."""
