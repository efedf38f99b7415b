"""``python tcp_relay.py HOST PORT``: join stdin/stdout to a TCP connection (an SSH ProxyCommand, like ``nc``).

Ray's cluster launcher has no SSH port setting; ``auth.ssh_proxy_command`` reaches an sshd on another port.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def main(host: str, port: int) -> None:
    conn = socket.create_connection((host, port), timeout=30)
    conn.settimeout(None)
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(stdin, selectors.EVENT_READ)
    selector.register(conn, selectors.EVENT_READ)
    open_ends = 2
    while open_ends:
        for key, _ in selector.select():
            if key.fileobj == stdin:
                data = os.read(stdin, 65536)
                if data:
                    conn.sendall(data)
                else:
                    selector.unregister(stdin)
                    conn.shutdown(socket.SHUT_WR)
                    open_ends -= 1
            else:
                data = conn.recv(65536)
                if data:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(stdout, view):]
                else:
                    selector.unregister(conn)
                    open_ends = 0  # the server closed: the session is over
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
