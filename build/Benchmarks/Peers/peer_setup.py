"""Shared set-up of every Python peer (import it first): thread count and an honest report of what actually ran.

The launcher (Peer.RunPython in BenchmarkSupport.cs) sets the process environment: PEER_THREADS and the matching
OMP/OpenBLAS/MKL thread counts, OMP_WAIT_POLICY=PASSIVE, glibc malloc settings that keep freed memory for reuse
(PeerMallocSettings), and OPENBLAS_CORETYPE when OpenBLAS's own CPU detection would
pick a kernel below the CPU's capability. At exit this module prints one "PEER_INFO ..." line to stderr naming every
BLAS/OpenMP library the peer loaded, with its kernel (threadpoolctl's architecture) and thread count; the launcher
shows it next to the peer's results.
"""
import atexit
import os
import sys


def threads():
    """Threads the launcher asked this peer to use (PyTorch peers pass it to torch.set_num_threads)."""
    return int(os.environ.get("PEER_THREADS", "2"))


def describe():
    parts = []
    try:
        import threadpoolctl
        for lib in threadpoolctl.threadpool_info():
            kernel = f" kernel={lib['architecture']}" if lib.get("architecture") else ""
            version = f" {lib['version']}" if lib.get("version") else ""
            parts.append(f"{lib.get('internal_api')} ({lib.get('prefix')}){version}{kernel} threads={lib.get('num_threads')}")
    except Exception as e:  # threadpoolctl missing: say so rather than guess
        parts.append(f"threadpoolctl unavailable ({type(e).__name__})")
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        capability = next((line.split(":", 1)[1].strip() for line in torch.__config__.show().splitlines()
                           if "CPU capability usage" in line), "?")
        parts.append(f"torch {torch.__version__} intra-op threads={torch.get_num_threads()} cpu-capability={capability}")
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_") if k in os.environ)
    return "; ".join(parts) + (f" [{env}]" if env else "")


@atexit.register
def _report():
    try:
        line = describe()
    except Exception as e:  # the report must never fail a peer
        line = f"unavailable ({type(e).__name__}: {e})"
    print("PEER_INFO " + line, file=sys.stderr, flush=True)
