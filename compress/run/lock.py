"""One process at a time in a run directory: an exclusive ``flock`` on a lock file inside it.

The lock belongs to an open file, so the kernel drops it when the process ends however it ends
(SIGKILL included): a lock file left on disk never blocks a rerun. The file holds who took the lock
(pid, command, start time) so a refused run can name the process it is waiting for.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from compress.errors import CompressError

LOCK_FILE = ".compress.lock"
UNLOCKABLE = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


def _holder(path: Path) -> str:
    """Who holds the lock, in words, from what it wrote into the lock file."""
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(facts["started"]))
        return f"pid {facts['pid']} on {facts['host']}, started {started}: {facts['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet written its pid"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """Hold the run directory's lock for the block; refuse (naming the holder) when another process has it."""
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CompressError(
                f"{run_dir}: another compress run is using this directory ({_holder(path)})",
                hint="wait for it to finish (or stop it), then rerun to resume; or choose another --out",
            ) from None
        except OSError as error:
            if error.errno not in UNLOCKABLE:
                raise
            yield path  # a filesystem without locks (some network mounts): run unlocked, as before locks
            return
        facts = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(facts).encode("utf-8"), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
