"""Results as a markdown table (one column per server, ratios against OpenSSH) and JSON."""

from __future__ import annotations

from dataclasses import dataclass

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
        Metric("small_put_s", "put -r 500 x 4 KiB, wall s", 2, False),
        Metric("small_put_cpu_s", "put -r 500 x 4 KiB, server CPU s", 2, False),
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
