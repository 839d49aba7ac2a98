"""The only code that reaches into Twisted's private attributes.

``sendnow`` trades on how ``twisted.internet.tcp`` is built inside
(``_writeDisconnected``, ``_tempDataLen``, ``dataBuffer``, ``offset``) to save latency on
small exchanges, and ``quickack`` sets TCP_QUICKACK on the socket under a
``tcp.Connection``; a Twisted upgrade that changes those internals breaks only
this package, and its tests (tests/tx/test_sendnow.py, test_quickack.py) say so.
"""
