"""Bad input at the transport layer gets the protocol's answer; the server lives on."""

from __future__ import annotations

import struct

import pytest

from spindlex_tw.core import wire
from spindlex_tw.protocol import constants as c
from tests.support.harness import ServerProcess
from tests.support.rawssh import RawClient


def still_serving(server: ServerProcess) -> None:
    """A well-behaved client still logs in after the abuse."""
    client = RawClient(server.port)
    client.login()
    client.close()
    assert server.alive()
    assert "Traceback" not in server.log()


def test_overlong_identification(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.send_raw(b"SSH-2.0-" + b"x" * 300 + b"\r\n")
    answer = client.read_all()
    assert answer.startswith(b"SSH-2.0-spindlex_tw")
    assert answer.endswith(b"Invalid SSH identification string.\r\n")
    still_serving(server)


def test_too_many_lines_before_identification(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.send_raw(b"hello there\r\n" * 21)
    assert client.read_all().endswith(b"Invalid SSH identification string.\r\n")
    still_serving(server)


def test_twenty_lines_before_identification_are_fine(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.send_raw(b"banner line\r\n" * 20)
    client.handshake()
    assert client.request_service()[0] == c.SSH_MSG_SERVICE_ACCEPT


def test_ssh1_refused(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.send_raw(b"SSH-1.5-oldclient\r\n")
    assert client.read_all().endswith(b"Protocol major versions differ.\r\n")
    still_serving(server)


@pytest.mark.parametrize(
    "packet",
    [
        struct.pack(">I", 0xFFFFFFF0) + b"\x04" + b"\x00" * 16,  # impossible length
        struct.pack(">I", 3) + b"\x01\x00\x00\x00",  # shorter than any packet
        struct.pack(">IB", 12, 2) + b"\x14" + b"\x00" * 10,  # padding below 4 bytes
        struct.pack(">IB", 11, 4) + b"\x14" + b"\x00" * 9,  # not a multiple of the block
    ],
)
def test_bad_framing_before_keys(server: ServerProcess, packet: bytes) -> None:
    client = RawClient(server.port)
    client.exchange_versions()
    assert client.recv()[0] == c.SSH_MSG_KEXINIT
    client.send_raw(packet)
    disconnect = client.expect_disconnect()
    assert disconnect.reason == c.SSH_DISCONNECT_PROTOCOL_ERROR
    assert client.closed_by_server()
    still_serving(server)


def test_mac_failure(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.handshake()
    packet = bytearray(client.encoder.encode(wire.byte(c.SSH_MSG_IGNORE) + wire.string(b"x")))
    packet[10] ^= 0x01
    client.send_raw(bytes(packet))
    disconnect = client.expect_disconnect()
    assert disconnect.reason == c.SSH_DISCONNECT_MAC_ERROR
    still_serving(server)


def test_unknown_message_gets_unimplemented(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.handshake()
    sequence = client.encoder.sequence
    client.send(wire.byte(200) + b"whatever")
    reply = client.recv_skipping(c.SSH_MSG_EXT_INFO)
    assert reply[0] == c.SSH_MSG_UNIMPLEMENTED
    assert wire.Reader(reply, 1).uint32() == sequence
    # The connection lives on.
    assert client.request_service()[0] == c.SSH_MSG_SERVICE_ACCEPT


def test_service_request_before_key_exchange(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.exchange_versions()
    client.send(wire.byte(c.SSH_MSG_SERVICE_REQUEST) + wire.string("ssh-userauth"))
    disconnect = client.expect_disconnect()
    assert disconnect.reason == c.SSH_DISCONNECT_PROTOCOL_ERROR
    still_serving(server)


def test_unknown_service(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.handshake()
    client.send(wire.byte(c.SSH_MSG_SERVICE_REQUEST) + wire.string("ssh-connection"))
    assert client.expect_disconnect().reason == c.SSH_DISCONNECT_SERVICE_NOT_AVAILABLE


def test_strict_kex_rejects_messages_during_initial_exchange(server: ServerProcess) -> None:
    """Terrapin (CVE-2023-48795): with strict KEX nothing extra may be slipped in."""
    client = RawClient(server.port)
    client.exchange_versions()
    ours = client.kexinit(strict=True)
    theirs = client.recv()
    assert b"kex-strict-s-v00@openssh.com" in theirs
    client.send(wire.byte(c.SSH_MSG_IGNORE) + wire.string(b"injected"))
    disconnect = client.expect_disconnect()
    assert "strict KEX" in disconnect.description
    del ours
    still_serving(server)


def test_strict_kex_kexinit_must_be_first(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.exchange_versions()
    client.send(wire.byte(c.SSH_MSG_IGNORE) + wire.string(b"first"))
    client.kexinit(strict=True)
    assert client.recv()[0] == c.SSH_MSG_KEXINIT
    assert "KEXINIT was not the first packet" in client.expect_disconnect().description


def test_without_strict_kex_ignore_is_tolerated(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.exchange_versions()
    ours = client.kexinit(strict=False)
    theirs = client.recv()
    client.send(wire.byte(c.SSH_MSG_IGNORE) + wire.string(b"allowed"))
    client.finish_kex(ours, theirs, strict=False)
    assert client.request_service()[0] == c.SSH_MSG_SERVICE_ACCEPT


def test_strict_kex_resets_sequence_numbers(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.handshake(strict=True)
    # Both sides restarted at 0 after NEWKEYS; an UNIMPLEMENTED names our seq 0.
    client.send(wire.byte(201))
    reply = client.recv_skipping(c.SSH_MSG_EXT_INFO)
    assert reply[0] == c.SSH_MSG_UNIMPLEMENTED
    assert wire.Reader(reply, 1).uint32() == 0


def test_ext_info_lists_signature_algorithms(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.handshake(ext_info=True)
    client.send(wire.byte(c.SSH_MSG_SERVICE_REQUEST) + wire.string("ssh-userauth"))
    info = client.recv()
    assert info[0] == c.SSH_MSG_EXT_INFO
    reader = wire.Reader(info, 1)
    assert reader.uint32() == 1
    assert reader.text() == "server-sig-algs"
    assert "rsa-sha2-512" in reader.text().split(",")
