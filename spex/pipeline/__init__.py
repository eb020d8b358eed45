"""Work over many scenes: batch extraction on Dask (no CLI code here; see spex.commands.batch)."""

from spex.pipeline.batch import DONE_MARKER, BatchOptions, SceneSummary, run_batch, run_scene
from spex.pipeline.scenes import BatchScene, expand_scenes

__all__ = ["BatchOptions", "BatchScene", "DONE_MARKER", "SceneSummary", "expand_scenes", "run_batch", "run_scene"]
