"""The variables `make test` sets to run the suite on the AVX2 code paths (the kernels of CPUs without AVX-512)
really select them in this torch: otherwise the AVX2 pass would silently test the native kernels again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch


@pytest.mark.skipif("ATEN_CPU_CAPABILITY" not in os.environ, reason="native pass: no capability forced")
def test_aten_runs_the_forced_capability():
    assert torch.backends.cpu.get_cpu_capability().lower() == os.environ["ATEN_CPU_CAPABILITY"].lower()


@pytest.mark.skipif("ONEDNN_MAX_CPU_ISA" not in os.environ or not torch.backends.mkldnn.is_available(),
                    reason="native pass, or a torch without oneDNN")
def test_onednn_runs_the_forced_isa():
    code = ("import torch; torch.backends.mkldnn.enabled = True\n"
            "with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):\n"
            "    torch.nn.functional.conv2d(torch.ones(2, 16, 32, 32), torch.ones(32, 16, 3, 3))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    isa = [line for line in out.splitlines() if ",isa:" in line]
    assert isa, "oneDNN printed no ISA line: the convolution did not run through oneDNN"
    want = os.environ["ONEDNN_MAX_CPU_ISA"].replace("_", " ").lower()
    assert want in isa[0].lower(), isa[0]
