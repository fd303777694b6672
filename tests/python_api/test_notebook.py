"""A real notebook, run by a real IPython kernel (nbclient + ipykernel), cell by cell: torchscope.show
displays as an iframe of a live server in the kernel's process, which follows a training step."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks" / "show_and_train.ipynb"


def _kernel_manager(tmp_path: Path) -> KernelManager:
    """A kernel started by this venv's python (not whatever 'python3' kernelspec the machine has)."""
    spec_dir = tmp_path / "kernels" / "torchscope-test"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "torchscope test", "language": "python"}))
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name="torchscope-test", kernel_spec_manager=ksm)


def _result(cell: Any) -> dict[str, Any]:
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert not errors, "\n".join(errors[0].traceback)
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1, cell.outputs
    data: dict[str, Any] = results[0].data
    return data


def _overview(http: httpx.Client) -> dict[str, tuple[float, float]]:
    """(mean, std) of each parameter, from the Weights page's overview (one bucket per tensor here)."""
    buckets = http.get("/api/models/mlp/overview").json()["buckets"]
    stats = buckets["parameters"]
    return {n: (m, s) for n, m, s in zip(buckets["name"], stats["mean"], stats["std"], strict=True)}


def test_show_in_a_notebook_embeds_a_live_dashboard(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # Keep the kernel's profile and connection files out of the user's home.
    env.update(IPYTHONDIR=str(tmp_path / "ipython"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    client = NotebookClient(
        nb, km=_kernel_manager(tmp_path), timeout=180, startup_timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel(env=env):
        client.execute_cell(code[0], nb.cells.index(code[0]))
        shown = _result(code[0])
        assert not [o for o in code[0].outputs if o.output_type == "stream"]  # no URL printed: it displays
        match = re.search(r'<iframe src="(http://127\.0\.0\.1:(\d+))/models/mlp"', shown["text/html"])
        assert match, shown["text/html"]
        base, port = match.group(1), int(match.group(2))
        assert 'height="600"' in shown["text/html"] and "Open torchscope in a new tab" in shown["text/html"]
        assert shown["text/plain"] == f"torchscope: {base}/models/mlp"

        with httpx.Client(base_url=base, timeout=30) as http:
            assert [m["id"] for m in http.get("/api/models").json()] == ["mlp"]
            assert http.get("/models/mlp").status_code == 200  # what the iframe loads
            before = http.get("/api/models/mlp/histogram", params={"tensor": "0.weight"}).json()
            stats_before = _overview(http)
            revision = http.get("/api/models/mlp/version").json()["revision"]

            client.execute_cell(code[1], nb.cells.index(code[1]))  # one SGD step in the kernel
            mean_in_kernel = float(_result(code[1])["text/plain"])

            after = http.get("/api/models/mlp/histogram", params={"tensor": "0.weight"}).json()
            stats_after = _overview(http)
            assert http.get("/api/models/mlp/version").json()["revision"] > revision
        assert after["stats"]["mean"] == pytest.approx(mean_in_kernel, rel=1e-6)
        assert after["counts"] != before["counts"]
        assert all(stats_after[name] != stats_before[name] for name in ("0.weight", "0.bias", "2.weight", "2.bias"))

        client.execute_cell(code[2], nb.cells.index(code[2]))
        assert _result(code[2])["text/plain"] == "False"
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
