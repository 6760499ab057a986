"""Who is on the other end of a control connection (``SO_PEERCRED``), and whether they may change things.

The socket's mode (0660, group ``control.group``) already keeps strangers out; this is the second
check, per request, for the methods that change what the kiosk does: a peer may use them when it is
root, the daemon's own user, or a member of the socket's group. Reading (``status``) is open to anyone
who can connect.
"""
from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int
    groups: frozenset[int]
    """The peer process's primary and supplementary groups when it connected."""

    @classmethod
    def of(cls, sock: socket.socket) -> Peer:
        pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
        return cls(pid, uid, gid, frozenset({gid, *_supplementary_groups(pid)}))

    def may_change(self, group_id: int) -> bool:
        """Root, the daemon's own user, or a member of ``group_id`` (the socket's group)."""
        return self.uid in (0, os.geteuid()) or group_id in self.groups


def _supplementary_groups(pid: int) -> tuple[int, ...]:
    """The ``Groups:`` of ``/proc/PID/status``; none when the process is already gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ()
    for line in status.splitlines():
        if line.startswith("Groups:"):
            return tuple(int(g) for g in line.split()[1:])
    return ()
