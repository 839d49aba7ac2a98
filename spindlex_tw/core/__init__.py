"""The sans-IO SSH-2 core: bytes in, events and bytes out; no sockets, no clock."""
