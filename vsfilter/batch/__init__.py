"""``python -m vsfilter.batch``: score many pairs, and long titles in exact chunks, on a Dask cluster.

From Python: ``read_manifest(path)``, then ``run_batch(pairs, out_dir, Settings(...), client=...)`` with a
``distributed.Client`` (``start_client(scheduler, workers)`` makes one).
"""

from .manifest import ManifestError, PairSpec, read_manifest
from .runner import BatchError, PairOutcome, run_batch, start_client, stitch
from .tasks import Settings

__all__ = ["read_manifest", "run_batch", "start_client", "stitch", "Settings", "PairSpec", "PairOutcome",
           "ManifestError", "BatchError"]
