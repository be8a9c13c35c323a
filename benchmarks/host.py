"""The processor a benchmark ran on, for its heading: this development machine is a virtual machine
whose host changes between sessions (AMD Zen 3 with 512 KiB of L2 per core, Intel Xeon with 2 MiB), and
ratios to reference implementations move with it, so every table says which one it came from."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_description() -> str:
    """'Intel(R) Xeon(R) Processor, 2 CPUs, L2 2 MiB per core, L3 480 MiB' as far as the OS tells."""
    parts = [_model_name(), f"{os.cpu_count()} CPUs"]
    caches = _cache_sizes()
    if "L2" in caches:
        parts.append(f"L2 {caches['L2']} per core")
    if "L3" in caches:
        parts.append(f"L3 {caches['L3']}")
    return ", ".join(parts)


def _model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown processor"


def _cache_sizes() -> dict[str, str]:
    """{'L2': '2 MiB', ...}: the unified caches of CPU 0 (Linux; empty elsewhere)."""
    sizes = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        if kind == "Unified" and size.endswith("K"):
            kib = int(size[:-1])
            sizes[f"L{level}"] = f"{kib // 1024} MiB" if kib % 1024 == 0 else f"{kib} KiB"
    return sizes
