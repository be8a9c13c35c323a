"""Bundled sample images and their credits, shipped as package data (see README.md here)."""
