"""Linked views: every registered ViewBox shows the same source region at the same zoom.

Panels draw their layers in source coordinates (see `pyramid_explorer.jobs`), so linking is one
shared camera: a centre in source coordinates and a zoom in source pixels per screen pixel. A pan
or zoom by the user in any view sets the camera; every other view, and any view that is resized or
shown later, follows it. Views of different sizes keep the same centre and the same zoom.

After `fit` and until the user pans or zooms, every view instead shows the fitted rectangle whole at
its own size (refitted on resize and when shown), so panels of any size are filled; views whose own
fits are within `SAME_FIT` of each other (a grid's cells, a pixel apart) share the smallest of those
zooms, so panels side by side say the same zoom. The first pan or zoom makes that view's camera
everyone's; a tab shown later takes it only while it shows a region of the fitted rectangle (the user
zoomed in): one that shows all of it (zoomed out past the fit) leaves the new tab fitted. A pan or
zoom stays between MAX_MAGNIFICATION and ZOOM_OUT_LIMIT times smaller than the fit.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer

SAME_FIT = 0.03
"""Relative difference of two views' own fits below which they are given one zoom."""
ZOOM_OUT_LIMIT = 8.0
"""A pan or zoom shows the fitted rectangle at least 1/8 of its fitted size: further out the image is a
few screen pixels (the panels look black), which helps no one."""
MAX_MAGNIFICATION = 256.0
"""Screen pixels per source pixel at the closest zoom (25600%): a pixel already fills a panel there."""


class ViewLinker(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._boxes: list[pg.ViewBox] = []
        self._centre: tuple[float, float] | None = None
        self._units_per_pixel: float | None = None
        self._fit_rect: tuple[float, float, float, float] | None = None  # while fitting: x0, y0, w, h
        self._fitted: tuple[float, float, float, float] | None = None  # the last fit's rectangle
        self._shows_all = False  # the user's last pan or zoom left all of `_fitted` in view
        self._applying = False
        self._refit_pending = False  # a resize while fitting: every view's fit is redone at the next turn

    @property
    def fitting(self) -> bool:
        """True from a fit until the user pans or zooms: every view shows the fitted rectangle whole."""
        return self._fit_rect is not None

    @property
    def camera(self) -> tuple[tuple[float, float], float] | None:
        """(centre, source pixels per screen pixel), or None before the first fit."""
        if self._centre is None or self._units_per_pixel is None:
            return None
        return self._centre, self._units_per_pixel

    def add(self, box: pg.ViewBox) -> None:
        self._boxes.append(box)
        box.sigRangeChangedManually.connect(self._on_range_changed_manually)
        box.sigResized.connect(self._on_resized)

    def fit(self, x0: float, y0: float, width: float, height: float) -> None:
        """Show the rectangle whole in every visible view."""
        sizes = [(b.width(), b.height()) for b in self._visible()]
        if not sizes:
            sizes = [(b.width(), b.height()) for b in self._boxes if b.width() > 1 and b.height() > 1]
        if not sizes:
            sizes = [(1.0, 1.0)]
        self._centre = (x0 + width / 2, y0 + height / 2)
        self._units_per_pixel = max(max(width / w, height / h) for w, h in sizes)
        self._fit_rect = self._fitted = (x0, y0, width, height)
        self._apply_all()

    def refresh(self) -> None:
        """Apply the camera (or the fit) to every view again, e.g. to those of a tab just shown; a
        camera that shows all of the fitted rectangle gives way to the fit again."""
        if self._fit_rect is None and self._shows_all and self._fitted is not None:
            self.fit(*self._fitted)
        else:
            self._apply_all()

    def set_camera(self, centre: tuple[float, float], units_per_pixel: float) -> None:
        """Centre every view on `centre` (source coordinates) at `units_per_pixel` source pixels per
        screen pixel."""
        self._centre, self._units_per_pixel = centre, units_per_pixel
        self._fit_rect, self._shows_all = None, False
        self._apply_all()

    def one_to_one(self) -> None:
        """One source pixel per screen pixel, around the current centre."""
        if self._centre is None:
            return
        self._units_per_pixel = 1.0
        self._fit_rect, self._shows_all = None, False
        self._apply_all()

    def _visible(self) -> list[pg.ViewBox]:
        return [b for b in self._boxes if b.isVisible() and b.width() > 1 and b.height() > 1
                and b.scene() is not None and any(v.isVisible() for v in b.scene().views())]

    def _on_range_changed_manually(self, _mask: object) -> None:
        box = self.sender()
        if self._applying or not isinstance(box, pg.ViewBox) or box.width() <= 1:
            return
        rect = box.viewRect()
        centre, units = (rect.center().x(), rect.center().y()), rect.width() / box.width()
        limited = self._within_limits(box, units)
        if limited != units and self._centre is not None and self._units_per_pixel is not None:
            before = self._fit_units(box, self._visible_fits()) if self._fit_rect is not None \
                else self._units_per_pixel
            centre = _about_the_same_point(self._centre, before, centre, units, limited)
        self._centre, self._units_per_pixel = centre, limited
        self._fit_rect = None
        if self._fitted is not None:
            x0, y0, width, height = self._fitted
            self._shows_all = (rect.left() <= x0 and rect.top() <= y0 and rect.right() >= x0 + width
                               and rect.bottom() >= y0 + height)
        self._apply_all(skip=box if limited == units else None)  # a limit sets it back

    def _within_limits(self, box: pg.ViewBox, units: float) -> float:
        """`units` (source pixels per screen pixel of `box`) within MAX_MAGNIFICATION and ZOOM_OUT_LIMIT."""
        most = math.inf
        if self._fitted is not None:
            _x0, _y0, width, height = self._fitted
            most = ZOOM_OUT_LIMIT * max(width / box.width(), height / box.height())
        return min(max(units, 1 / MAX_MAGNIFICATION), max(most, 1 / MAX_MAGNIFICATION))

    def _on_resized(self, box: pg.ViewBox) -> None:
        if self._applying:
            return
        self._apply(box)
        if self._fit_rect is not None and not self._refit_pending:
            # the fits of views of a similar size may change with this one: redone once after the layout
            # pass, not for every view it resizes (a tab's first show resized 66, each refitting all 15)
            self._refit_pending = True
            QTimer.singleShot(0, self, self._refit)  # dropped if the linker goes first

    def _refit(self) -> None:
        self._refit_pending = False
        if self._fit_rect is not None:
            self._apply_all()

    def _own_fit(self, box: pg.ViewBox) -> float:
        """Source pixels per screen pixel at which `box` alone shows the fitted rectangle whole."""
        assert self._fit_rect is not None, "only while fitting"
        _x0, _y0, width, height = self._fit_rect
        return max(width / box.width(), height / box.height())

    def _visible_fits(self) -> dict[pg.ViewBox, float]:
        """The visible views' own fits, measured once per pass over the views: measuring them again for
        each view made a tab switch's resizes quadratic in the panels (80 ms with the Compare grid)."""
        return {b: self._own_fit(b) for b in self._visible()}

    def _fit_units(self, box: pg.ViewBox, visible: dict[pg.ViewBox, float]) -> float:
        """Source pixels per screen pixel of `box`'s fit: its own, or the largest among the `visible`
        views whose own fits are within SAME_FIT of each other and of it."""
        mine = self._own_fit(box)
        clusters: list[list[float]] = []  # ascending runs whose neighbours are within SAME_FIT
        for units in sorted([mine, *(u for b, u in visible.items() if b is not box)]):
            if clusters and units <= clusters[-1][-1] * (1 + SAME_FIT):
                clusters[-1].append(units)
            else:
                clusters.append([units])
        return next(max(run) for run in clusters if mine in run)

    def _apply_all(self, skip: pg.ViewBox | None = None) -> None:
        visible = self._visible_fits() if self._fit_rect is not None else {}
        for box in self._boxes:
            if box is not skip:
                self._apply(box, visible)

    def _apply(self, box: pg.ViewBox, visible: dict[pg.ViewBox, float] | None = None) -> None:
        if self._centre is None or self._units_per_pixel is None or box.width() <= 1 or box.height() <= 1:
            return
        (cx, cy), upp = self._centre, self._units_per_pixel
        if self._fit_rect is not None:  # this view's own fit: the rectangle whole, as large as it goes
            upp = self._fit_units(box, self._visible_fits() if visible is None else visible)
        half_w, half_h = upp * box.width() / 2, upp * box.height() / 2
        self._applying = True
        try:
            box.setRange(xRange=(cx - half_w, cx + half_w), yRange=(cy - half_h, cy + half_h), padding=0)
        finally:
            self._applying = False


def _about_the_same_point(centre: tuple[float, float], units: float, zoomed: tuple[float, float],
                          zoomed_units: float, limited_units: float) -> tuple[float, float]:
    """The centre that zooms from (`centre`, `units`) to `limited_units` about the same point as the zoom
    to (`zoomed`, `zoomed_units`) did: the point under the mouse stays under it when a limit cuts a wheel
    zoom short (keeping the zoomed centre made the image drift away from the mouse at each step)."""
    scale = zoomed_units / units
    if abs(scale - 1) < 1e-9:  # not a zoom: a pan keeps its own centre
        return zoomed
    kept = limited_units / units

    def anchored(before: float, after: float) -> float:
        anchor = (after - scale * before) / (1 - scale)  # the coordinate the zoom left in place
        return anchor + (before - anchor) * kept

    return anchored(centre[0], zoomed[0]), anchored(centre[1], zoomed[1])
