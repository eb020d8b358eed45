"""``python -m spex info SCENE [SCENE...]``: describe a scene (sensor, bands, CRS, scaling, notes)."""

from __future__ import annotations

import argparse
import re

from spex.io import open_scene

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``info`` sub-command."""
    p = subparsers.add_parser(
        "info", help="describe a scene: sensor, bands, CRS, pixel size, scaling",
        description="Open one scene (one GeoTIFF, or several files of one scene, e.g. Sentinel-2 10/20/60 m "
                    "files or Landsat *_B1.TIF..*_B7.TIF) and print what spex makes of it.")
    p.add_argument("scene", nargs="+", help="raster file(s) or a folder forming one scene")
    p.add_argument("--bands", default=None,
                   help="band names in file order, comma separated (e.g. blue,green,red,nir; 'skip' ignores one)")
    p.add_argument("--mtl", default=None, help="Landsat *_MTL.txt for TOA reflectance calibration")
    p.add_argument("--sensor", default=None, help="force a sensor layout, e.g. s2_l1c, landsat5_tm, aerial_rgbn")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the scene description; errors propagate as SpexError (exit 2 in the dispatcher)."""
    bands = [b for b in re.split(r"[,\s]+", args.bands) if b] if args.bands else None
    with open_scene(args.scene, bands=bands, mtl=args.mtl, sensor=args.sensor) as scene:
        print(scene.info().to_text())
    return 0
