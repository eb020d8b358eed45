"""Scene reading: sensors, band identification, scaling to reflectance, co-registration, windows.

Entry point: :func:`open_scene` -> :class:`Scene` (see ARCHITECTURE.md). :class:`MemoScene` wraps a
scene so that repeated reads (renders after every refinement) are answered from memory.
"""

from spex.io.files import SceneFiles, sort_scene_files
from spex.io.memo import MemoScene
from spex.io.scene import ATMOSPHERIC_BANDS, BandInfo, Scene, SceneInfo, open_scene
from spex.io.sensors import SENSORS, Sensor, get_sensor

__all__ = [
    "open_scene", "Scene", "SceneInfo", "MemoScene", "BandInfo", "Sensor", "SENSORS", "get_sensor", "ATMOSPHERIC_BANDS",
    "SceneFiles", "sort_scene_files",
]
