"""Results as a markdown table (one column per server, ratios against OpenSSH) and a chart."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.s3 import METRIC_ROWS as S3_ROWS
from bench.scenarios import CIPHERS

BASELINE = "openssh"


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    digits: int
    higher_is_better: bool


def _metrics() -> list[Metric]:
    rows = []
    for direction in ("get", "put"):
        for algs in CIPHERS:
            rows.append(
                Metric(
                    f"{direction}_{algs.label}_mibs",
                    f"SFTP {direction} {algs.label}, MiB/s",
                    0,
                    True,
                )
            )
    for direction in ("get", "put"):
        for algs in CIPHERS:
            rows.append(
                Metric(
                    f"{direction}_{algs.label}_cpu_gib",
                    f"SFTP {direction} {algs.label}, server CPU s/GiB",
                    2,
                    False,
                )
            )
    rows += [
        Metric("cold_get_mibs", "SFTP get aes128-gcm, not cached (disk), MiB/s", 0, True),
        Metric("cold_get_cpu_gib", "SFTP get, not cached (disk), server CPU s/GiB", 2, False),
        Metric("small_put_s", "put -r 500 x 4 KiB, wall s", 2, False),
        Metric("small_put_cpu_s", "put -r 500 x 4 KiB, server CPU s", 2, False),
        Metric("small_get_s", "get -r 500 x 4 KiB, wall s", 2, False),
        Metric("small_get_cpu_s", "get -r 500 x 4 KiB, server CPU s", 2, False),
        Metric("ls_s", "ls -l of 5,000 entries, wall s", 2, False),
        Metric("ls_cpu_s", "ls -l of 5,000 entries, server CPU s", 2, False),
        Metric("login_ssh_per_s", "ssh true, sequential, logins/s", 1, True),
        Metric("login_ssh_cpu_ms", "ssh true, server CPU ms/login", 1, False),
        Metric("login_sftp_per_s", "sftp pwd, sequential, logins/s", 1, True),
        Metric("login_sftp_cpu_ms", "sftp pwd, server CPU ms/login", 1, False),
        Metric("login_async_per_s", "AsyncSSH client, 10 at a time, logins/s", 1, True),
        Metric("login_async_cpu_ms", "AsyncSSH client, server CPU ms/login", 1, False),
        Metric("login_par_per_s", "ssh true, 10 at a time, logins/s", 1, True),
        Metric("login_par_cpu_ms", "ssh true 10 at a time, server CPU ms/login", 1, False),
        Metric("login_pw_per_s", "ssh true, PBKDF2 password, 10 at a time, logins/s", 1, True),
        Metric("login_pw_cpu_ms", "ssh true, PBKDF2 password, server CPU ms/login", 1, False),
        Metric("idle_kib_per_conn", "idle connection, PSS KiB each", 1, False),
        Metric("idle_cpu_ms_per_s", "200 idle connections, server CPU ms/s", 1, False),
    ]
    for direction in ("get", "put"):
        what = f"16 sftp {direction}s at once"
        rows += [
            Metric(f"conc_{direction}_mibs", f"{what}, total MiB/s", 0, True),
            Metric(f"conc_{direction}_fairness", f"{what}, slowest/fastest client", 2, False),
            Metric(f"conc_{direction}_cpu_gib", f"{what}, server CPU s/GiB", 2, False),
            Metric(f"conc_{direction}_login_p50_ms", f"{what}, ssh true login p50 ms", 0, False),
            Metric(f"conc_{direction}_login_p99_ms", f"{what}, ssh true login p99 ms", 0, False),
        ]
    rows += [
        Metric("scale_connections", "idle connections held at scale", 0, True),
        Metric("scale_logins_per_s", "... opened and authenticated, logins/s", 0, True),
        Metric("scale_login_cpu_ms", "... server CPU ms/login", 2, False),
        Metric("scale_kib_per_conn", "... PSS KiB per connection", 1, False),
        Metric("scale_idle_cpu_ms_per_s", "... idle, server CPU ms/s", 1, False),
    ]
    rows += [Metric(*row) for row in S3_ROWS]
    return rows


METRICS = _metrics()


def _cell(value: float | None, base: float | None, digits: int) -> str:
    if value is None:
        return "-"
    text = f"{value:,.{digits}f}"
    if base is not None and base > 0 and value > 0:
        text += f" ({value / base:.2f}x)"
    return text


def markdown(results: dict[str, dict[str, float]]) -> str:
    servers = list(results)
    lines = [
        "| measurement | " + " | ".join(servers) + " |",
        "|---|" + "---:|" * len(servers),
    ]
    for metric in METRICS:
        if not any(metric.key in results[s] for s in servers):
            continue
        base = results.get(BASELINE, {}).get(metric.key)
        better = "higher" if metric.higher_is_better else "lower"
        cells = [_cell(results[s].get(metric.key), base, metric.digits) for s in servers]
        lines.append(f"| {metric.label} ({better} is better) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- the same figures as a chart -----------------------------------------------------------

_ROW = 16  # pixels per bar
_LABEL = 330  # width of the label column
_HALF = 220  # pixels from 1x to the scale's end (8x better, or 8x worse)
_SCALE = 3.0  # log2 of the scale's end
_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(results: dict[str, dict[str, float]]) -> str:
    """A bar chart of every server's figures against OpenSSH's, better to the right.

    One group per measurement that OpenSSH has, one bar per other server. A
    bar is how many times better than OpenSSH the server did (its rate over
    OpenSSH's, or OpenSSH's time, CPU or memory over its own), on a log scale
    from 8x worse to 8x better; bars beyond are cut at the edge.
    """
    others = [s for s in results if s != BASELINE]
    groups = []
    for metric in METRICS:
        base = results.get(BASELINE, {}).get(metric.key)
        if not base:
            continue
        bars = []
        for server in others:
            value = results[server].get(metric.key)
            if value:
                ratio = value / base if metric.higher_is_better else base / value
                bars.append((server, ratio))
        if bars:
            groups.append((metric.label, bars))
    height = sum(_ROW * (len(bars) + 1) for _, bars in groups) + 3 * _ROW
    width = _LABEL + 2 * _HALF + 80
    middle = _LABEL + _HALF
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{middle}" y="12" text-anchor="middle">times better than OpenSSH '
        "(log scale; right is better)</text>",
    ]
    for step in range(-int(_SCALE), int(_SCALE) + 1):
        x = middle + step / _SCALE * _HALF
        parts.append(
            f'<line x1="{x:.1f}" y1="{_ROW}" x2="{x:.1f}" y2="{height - _ROW}" '
            f'stroke="{"#000" if step == 0 else "#ddd"}"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle">{2.0**step:g}x</text>'
        )
    y = 2 * _ROW
    for label, bars in groups:
        parts.append(f'<text x="4" y="{y + 11}" font-weight="bold">{_escape(label)}</text>')
        y += _ROW
        for server, ratio in bars:
            colour = _COLOURS[others.index(server) % len(_COLOURS)]
            reach = max(-_SCALE, min(_SCALE, math.log2(ratio))) / _SCALE * _HALF
            left = min(middle, middle + reach)
            parts.append(f'<text x="14" y="{y + 11}">{_escape(server)}</text>')
            parts.append(
                f'<rect x="{left:.1f}" y="{y + 2}" width="{abs(reach):.1f}" '
                f'height="{_ROW - 4}" fill="{colour}"><title>{ratio:.2f}x</title></rect>'
            )
            parts.append(f'<text x="{middle + _HALF + 8}" y="{y + 11}">{ratio:.2f}x</text>')
            y += _ROW
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
