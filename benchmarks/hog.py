"""The other core kept busy, for the timings "with the other core busy": a ``yes > /dev/null`` process that the
kernel kills when the benchmark that started it ends, however it ends (`deepreco.signals.die_with_parent`), so an
interrupted benchmark leaves no busy core behind."""

from __future__ import annotations

import os
import subprocess

from deepreco.signals import die_with_parent


def busy_core() -> subprocess.Popen:
    """A running ``yes > /dev/null``; the caller kills and waits for it when done."""
    parent = os.getpid()
    return subprocess.Popen(["yes"], stdout=subprocess.DEVNULL, preexec_fn=lambda: die_with_parent(parent))
