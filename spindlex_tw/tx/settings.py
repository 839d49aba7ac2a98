"""Per-server settings: every limit in one place, each with OpenSSH-like defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from spindlex_tw.core.connection import ChannelLimits
from spindlex_tw.core.transport import TransportConfig
from spindlex_tw.core.userauth import AuthLimits
from spindlex_tw.tx.kerberos import GssapiSettings


@dataclass
class ServerSettings:
    transport: TransportConfig = field(default_factory=TransportConfig)
    auth: AuthLimits = field(default_factory=AuthLimits)
    channels: ChannelLimits = field(default_factory=ChannelLimits)
    login_grace: float = 30.0  # seconds from connect to a finished login
    rekey_seconds: float = 3600.0  # the server starts a key re-exchange this often
    hook_timeout: float = 30.0  # an application hook slower than this is a refusal
    max_connections: int = 100
    max_connections_per_source: int = 50  # one address may not hold every slot
    max_startups: tuple[int, int, int] = (10, 30, 100)  # OpenSSH's MaxStartups start:rate:full
    max_startups_per_source: int = 10  # unauthenticated connections one address may hold
    max_requests_per_second: float = 100.0  # global + channel requests and opens, averaged
    max_requests_burst: float = 500.0  # ... of which this many may come at once
    auth_failure_delay: float = 0.1  # a refused password answers no sooner than this (s)
    max_forward_listeners: int = 16  # tcpip-forward requests alive at once per connection
    forward_connect_timeout: float = 10.0  # seconds for a direct-tcpip connect
    # OpenSSH's GatewayPorts for tcpip-forward: "no" binds the loopback whatever the
    # client names, "clientspecified" what it names, "yes" every interface.
    gateway_ports: str = "no"
    allow_privileged_ports: bool = False  # may tcpip-forward listen on a port below 1024?
    gssapi: GssapiSettings | None = None  # Kerberos logins (gssapi-with-mic); None: off
