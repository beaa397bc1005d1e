"""Charts for rollouts, drawn with QPainter: pass@k against k, accuracy with its interval.

Why QPainter and not a plotting library: these are two small charts of at most a few dozen
points, redrawn as rollouts finish. QPainter is already here (no install: QtCharts is in
PySide6-Addons, pyqtgraph and matplotlib are further downloads, matplotlib tens of MB),
draws in well under a millisecond, follows the app's palette in light and dark mode, and
the same paint code writes the SVG (QSvgGenerator) and the PNG export.

A chart is a picture, so each one also says its figures in words: its accessible name is
its title and its accessible description lists the values (pass@k, each bar's accuracy
and interval, the best-of-n curve), kept up to date with the data, for a screen reader.
A chart takes Tab focus (with a visible frame) so a keyboard user can reach and hear it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QLocale, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop_app.text.i18n import _, number
from desktop_app.ui import a11y, theme

MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 42, 12, 24, 34


@dataclass(frozen=True)
class Bar:
    """One bar of an accuracy chart: a label, the accuracy and its interval."""

    label: str
    value: float
    low: float
    high: float


class Chart(QWidget):
    """A titled chart with a 0–1 y axis; subclasses draw the data in :meth:`draw_data`."""

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = title
        self.setMinimumSize(240, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # reachable, so it can be heard
        self.describe_data()

    def sizeHint(self) -> QSize:
        return QSize(360, 220)

    def describe_data(self) -> None:
        """The chart's name (its title) and its figures in words, for a screen reader;
        called whenever the data changes."""
        a11y.describe(self, _("Chart: {title}").format(title=self.title),
                      self.description() or _("No data yet."))

    def description(self) -> str:
        """The chart's figures in words ('' while there are none)."""
        return ""

    def paintEvent(self, _event: Any) -> None:
        painter = QPainter(self)
        try:
            self.render_to(painter, QRectF(self.rect()))
            if self.hasFocus():  # a visible focus: a dotted frame in the text colour
                painter.setPen(QPen(self.palette().text().color(), 2, Qt.PenStyle.DotLine))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(QRectF(self.rect()).adjusted(1, 1, -1, -1))
        finally:
            painter.end()

    def focusInEvent(self, event: Any) -> None:
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event: Any) -> None:
        super().focusOutEvent(event)
        self.update()

    def render_to(self, painter: QPainter, area: QRectF) -> None:
        """Draw the whole chart into ``area`` (the widget, a PNG or an SVG)."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        foreground = QColor(theme.muted_fg())
        font = QFont(self.font())
        painter.setFont(font)
        painter.setPen(QPen(self.palette().text().color()))
        metrics = painter.fontMetrics()  # margins grow with the font (presentation mode)
        top = max(MARGIN_TOP, metrics.height() + 10)
        bottom = max(MARGIN_BOTTOM, 2 * metrics.height() + 6)
        left = max(MARGIN_LEFT, self.margin_left(metrics))
        right = max(MARGIN_RIGHT, self.margin_right(metrics))
        painter.drawText(QRectF(area.left(), area.top() + 2, area.width(), top - 4),
                         Qt.AlignmentFlag.AlignCenter, self.title)
        plot = QRectF(area.left() + left, area.top() + top,
                      max(10.0, area.width() - left - right),
                      max(10.0, area.height() - top - bottom))
        painter.setPen(QPen(foreground, 1))
        for step in range(5):  # y grid: 0, 0.25, … 1
            y = plot.bottom() - plot.height() * step / 4
            painter.setPen(QPen(QColor(theme.border_color()), 1, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(QPen(foreground))
            painter.drawText(QRectF(area.left(), y - metrics.height() / 2, left - 6,
                                    metrics.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             self.y_label(step / 4))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())
        self.draw_data(painter, plot, foreground)

    def margin_left(self, metrics: Any) -> int:
        """Room for the left axis's labels."""
        return int(metrics.horizontalAdvance(_fraction(0.75))) + 12

    def margin_right(self, metrics: Any) -> int:
        return MARGIN_RIGHT

    def y_label(self, fraction: float) -> str:
        """The left axis's label at ``fraction`` of its height (0 to 1)."""
        return _fraction(fraction)

    def draw_data(self, painter: QPainter, plot: QRectF, foreground: QColor) -> None:
        raise NotImplementedError

    def export(self, path: str | Path, size: QSize | None = None) -> Path:
        """Save as SVG (suffix .svg) or PNG (any other name gets .png); returns the path."""
        target = Path(path)
        if target.suffix.lower() not in (".svg", ".png"):
            target = target.with_name(target.name + ".png")
        size = size or QSize(max(self.width(), 480), max(self.height(), 300))
        if target.suffix.lower() == ".svg":
            from PySide6.QtSvg import QSvgGenerator

            generator = QSvgGenerator()
            generator.setFileName(str(target))
            generator.setSize(size)
            generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
            generator.setTitle(self.title)
            generator.setDescription(self.accessibleDescription())
            painter = QPainter(generator)
        else:
            image = QImage(size, QImage.Format.Format_ARGB32)
            image.fill(self.palette().window().color())
            painter = QPainter(image)
        try:
            self.render_to(painter, QRectF(0, 0, size.width(), size.height()))
        finally:
            painter.end()
        if target.suffix.lower() != ".svg" and not image.save(str(target)):
            raise OSError(_("could not write {path}").format(path=target))
        return target


class PassAtKChart(Chart):
    """pass@k for k = 1 … n on a log₂ axis: how fast "one of k is right" climbs."""

    def __init__(self, parent: QWidget | None = None):
        self.points: list[tuple[int, float]] = []
        self.summary = ""  # more in words for the description (the majority vote, counts)
        super().__init__("pass@k", parent)

    def set_points(self, points: Sequence[tuple[int, float]], summary: str = "") -> None:
        """pass@k for each k; ``summary``: what else a listener should hear with them."""
        self.points = list(points)
        self.summary = summary
        self.describe_data()
        self.update()

    def description(self) -> str:
        values = ", ".join(_("pass@{k}: {value}").format(k=k, value=number(value, 2))
                           for k, value in self.points)
        if not values:
            return self.summary
        text = _("Chance that at least one of k rollouts is correct: {values}.").format(
            values=values)
        return f"{text} {self.summary}".strip()

    def draw_data(self, painter: QPainter, plot: QRectF, foreground: QColor) -> None:
        if not self.points:
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, _("no rollout checked yet"))
            return
        top = max(k for k, _value in self.points)
        span = math.log2(top) if top > 1 else 1.0

        def at(k: int, value: float) -> QPointF:
            x = plot.left() + (math.log2(k) / span if top > 1 else 0.5) * plot.width()
            return QPointF(x, plot.bottom() - value * plot.height())

        painter.setPen(QPen(foreground))
        height = painter.fontMetrics().height()  # grows with the font (presentation mode)
        for k, _value in self.points:  # x ticks: the k values
            point = at(k, 0)
            painter.drawText(QRectF(point.x() - 2 * height, plot.bottom() + 2, 4 * height,
                                    height), Qt.AlignmentFlag.AlignCenter, str(k))
        painter.drawText(QRectF(plot.left(), plot.bottom() + height + 4, plot.width(), height),
                         Qt.AlignmentFlag.AlignCenter, _("k (rollouts drawn)"))
        colour = QColor(theme.ok_color())
        path = QPainterPath(at(*self.points[0]))
        for k, value in self.points[1:]:
            path.lineTo(at(k, value))
        painter.setPen(QPen(colour, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        painter.setBrush(colour)
        for k, value in self.points:
            painter.drawEllipse(at(k, value), 3.5, 3.5)


class AccuracyChart(Chart):
    """Accuracy per row (model × problem, or per thinking budget) with 95 % whiskers."""

    def __init__(self, title: str | None = None, parent: QWidget | None = None):
        self.bars: list[Bar] = []
        super().__init__(title or _("accuracy (95% Wilson interval)"), parent)

    def set_bars(self, bars: Sequence[Bar]) -> None:
        self.bars = list(bars)
        self.describe_data()
        self.update()

    def description(self) -> str:
        return " ".join(_("{label}: accuracy {value}, 95% interval {low} to {high}.").format(
            label=bar.label, value=number(bar.value, 2), low=number(bar.low, 2),
            high=number(bar.high, 2)) for bar in self.bars)

    def draw_data(self, painter: QPainter, plot: QRectF, foreground: QColor) -> None:
        if not self.bars:
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, _("no result yet"))
            return
        slot = plot.width() / len(self.bars)
        width = max(2.0, min(slot * 0.6, 72.0))
        fill = QColor(theme.ok_color())
        fill.setAlpha(170)
        for index, bar in enumerate(self.bars):
            centre = plot.left() + slot * (index + 0.5)
            top = plot.bottom() - bar.value * plot.height()
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRect(QRectF(centre - width / 2, top, width, plot.bottom() - top))
            painter.setPen(QPen(foreground, 1.5))
            low = plot.bottom() - bar.low * plot.height()
            high = plot.bottom() - bar.high * plot.height()
            painter.drawLine(QPointF(centre, low), QPointF(centre, high))
            for y in (low, high):
                painter.drawLine(QPointF(centre - width / 4, y), QPointF(centre + width / 4, y))
            if slot >= 28:
                painter.drawText(QRectF(centre - slot / 2, plot.bottom() + 4, slot, 28),
                                 Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                                 painter.fontMetrics().elidedText(
                                     bar.label, Qt.TextElideMode.ElideMiddle, int(slot) - 2))


def _number(value: float) -> str:
    """An axis value to two decimals (the locale's way), with a real minus sign."""
    return number(value, 2).replace("-", "−") if abs(value) >= 0.005 else "0"


def _fraction(value: float) -> str:
    """A 0–1 axis label, as short as it can be: 0, 0.25, 0.5 (0,25 in German)."""
    return QLocale().toString(float(value), "g", 6)


def _span(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < 1e-9:
        return low - 0.5, high + 0.5
    pad = (high - low) * 0.08
    return low - pad, high + pad


class GoodhartChart(Chart):
    """Best-of-n against a reward model, n on a log₂ axis: the reward model's score of its
    pick (left axis) and the gold's verdict on it (right axis: the class's strength, or the
    share right by the key). Reward climbing while gold stalls or falls: over-optimisation."""

    def __init__(self, parent: QWidget | None = None):
        self.points: list[tuple[int, float, float]] = []
        self.gold_name = _("gold: the class")
        self.key = False
        super().__init__(_("best-of-n: reward model vs gold"), parent)

    def set_curve(self, points: Sequence[tuple[int, float, float]], *, key: bool) -> None:
        """``(n, reward, gold)`` points; ``key``: the gold is the key's share right (0–1)."""
        self.points = list(points)
        self.key = key
        self.gold_name = _("gold: the key (share right)") if key \
            else _("gold: the class (strength)")
        self.describe_data()
        self.update()

    def description(self) -> str:
        return " ".join(_("Best of {n}: reward {reward}, gold {gold}.").format(
            n=n, reward=_number(reward), gold=_number(gold)) for n, reward, gold in self.points)

    def _reward_span(self) -> tuple[float, float]:
        return _span([r for _, r, _ in self.points]) if self.points else (0.0, 1.0)

    def _gold_span(self) -> tuple[float, float]:
        if self.key or not self.points:
            return 0.0, 1.0
        return _span([g for _, _, g in self.points])

    def margin_left(self, metrics: Any) -> int:
        return int(metrics.horizontalAdvance("−00.00")) + 12

    def margin_right(self, metrics: Any) -> int:
        return int(metrics.horizontalAdvance("−00.00")) + 12

    def y_label(self, fraction: float) -> str:
        low, high = self._reward_span()
        return _number(low + (high - low) * fraction)

    def draw_data(self, painter: QPainter, plot: QRectF, foreground: QColor) -> None:
        if not self.points:
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter,
                             _("vote, then train the reward model"))
            return
        top = max(n for n, _reward, _gold in self.points)
        span = math.log2(top) if top > 1 else 1.0
        reward_low, reward_high = self._reward_span()
        gold_low, gold_high = self._gold_span()

        def x_of(n: int) -> float:
            return plot.left() + (math.log2(n) / span if top > 1 else 0.5) * plot.width()

        def y_of(value: float, low: float, high: float) -> float:
            return plot.bottom() - (value - low) / (high - low) * plot.height()

        painter.setPen(QPen(foreground))
        for n, _reward, _gold in self.points:
            painter.drawText(QRectF(x_of(n) - 20, plot.bottom() + 2, 40,
                                    painter.fontMetrics().height()),
                             Qt.AlignmentFlag.AlignCenter, str(n))
        height = painter.fontMetrics().height()
        painter.drawText(QRectF(plot.left(), plot.bottom() + height + 4, plot.width(), height),
                         Qt.AlignmentFlag.AlignCenter,
                         _("n (answers the reward model picks from)"))
        gold_colour = QColor(theme.ok_color())
        reward_colour = QColor(theme.warn_color())
        painter.setPen(QPen(gold_colour))
        painter.drawLine(plot.bottomRight(), plot.topRight())
        for step in range(5):  # the right axis: the gold's values
            y = plot.bottom() - plot.height() * step / 4
            value = gold_low + (gold_high - gold_low) * step / 4
            height = painter.fontMetrics().height()
            painter.drawText(QRectF(plot.right() + 6, y - height / 2, plot.width(), height),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             number(value, 2) if self.key else _number(value))
        series = ((reward_colour, [(n, r) for n, r, _ in self.points], reward_low, reward_high,
                   _("reward model's score of its pick")),
                  (gold_colour, [(n, g) for n, _, g in self.points], gold_low, gold_high,
                   self.gold_name))
        metrics = painter.fontMetrics()
        legend_y = plot.top() + 4
        for colour, values, low, high, _name in series:
            path = QPainterPath(QPointF(x_of(values[0][0]), y_of(values[0][1], low, high)))
            for n, value in values[1:]:
                path.lineTo(QPointF(x_of(n), y_of(value, low, high)))
            painter.setPen(QPen(colour, 2.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            painter.setBrush(colour)
            for n, value in values:
                painter.drawEllipse(QPointF(x_of(n), y_of(value, low, high)), 3.5, 3.5)
        # the legend on a backing over the lines' top-left corner, so both stay readable
        width = max(metrics.horizontalAdvance(f"— {name}") for *_, name in series) + 12
        backing = QColor(self.palette().window().color())
        backing.setAlpha(225)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(backing)
        painter.drawRect(QRectF(plot.left() + 2, legend_y - 2, width,
                                2 * (metrics.height() + 2) + 4))
        for colour, _values, _low, _high, name in series:
            painter.setPen(QPen(colour))
            painter.drawText(QRectF(plot.left() + 8, legend_y, plot.width() - 16,
                                    metrics.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             f"— {name}")
            legend_y += metrics.height() + 2
