"""Runtime settings: the allocator tuning (set once on glibc, opted out by the environment, keeping
freed temporaries for reuse, checked by page faults in a fresh process) and OpenMP's spin count."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

# Ten 4 MB temporaries a round, freed together: glibc's default trims the 40 MB at the top of
# its heap each round, so the next round faults its pages in again.
SCRIPT = """
import resource, sys
import numpy as np
from napari_colorize.core.runtime import tune_allocator
applied = tune_allocator()
assert tune_allocator() == applied
def round_():
    blocks = [np.ones(1 << 20, np.float32) for _ in range(10)]
    del blocks
for _ in range(2):
    round_()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    round_()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5
from napari_colorize.core.runtime import release_memory
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
before = rss()
release_memory()
print(applied, faults, (before - rss()) / 2**20)
"""


def _run(opt_out: bool) -> tuple[bool, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    if opt_out:
        env["NAPARI_COLORIZE_MALLOC"] = "system"
    else:
        env.pop("NAPARI_COLORIZE_MALLOC", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    applied, faults, released = out.stdout.split()
    return applied == "True", float(faults), float(released)


@glibc_only
def test_tuned_allocator_reuses_freed_memory_and_hands_it_back_on_request():
    applied, faults, released = _run(opt_out=False)
    assert applied
    # 40 MB is 10,240 pages; kept for reuse, a round faults almost none of them in
    assert faults < 1000
    assert released > 30  # MB: what release_memory gave back


@glibc_only
def test_opt_out_leaves_the_allocator_as_it_was():
    applied, faults, _ = _run(opt_out=True)
    assert not applied
    assert faults > 5000


@glibc_only
def test_the_first_inference_tunes_the_allocator():
    script = ("import numpy as np\nfrom napari_colorize import colorize\nfrom napari_colorize.core import runtime\n"
              "assert 'done' not in runtime._state\ncolorize(np.zeros((16, 16), np.float32))\n"
              "print(runtime._state['done'])")
    env = {k: v for k, v in os.environ.items() if k != "NAPARI_COLORIZE_MALLOC"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "True"


ORDER = """
import os, sys
seen = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append(os.environ.get("GOMP_SPINCOUNT"))
        return None
sys.meta_path.insert(0, Spy())
import napari_colorize
print(seen[0], os.environ["GOMP_SPINCOUNT"])
"""


@pytest.mark.parametrize("preset, expected", [(None, "3000"), ("50000", "50000")])
def test_openmp_spin_count_is_set_before_torch_loads_unless_the_user_set_one(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    if preset:
        env["GOMP_SPINCOUNT"] = preset
    out = subprocess.run([sys.executable, "-c", ORDER], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [expected, expected]
