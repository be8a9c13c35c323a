"""Pyramid Explorer: Gaussian/Laplacian pyramids and upsampling methods, side by side."""

__version__ = "0.1.0"
