"""docs/audit.md and metrics.md: the embedding examples, run with a real OpenSSH client."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.docs.support import covers, source, start_script, stop, wait_for_port, with_ports
from tests.support.harness import OpenSSH
from tests.support.waiting import free_port

pytestmark = pytest.mark.interop


@covers("audit-observer")
def test_audit_observer(tmp_path: Path) -> None:
    port = free_port()
    proc = start_script(tmp_path, with_ports(source("audit-observer"), {2222: port}))
    try:
        wait_for_port(port, proc)
        result = OpenSSH(tmp_path, port).ssh("u", "hi", password="hello")
        assert result.stdout == b"hello\n"
        assert proc.stdout is not None
        # The first session is wait_for_port's probe, which never logs in.
        seen: dict[str, dict[str, object]] = {}
        while seen.get("session_end", {}).get("user") != "u":
            event = json.loads(proc.stdout.readline())
            seen[event["audit_event"]] = event
        assert seen["session_start"]["user"] == "u"
        assert seen["exec"]["command"] == "hi"
        assert seen["exit"]["exit_status"] == 0
    finally:
        stop(proc)


@covers("metrics-embedded")
def test_metrics_embedded(tmp_path: Path) -> None:
    port, http = free_port(), free_port()
    proc = start_script(tmp_path, with_ports(source("metrics-embedded"), {2222: port, 8080: http}))
    try:
        wait_for_port(port, proc)
        wait_for_port(http, proc)
        result = OpenSSH(tmp_path, port).ssh("u", "hi", password="hello")
        assert result.stdout == b"hello\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=30) as page:
            text = page.read().decode()
        samples = {
            (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "worker"))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("spindlex_commands_total", (("request", "exec"),))] == 1
        login = ("spindlex_logins_total", (("method", "password"), ("result", "success")))
        assert samples[login] == 1
    finally:
        stop(proc)
