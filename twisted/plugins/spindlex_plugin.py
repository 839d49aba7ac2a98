"""The ``twistd spindlex`` plugin, found by Twisted's scan of twisted/plugins directories.

Twisted's ``ServiceMaker`` imports ``spindlex_tw.twistd.service`` only when the
plugin is used, so ``twistd --help`` stays fast.
"""

from twisted.application.service import ServiceMaker

spindlex = ServiceMaker(
    "spindlex_tw",
    "spindlex_tw.twistd.service",
    "SSH-2 and SFTP server (spindlex_tw)",
    "spindlex",
)
