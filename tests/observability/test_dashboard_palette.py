"""The dashboard's deployment colours are told apart at a glance: every pair of the palette differs
clearly in CIELAB (the demo's eight deployments once had two near-identical yellows), and every
colour stands out from the page's dark panels."""

from __future__ import annotations

import itertools
import math
import re

from tests.conftest import ROOT

JS = ROOT / "gateway" / "static" / "dashboard.js"
CSS = ROOT / "gateway" / "static" / "dashboard.css"
MIN_PAIR_DELTA_E = 30.0  # CIE76; ~2.3 is "just noticeable", the old palette's closest pair was 10
MIN_BACKGROUND_DELTA_E = 55.0


def _lab(hex_colour: str) -> tuple[float, float, float]:
    """sRGB hex -> CIELAB (D65)."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(hex_colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def _delta_e(a: str, b: str) -> float:
    return math.dist(_lab(a), _lab(b))


def _palette() -> list[str]:
    body = re.search(r"const PALETTE = \[(.*?)\];", JS.read_text(), re.S)
    assert body, "PALETTE not found in dashboard.js"
    return re.findall(r'"(#[0-9a-fA-F]{6})"', body.group(1))


def test_the_lab_conversion_is_right() -> None:
    # Reference values (D65): white, sRGB red and green.
    assert all(abs(a - b) < 0.1 for a, b in zip(_lab("#ffffff"), (100.0, 0.0, 0.0)))
    assert all(abs(a - b) < 0.5 for a, b in zip(_lab("#00ff00"), (87.73, -86.18, 83.18)))
    assert all(abs(a - b) < 0.5 for a, b in zip(_lab("#ff0000"), (53.24, 80.09, 67.20)))


def test_every_pair_of_colours_is_well_apart() -> None:
    palette = _palette()
    assert len(palette) >= 8 and len(set(palette)) == len(palette)  # the demo catalog has eight
    closest = min(itertools.combinations(palette, 2), key=lambda p: _delta_e(*p))
    assert _delta_e(*closest) >= MIN_PAIR_DELTA_E, closest


def test_every_colour_stands_out_from_the_panels() -> None:
    panel = re.search(r"--panel:\s*(#[0-9a-fA-F]{6})", CSS.read_text()).group(1)
    faint = [c for c in _palette() if _delta_e(c, panel) < MIN_BACKGROUND_DELTA_E]
    assert not faint, faint
