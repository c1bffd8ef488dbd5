"""Runs a command that gets SIGTERM when the test process dies, however it dies (Linux).

Usage: python die_with_parent.py PARENT_PID PROGRAM [ARGS...]

Sets PR_SET_PDEATHSIG, then replaces itself with PROGRAM (same pid, so the harness stops it
as usual). The setting survives exec, so a vanish or Django server started by a test run that
is killed (SIGKILL, a CI timeout) does not outlive it. Elsewhere than Linux it only execs.
"""

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    parent = int(sys.argv[1])
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            sys.exit(f"die_with_parent: prctl failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:
        sys.exit("die_with_parent: the test process is gone already")
    os.execv(sys.argv[2], sys.argv[2:])


if __name__ == "__main__":
    main()
