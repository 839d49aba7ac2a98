"""Per-packet cost of the sans-IO core, without sockets or clients: ``python -m bench.micro``.

The end-to-end figures of :mod:`bench.run` move with whatever else the
machine does; these isolate the data path that an optimisation changes.
``send`` pushes 256 KiB writes through a channel (ConnectionService output,
framing, padding, sealing, joining the output); ``receive`` feeds sealed
CHANNEL_DATA packets in 64 KiB reads through the decoder and the channel
input. Each reports microseconds per 32 KiB of channel data.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

from spindlex_tw.core import wire
from spindlex_tw.core.algorithms.ciphers import CIPHERS, make_opener, make_sealer
from spindlex_tw.core.algorithms.macs import MACS
from spindlex_tw.core.connection import ChannelLimits, ConnectionService
from spindlex_tw.core.packet import PacketDecoder, PacketEncoder
from spindlex_tw.core.transport import TransportConfig
from spindlex_tw.protocol import constants as c

CHUNK = 32 * 1024
WRITE = 256 * 1024
TOTAL = 64 * 1024 * 1024
COMBINATIONS = (
    ("aes128-gcm@openssh.com", None),
    ("chacha20-poly1305@openssh.com", None),
    ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
)


def _keys(cipher: str, mac: str | None) -> tuple[bytes, bytes, bytes]:
    spec = CIPHERS[cipher]
    mac_key = os.urandom(MACS[mac].key_size) if mac else b""
    return os.urandom(spec.key_size), os.urandom(spec.iv_size), mac_key


class _Transport:
    """What ConnectionService needs of ServerTransport: ``send`` frames and seals."""

    def __init__(self, encoder: PacketEncoder) -> None:
        self.encoder = encoder
        self.out: list[bytes | bytearray] = []
        self.closed = False

    def send(self, payload: bytes) -> None:
        self.out.append(self.encoder.encode(payload))

    def data_to_send(self) -> bytes:
        data = b"".join(self.out)
        self.out.clear()
        return data

    def unimplemented(self) -> list[object]:
        return []


def _open_channel(service: ConnectionService, window: int, max_packet: int) -> int:
    service.handle(
        c.SSH_MSG_CHANNEL_OPEN,
        wire.byte(c.SSH_MSG_CHANNEL_OPEN)
        + wire.string("session")
        + wire.uint32(0)
        + wire.uint32(window)
        + wire.uint32(max_packet),
    )
    return service.accept_open(0)


def send_cost(cipher: str, mac: str | None) -> float:
    key, iv, mac_key = _keys(cipher, mac)
    encoder = PacketEncoder(os.urandom)
    encoder.set_protection(make_sealer(cipher, mac, key, iv, mac_key))
    transport = _Transport(encoder)
    service = ConnectionService(transport, ChannelLimits())  # type: ignore[arg-type]
    local = _open_channel(service, 0xFFFFFFFF, CHUNK)  # OpenSSH's client: 32 KiB packets
    transport.out.clear()
    block = os.urandom(WRITE)
    start = time.perf_counter()
    for _ in range(TOTAL // WRITE):
        service.send_data(local, block)
        transport.data_to_send()
    return (time.perf_counter() - start) / (TOTAL // CHUNK) * 1e6


def receive_cost(cipher: str, mac: str | None, packet: int) -> float:
    key, iv, mac_key = _keys(cipher, mac)
    encoder = PacketEncoder(os.urandom)
    encoder.set_protection(make_sealer(cipher, mac, key, iv, mac_key))
    config = TransportConfig()
    room = packet + 1024  # message header and padding
    decoder = PacketDecoder(max(config.max_packet_length, room), max(config.max_payload, room))
    decoder.set_protection(make_opener(cipher, mac, key, iv, mac_key))
    limits = ChannelLimits(max_packet=max(ChannelLimits().max_packet, packet))
    service = ConnectionService(_Transport(PacketEncoder(os.urandom)), limits)  # type: ignore[arg-type]
    local = _open_channel(service, 0, CHUNK)
    data = os.urandom(packet)
    count = TOTAL // packet
    stream = b"".join(
        encoder.encode(wire.byte(c.SSH_MSG_CHANNEL_DATA) + wire.uint32(local) + wire.string(data))
        for _ in range(count)
    )
    reads = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    handle = service.handle
    start = time.perf_counter()
    for chunk in reads:
        decoder.feed(chunk)
        while (payload := decoder.next_payload()) is not None:
            for event in handle(payload[0], payload):
                service.consume(local, len(event.data))  # type: ignore[attr-defined]
    return (time.perf_counter() - start) / (TOTAL // CHUNK) * 1e6


def _best(measure: Callable[[], float], rounds: int) -> float:
    return min(measure() for _ in range(rounds))


def _one(direction: str, cipher: str, mac: str | None, packet: int, rounds: int) -> float:
    """One figure, measured in a fresh interpreter: the allocator's state left by
    an earlier measurement (big buffers freed or not) moves results by 2x."""
    argv = [sys.executable, "-m", "bench.micro", "--one", direction, cipher, mac or "-"]
    argv += ["--packet", str(packet), "--rounds", str(rounds)]
    return float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--packet",
        type=int,
        default=ChannelLimits().max_packet,
        help="data bytes per received CHANNEL_DATA (default: our max packet)",
    )
    parser.add_argument("--one", nargs=3, metavar=("DIRECTION", "CIPHER", "MAC"))
    args = parser.parse_args()
    if args.one:
        direction, cipher, mac_arg = args.one
        mac = None if mac_arg == "-" else mac_arg
        if direction == "send":
            print(_best(partial(send_cost, cipher, mac), args.rounds))
        else:
            print(_best(partial(receive_cost, cipher, mac, args.packet), args.rounds))
        return
    packet = args.packet
    print(f"| cipher | send us/32KiB | receive us/32KiB ({packet // 1024} KiB packets) |")
    print("|---|---:|---:|")
    for cipher, mac in COMBINATIONS:
        send = _one("send", cipher, mac, packet, args.rounds)
        receive = _one("receive", cipher, mac, packet, args.rounds)
        label = cipher.split("@")[0] + (f"+{mac.split('@')[0]}" if mac else "")
        print(f"| {label} | {send:.1f} | {receive:.1f} |")


if __name__ == "__main__":
    main()
