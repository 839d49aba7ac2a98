"""Prometheus metrics, counted from the audit events (tx/audit.py).

:class:`ServerMetrics` is a twisted.logger observer: added to a log
publisher, it counts what the audit events report into its own
``prometheus_client`` registry. ``twistd spindlex --metrics ENDPOINT`` serves
that registry in the Prometheus text format (``prometheus_client.twisted``'s
resource); a program that embeds the server reads the same numbers by adding
a ``ServerMetrics`` to ``twisted.logger.globalLogPublisher`` and reading (or
serving) its ``registry``. docs/metrics.md lists the metrics.

``prometheus-client`` is the optional extra ``metrics``; it is imported only
when metrics are asked for.

With ``--workers N`` the processes share prometheus-client's multiprocess
mode: each writes its samples (labelled ``worker`` with its pid) to files in
one directory, made by the twistd process before it starts the copies, and
that process alone serves them all.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from twisted.application import service
from twisted.logger import Logger, globalLogPublisher
from twisted.python import usage
from twisted.python.failure import Failure

from spindlex_tw.twistd import siblings
from spindlex_tw.tx.audit import NAMESPACE

log = Logger(namespace="spindlex_tw.metrics")

#: Where prometheus-client's multiprocess mode keeps the samples of every process.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

INSTALL_HINT = "pip install 'spindlex-tw[metrics]' (or prometheus-client)"

#: Seconds buckets of the handshake and login latency histograms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def prometheus() -> Any:
    """The ``prometheus_client`` module, or a ``UsageError`` saying what to install."""
    try:
        import prometheus_client
    except ImportError:
        raise usage.UsageError(f"--metrics needs prometheus-client: {INSTALL_HINT}") from None
    return prometheus_client


def share_with_workers() -> str:
    """--workers: the directory every process writes its samples to (made by the first).

    Must run before prometheus-client is imported, which reads it then; the
    copies inherit it through the environment.
    """
    if not siblings.is_worker():
        os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="spindlex-metrics-")
    return os.environ[MULTIPROCESS_ENV]


def metrics_option(description: str, workers: int) -> tuple[str, Any, str | None]:
    """``--metrics``: the endpoint, and with ``--workers`` the directory they share.

    A missing library or a bad endpoint string is a ``UsageError``, said
    before anything starts.
    """
    from twisted.internet import endpoints, reactor

    shared = share_with_workers() if workers > 1 else None
    try:
        prometheus()
        return description, endpoints.serverFromString(reactor, description), shared
    except usage.UsageError:
        _discard(shared)
        raise
    except Exception as exc:
        _discard(shared)
        raise usage.UsageError(
            f"--metrics {description!r} is not a server endpoint: {exc}"
        ) from exc


def _discard(shared: str | None) -> None:
    if shared is not None and not siblings.is_worker():
        shutil.rmtree(shared, ignore_errors=True)


class ServerMetrics:
    """Counters, gauges and histograms fed by audit events; call it as a log observer.

    ``registry`` is a ``prometheus_client.CollectorRegistry`` of its own (so
    several servers in one program, or a test, never share counts) unless one
    is given. ``worker`` labels every sample with the process it comes from.
    """

    def __init__(self, registry: Any = None, worker: str | None = None) -> None:
        prom = prometheus()
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        self.worker = worker if worker is not None else str(os.getpid())
        labels = ["worker"]

        def counter(name: str, text: str, *extra: str) -> Any:
            return prom.Counter(name, text, [*labels, *extra], registry=self.registry)

        self.connections = counter("spindlex_connections", "Connections accepted.")
        self.current = prom.Gauge(
            "spindlex_connections_current",
            "Connections open now.",
            labels,
            registry=self.registry,
            multiprocess_mode="livesum",  # only used with --workers
        )
        self.refused = counter(
            "spindlex_connections_refused", "Connections refused at accept.", "reason"
        )
        self.logins = counter(
            "spindlex_logins", "Login attempts by method and result.", "method", "result"
        )
        self.bytes_in = counter(
            "spindlex_received_bytes", "Bytes received on connections that ended."
        )
        self.bytes_out = counter("spindlex_sent_bytes", "Bytes sent on connections that ended.")
        self.sftp = counter(
            "spindlex_sftp_operations", "SFTP operations by type and status.", "operation", "status"
        )
        self.sftp_read = counter("spindlex_sftp_read_bytes", "Bytes read from closed SFTP files.")
        self.sftp_written = counter(
            "spindlex_sftp_written_bytes", "Bytes written to closed SFTP files."
        )
        self.commands = counter(
            "spindlex_commands", "exec and shell requests started.", "request"
        )
        self.forwards = counter("spindlex_forwards", "Port forwards by kind.", "kind", "result")

        def histogram(name: str, text: str) -> Any:
            return prom.Histogram(
                name, text, labels, buckets=LATENCY_BUCKETS, registry=self.registry
            )

        self.handshake = histogram(
            "spindlex_handshake_seconds", "From connect to the first key exchange's end."
        )
        self.login = histogram("spindlex_login_seconds", "From connect to a successful login.")
        # This process's samples exist from the start, at zero: a scrape shows
        # every process, and a rate() over the first event is not lost.
        for metric in (
            self.connections,
            self.current,
            self.bytes_in,
            self.bytes_out,
            self.sftp_read,
            self.sftp_written,
            self.handshake,
            self.login,
        ):
            metric.labels(self.worker)
        self._handlers = {
            "connect": self._connect,
            "connection_refused": self._connection_refused,
            "key_exchange": self._key_exchange,
            "session_start": self._session_start,
            "auth_failed": self._auth_failed,
            "session_end": self._session_end,
            "sftp": self._sftp,
            "exec": self._exec,
            "forward": self._forward,
        }

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("log_namespace") != NAMESPACE:
            return
        handler = self._handlers.get(event.get("audit_event", ""))
        if handler is not None:
            handler(event)

    # --- one method per audit event -------------------------------------------------------------

    def _connect(self, event: dict[str, Any]) -> None:
        self.connections.labels(self.worker).inc()
        self.current.labels(self.worker).inc()

    def _connection_refused(self, event: dict[str, Any]) -> None:
        self.refused.labels(self.worker, event["reason"]).inc()

    def _key_exchange(self, event: dict[str, Any]) -> None:
        self.handshake.labels(self.worker).observe(event["seconds"])

    def _session_start(self, event: dict[str, Any]) -> None:
        self.logins.labels(self.worker, event["method"], "success").inc()
        self.login.labels(self.worker).observe(event["login_seconds"])

    def _auth_failed(self, event: dict[str, Any]) -> None:
        self.logins.labels(self.worker, event["method"] or "none", "failure").inc()

    def _session_end(self, event: dict[str, Any]) -> None:
        self.current.labels(self.worker).dec()
        self.bytes_in.labels(self.worker).inc(event["bytes_in"])
        self.bytes_out.labels(self.worker).inc(event["bytes_out"])

    def _sftp(self, event: dict[str, Any]) -> None:
        self.sftp.labels(self.worker, event["operation"], event["status"]).inc()
        if event["operation"] == "close":
            self.sftp_read.labels(self.worker).inc(event["bytes_read"] or 0)
            self.sftp_written.labels(self.worker).inc(event["bytes_written"] or 0)

    def _exec(self, event: dict[str, Any]) -> None:
        self.commands.labels(self.worker, event["request"]).inc()

    def _forward(self, event: dict[str, Any]) -> None:
        result = "ok" if event["result"] == "ok" else "refused"
        self.forwards.labels(self.worker, event["kind"], result).inc()


class MetricsService(service.Service):
    """Counts the audit events while it runs and serves them on ``endpoint`` over HTTP.

    ``shared`` is the multiprocess directory of ``--workers``: a copy only
    counts into it, the first process serves what every process counted.
    """

    def __init__(
        self,
        description: str,
        endpoint: Any,
        shared: str | None = None,
        publisher: Any = globalLogPublisher,
    ) -> None:
        self.description = description
        self.endpoint = endpoint
        self.shared = shared
        self.publisher = publisher
        self.metrics = ServerMetrics()
        self.http_port: Any = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self.publisher.addObserver(self.metrics)
        if self.shared is not None and siblings.is_worker():
            return
        from prometheus_client.twisted import MetricsResource
        from twisted.web.resource import Resource
        from twisted.web.server import Site

        registry = self.metrics.registry
        if self.shared is not None:
            prom = prometheus()
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = prom.CollectorRegistry()
            MultiProcessCollector(registry, path=self.shared)
        root = Resource()
        resource: Any = MetricsResource(registry=registry)
        root.putChild(b"metrics", resource)
        failures: list[Failure] = []
        listening = self.endpoint.listen(Site(root))
        listening.addCallbacks(self._listening, failures.append)
        # TCP and UNIX endpoints bind at once: a busy port stops the start-up
        # in one line, as a bad option does.
        if failures:
            error = failures[0].value
            cause = getattr(error, "socketError", None) or error
            reason = getattr(cause, "strerror", None) or str(cause)
            # What twistd spindlex says of a bad option (service.Options): one line, status 2.
            stream = sys.__stderr__ or sys.stderr
            stream.write(f"twistd spindlex: error: --metrics {self.description}: {reason}\n")
            stream.flush()
            raise SystemExit(2)

    def _listening(self, port: Any) -> None:
        self.http_port = port
        address = port.getHost()
        log.info(
            "metrics on http://{host}:{port}/metrics ({endpoint})",
            host=getattr(address, "host", "?"),
            port=getattr(address, "port", "?"),
            endpoint=self.description,
            event="metrics_listening",
        )

    def stopService(self) -> Any:
        super().stopService()
        self.publisher.removeObserver(self.metrics)
        if self.shared is not None and not siblings.is_worker():
            # Copies still stopping may write on: to files unlinked, which is harmless.
            _discard(self.shared)
        port, self.http_port = self.http_port, None
        return port.stopListening() if port is not None else None
