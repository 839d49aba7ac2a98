"""bench.report: the table and the chart say the same thing, better to the right."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bench import report

SVG = "{http://www.w3.org/2000/svg}"

RESULTS = {
    "openssh": {"get_aes128-gcm_mibs": 500.0, "small_put_cpu_s": 0.10},
    "asyncssh": {"get_aes128-gcm_mibs": 250.0, "small_put_cpu_s": 0.20},
    "spindlex_tw": {"get_aes128-gcm_mibs": 1000.0, "small_put_cpu_s": 0.05},
}


def test_table_ratios_are_against_openssh() -> None:
    table = report.markdown(RESULTS)
    assert "| 250 (0.50x) | 1,000 (2.00x) |" in table
    assert "| 0.20 (2.00x) | 0.05 (0.50x) |" in table


def test_chart_bars_point_right_when_better() -> None:
    root = ET.fromstring(report.svg(RESULTS))
    rects = list(root.iter(f"{SVG}rect"))
    titles = [rect.findtext(f"{SVG}title") for rect in rects]
    # Per measurement, AsyncSSH then spindlex_tw: twice the rate and half the
    # CPU are both 2x better; half the rate and twice the CPU both 0.5x.
    assert titles == ["0.50x", "2.00x", "0.50x", "2.00x"]
    bars = dict(zip(titles, rects, strict=True))
    middle = report._LABEL + report._HALF
    assert float(bars["2.00x"].get("x", "")) == middle
    better_width = float(bars["2.00x"].get("width", ""))
    worse = bars["0.50x"]
    assert float(worse.get("x", "")) + float(worse.get("width", "")) == middle
    assert better_width == float(worse.get("width", "")) > 0
