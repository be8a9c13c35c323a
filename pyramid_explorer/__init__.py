"""Pyramid Explorer: Gaussian/Laplacian pyramids and upsampling methods, side by side."""

import os

__version__ = "0.1.0"

# numpy asks for transparent huge pages for every large array (madvise); where the kernel then compacts
# memory on the page fault (THP defrag "madvise", the usual default), each fresh 4K image costs much more
# CPU on a busy machine: ten held 4K RGB float32 comparisons took 4.1-4.6 s of CPU for their SSIMs with
# it and 2.5-2.8 s without. Only takes effect when this package is imported before numpy (the app, the
# command line); a user's own setting wins.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
