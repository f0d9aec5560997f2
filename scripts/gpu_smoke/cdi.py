"""CDI specs for the GPU smoke test when ``nvidia-ctk cdi generate`` is not the answer.

    python cdi.py fallback --driver-root /usr/local/nvidia --out DIR/nvidia.json
    python cdi.py fake --work DIR --python PY --out DIR/nvidia.json

``fallback``: a hand-written spec for the real GPUs (their /dev nodes, the driver folder
mounted read-only at the same path, LD_LIBRARY_PATH pointing into it), used only when
``nvidia-ctk cdi generate`` fails on the GPU machine, so the run still says whether the
rest of the chain works. ``fake``: the rehearsal on a machine without a GPU: devices ``0``
and ``1`` of kind nvidia.com/gpu inject /dev/nvidia<N> (a copy of /dev/null's node), a file
naming the device, and a stand-in ``nvidia-smi``, which proves the engine -> NVIDIA runtime
(CDI mode) -> container path. CDI accepts JSON specs; no YAML library is needed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from pathlib import Path

KIND = "nvidia.com/gpu"

FAKE_SMI = r'''#!{python}
"""Stand-in nvidia-smi of the GPU smoke rehearsal (no GPU on this machine)."""
import os, sys
gpu = os.environ.get("SMEMU_FAKE_GPU", "?")
if "--query-gpu=index" in sys.argv:  # the emulator counting this machine's GPUs
    print("0\n1")
elif "-L" in sys.argv:
    print(f"GPU {{gpu}}: FAKE rehearsal GPU (UUID: GPU-fake-{{gpu}})")
else:
    print(f"{{gpu}}, FAKE rehearsal GPU, GPU-fake-{{gpu}}, 0 MiB, rehearsal")
'''


def fallback(driver_root: str) -> dict:
    nodes = sorted(p for p in glob.glob("/dev/nvidia*") if re.fullmatch(r"/dev/nvidia\d+", p))
    common = [p for p in ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
              if os.path.exists(p)]
    libs = [f"{driver_root}/{d}" for d in ("lib64", "lib", "lib/x86_64-linux-gnu") if os.path.isdir(f"{driver_root}/{d}")]
    bins = [f"{driver_root}/bin"] if os.path.isdir(f"{driver_root}/bin") else []
    devices = [{"name": Path(n).name.removeprefix("nvidia"), "containerEdits": {"deviceNodes": [{"path": n}]}}
               for n in nodes]
    devices.append({"name": "all", "containerEdits": {"deviceNodes": [{"path": n} for n in nodes]}})
    return {
        "cdiVersion": "0.6.0",
        "kind": KIND,
        "devices": devices,
        "containerEdits": {
            "deviceNodes": [{"path": p} for p in common],
            "mounts": [{"hostPath": driver_root, "containerPath": driver_root, "options": ["ro", "nosuid", "nodev", "rbind"]}],
            "env": [f"LD_LIBRARY_PATH={':'.join(libs)}", f"PATH={':'.join(bins + ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])}",
                    "SMEMU_SMOKE_CDI=fallback"],
        },
    }


def fake(work: Path, python: str) -> dict:
    fake_dir = work / "fake"
    fake_dir.mkdir(parents=True, exist_ok=True)
    smi = fake_dir / "nvidia-smi"
    smi.write_text(FAKE_SMI.format(python=python))
    smi.chmod(0o755)
    devices = []
    for index in ("0", "1"):
        marker = fake_dir / f"gpu{index}"
        marker.write_text(f"fake GPU {index} injected by the CDI spec\n")
        devices.append({"name": index, "containerEdits": {
            "env": [f"SMEMU_FAKE_GPU={index}"],
            "deviceNodes": [{"path": f"/dev/nvidia{index}", "hostPath": "/dev/null"}],
            "mounts": [{"hostPath": str(marker), "containerPath": "/usr/local/nvidia-fake/gpu", "options": ["ro", "bind"]}],
        }})
    marker = fake_dir / "gpu-all"
    marker.write_text("fake GPUs 0 and 1 injected by the CDI spec\n")
    devices.append({"name": "all", "containerEdits": {
        "env": ["SMEMU_FAKE_GPU=all"],
        "mounts": [{"hostPath": str(marker), "containerPath": "/usr/local/nvidia-fake/gpu", "options": ["ro", "bind"]}],
        "deviceNodes": [{"path": "/dev/nvidia0", "hostPath": "/dev/null"}, {"path": "/dev/nvidia1", "hostPath": "/dev/null"}],
    }})
    return {
        "cdiVersion": "0.6.0",
        "kind": KIND,
        "devices": devices,
        "containerEdits": {
            "env": ["SMEMU_FAKE_CDI=1"],
            "mounts": [{"hostPath": str(smi), "containerPath": "/usr/bin/nvidia-smi", "options": ["ro", "bind"]}],
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("fallback", "fake"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--driver-root", default="/usr/local/nvidia")
    parser.add_argument("--work", default="/tmp/smemu-gpu")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    spec = fallback(args.driver_root) if args.mode == "fallback" else fake(Path(args.work), args.python)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(spec, indent=1))
    print(f"cdi.py: wrote a {args.mode} spec with devices {[d['name'] for d in spec['devices']]} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
