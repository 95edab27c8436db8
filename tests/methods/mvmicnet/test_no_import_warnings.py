"""Importing the codecs shows the reader no deprecation warning from CompressAI's own imports."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_codecs_raises_no_future_warning():
    code = "import medtask.methods.mvmicnet.codecs.learned, medtask.methods.mvmicnet.study"
    proc = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
