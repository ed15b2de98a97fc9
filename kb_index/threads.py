"""How the knowledge base uses the machine's cores.

- The encoder (ONNX Runtime) runs one question or one batch on every core; its threads stop spinning when a run
  ends, so that what comes next has the cores.
- A question's FAISS search over a large exact index is split into one part per core, each searched by a thread
  of its own (``kb_index.index``); FAISS's OpenMP threads stay at one, since they spin between questions and
  fought the encoder's.
- Training an approximate index is one big batch and uses every core (``kb_index.builder``).
"""

from __future__ import annotations

import os

__all__ = ["available_threads"]


def available_threads() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
