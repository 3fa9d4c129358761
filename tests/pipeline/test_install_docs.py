"""The install instructions name commands that work: salsa2 from the checkout (it is not on PyPI), torch first from
the CPU or the CUDA index at the version scripts/setup.sh pins."""

from __future__ import annotations

import re

from helpers import REPO


def _torch_version() -> str:
    return re.search(r"^TORCH_VERSION=(\S+)$", (REPO / "scripts" / "setup.sh").read_text(), re.M).group(1)


def test_no_instruction_installs_salsa2_from_pypi() -> None:
    for doc in ("README.md", "docs/install.md"):
        text = (REPO / doc).read_text()
        assert not re.search(r"pip install (-U |--upgrade )?['\"]?salsa2\b", text), f"{doc}: salsa2 is not on PyPI"


def test_cpu_and_cuda_installs_are_spelled_out() -> None:
    text = (REPO / "docs" / "install.md").read_text()
    version = _torch_version()
    for index in ("cpu", "cu126"):
        torch = f"pip install torch=={version} --index-url https://download.pytorch.org/whl/{index}"
        block = re.search(rf"{re.escape(torch)}\n(.*)\n```", text)
        assert block, f"docs/install.md has no block installing torch from /whl/{index}"
        assert re.match(r"pip install -e '?\"?\.", block.group(1)), block.group(1)  # salsa2 from the checkout
    readme = (REPO / "README.md").read_text()
    assert f"pip install torch=={version} --index-url https://download.pytorch.org/whl/cpu" in readme
