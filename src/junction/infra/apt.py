"""Installing a server's Debian package with ``apt-get``, as the tests and ``junction up`` need one.

As root, or with passwordless ``sudo``; otherwise the caller's error says the command to run. dpkg's lock
is waited for (another install, PostgreSQL's say, may hold it), and a package's maintainer scripts can be
kept from starting its system service (``start_services=False``): junction runs private servers instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=300"]


def apt_install(package: str, error: Callable[[str], Exception], recommends: bool = True,
                start_services: bool = True) -> list[str]:
    """Install ``package``; the command prefix root commands need here (``["sudo", "-n"]`` or nothing).
    Failures raise ``error(message)``."""
    if shutil.which("apt-get") is None:
        raise error(f"{package} is not installed and there is no apt-get here: install {package}")
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode:
            raise error(f"{package} is not installed, and installing it needs root: sudo apt-get install {package}")
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    extra = [] if recommends else ["--no-install-recommends"]
    with contextlib.nullcontext() if start_services else services_not_started(prefix):
        for command in (["apt-get", *LOCK_WAIT, "update", "-q"],
                        ["apt-get", *LOCK_WAIT, "install", "-y", "-q", *extra, package]):
            result = subprocess.run([*prefix, *command], capture_output=True, text=True, env=env,
                                    stdin=subprocess.DEVNULL, check=False)
            if result.returncode != 0:
                raise error(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return prefix


@contextlib.contextmanager
def services_not_started(prefix: list[str]) -> Iterator[None]:
    """Tell Debian's maintainer scripts not to start services (policy-rc.d) while apt-get runs."""
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists():  # containers usually ship one already; leave it alone
        yield
        return
    quietly(*prefix, "sh", "-c", f"printf '#!/bin/sh\\nexit 101\\n' > {policy} && chmod 755 {policy}")
    try:
        yield
    finally:
        quietly(*prefix, "rm", "-f", str(policy))


def quietly(*command: str) -> None:
    """Run a best-effort system command (its failure changes nothing we rely on)."""
    subprocess.run(command, capture_output=True, check=False, stdin=subprocess.DEVNULL)
