#!/usr/bin/env python
"""``manage.py runserver --noreload ADDR:PORT``, but on a socket the test harness has already
bound and put in listening state, inherited as file descriptor ``$VANISH_TEST_LISTEN_FD``.

The harness binds port 0 itself, so the kernel picks a free port and nobody can take it
between choosing and serving; it then starts Vanish with that port as its upstream before
this server runs. Everything else is Django's own runserver (same command, same threaded
WSGIServer, same handler); only the bind is skipped.

Usage (the harness does this): VANISH_TEST_LISTEN_FD=N python runserver_fd.py 127.0.0.1:PORT
"""

import os
import socket
import sys

from django.core.servers.basehttp import WSGIServer


class InheritedSocketServer(WSGIServer):
    """Django's WSGIServer serving the inherited, already listening socket."""

    def __init__(self, server_address, RequestHandlerClass, ipv6=False,
                 allow_reuse_address=True):
        super().__init__(server_address, RequestHandlerClass, ipv6=ipv6,
                         allow_reuse_address=allow_reuse_address, bind_and_activate=False)
        self.socket.close()
        self.socket = socket.socket(fileno=int(os.environ["VANISH_TEST_LISTEN_FD"]))
        self.server_bind()

    def server_bind(self):
        # What HTTPServer.server_bind and WSGIServer.server_bind do, but the bind itself.
        self.server_address = self.socket.getsockname()
        host, port = self.server_address[:2]
        self.server_name = socket.getfqdn(host)
        self.server_port = port
        self.setup_environ()


def main() -> None:
    if len(sys.argv) != 2 or "VANISH_TEST_LISTEN_FD" not in os.environ:
        sys.exit(__doc__)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.management.commands.runserver import Command

    class Runserver(Command):
        server_cls = InheritedSocketServer

    call_command(Runserver(), sys.argv[1], use_reloader=False, skip_checks=True)


if __name__ == "__main__":
    main()
