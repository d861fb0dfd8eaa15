"""The tests' fork server: each forked kernel is fresh, and dies with its stub.

A kernel forked from the server must be what a directly started kernel is: no process,
file or IPython start-up file of the kernel before it, no name in its namespace, its own
random state, the course's files in its working directory; and killing its stub (what
the kernel manager does at shutdown) must kill it.
"""

from __future__ import annotations

import asyncio

import pytest

from tamegrad.autograde import forkserver, sandbox
from tamegrad.autograde.execute import SandboxedKernelManager

from .conftest import IN_CI

SETUP = "import numpy as np\nimport torch\nimport tamegrad as tg\n"


@pytest.fixture(scope="module")
def server():
    ok, why = sandbox.bubblewrap_works()
    if not ok:
        if IN_CI:
            pytest.fail(f"CI must grade inside bubblewrap: {why}")
        pytest.skip(f"bubblewrap does not work here ({why})")
    s = forkserver.ForkServer(
        {"data/course.txt": b"course file"}, sandbox.Limits(), "bwrap", forkserver.imported_modules([SETUP])
    )
    yield s
    s.close()


async def _start(server):
    slot = sandbox.make_scratch(server.slot())
    km = SandboxedKernelManager(
        transport="ipc", ip=str(slot / "kernel" / "k"), connection_file=str(slot / "kernel" / "kernel.json")
    )
    km.launcher = server.launcher()
    km.kernel_spec.interrupt_mode = "message"
    await km.start_kernel(env=sandbox.kernel_env(slot, "bwrap"), cwd=str(slot))
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def _run(kc, code: str) -> str:
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    await kc.execute_interactive(code, output_hook=hook, timeout=60)
    return "".join(out)


async def _session(server, code: str) -> str:
    km, kc = await _start(server)
    try:
        return await _run(kc, code)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


LEAVE_TRACES = """
import os, subprocess
subprocess.Popen(["sleep", "600"])
open("/tmp/left-behind.txt", "w").write("x")
startup = os.path.join(os.environ["IPYTHONDIR"], "profile_default", "startup")
os.makedirs(startup, exist_ok=True)
open(os.path.join(startup, "00-evil.py"), "w").write("EVIL = True\\n")
planted = 1
import torch
print("planted", sorted(os.listdir(".")), torch.randint(1 << 30, ()).item())
"""

LOOK = """
import os, subprocess, sys
procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
print("sleep alive:", "sleep 600" in procs)
print("file:", os.path.exists("/tmp/left-behind.txt"))
print("startup ran:", "EVIL" in dir())
print("planted:", "planted" in dir())
print("cwd:", sorted(os.listdir(".")), open("data/course.txt").read())
print("torch:", "torch" in sys.modules)
import torch
print("random:", torch.randint(1 << 30, ()).item())
"""


def test_a_forked_kernel_sees_nothing_of_the_kernel_before_it(server):
    first = asyncio.run(_session(server, LEAVE_TRACES))
    assert first.startswith("planted ['data']"), first
    second = asyncio.run(_session(server, LOOK))
    assert "sleep alive: False" in second, second
    assert "file: False" in second, second
    assert "startup ran: False" in second, second
    assert "planted: False" in second, second
    assert "cwd: ['data'] course file" in second, second
    # imported before the kernel started: by the server, which imports what the setup cells import
    assert "torch: True" in second, second
    # torch's default generator reseeded in each fork (numpy reseeds itself; torch does not)
    assert first.split()[-1] != second.split("random:")[1].split()[0], (first, second)


def test_killing_the_stub_kills_its_kernel(server):
    async def go():
        km, kc = await _start(server)
        pid = (await _run(kc, "import os; print(os.getpid())")).strip()
        km.provisioner.process.kill()  # what shutdown_kernel(now=True) and the disk watchdog do
        kc.stop_channels()
        await km.cleanup_resources()
        return pid

    pid = asyncio.run(go())
    # the server forks the next kernel only once the last one has exited: this one starts
    pids = asyncio.run(_session(server, "import os; print(sorted(os.listdir('/proc')))"))
    assert f"'{pid}'" not in pids, (pid, pids)


def test_a_dead_server_is_started_again():
    s = forkserver.server_for({}, sandbox.Limits(), "none", forkserver.imported_modules([SETUP]))
    s.process.kill()
    s.process.wait()
    again = forkserver.server_for({}, sandbox.Limits(), "none", forkserver.imported_modules([SETUP]))
    assert again is not s and again.alive()
    assert forkserver.server_for({}, sandbox.Limits(), "none", forkserver.imported_modules([SETUP])) is again
    forkserver.close_all()


def test_the_server_imports_what_the_setup_cells_import():
    modules = forkserver.imported_modules(
        ["import numpy as np, torch\nfrom tamegrad import grading as gr\nfrom . import x\n", "def f(:"]
    )
    assert modules == (*forkserver.ALWAYS, "numpy", "torch", "tamegrad")
