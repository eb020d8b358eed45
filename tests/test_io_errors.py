"""Every bad input gives a specific SpexError (never a raw GDAL traceback)."""

from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pytest
import rasterio
from helpers import write_geotiff as write

from spex.errors import (BandError, LimitError, NotGeoreferencedWarning, RelativeScalingWarning, SceneReadError,
                         SpexWarning, clean_message, user_message)
from spex.io import open_scene
from spex.io.validate import max_decoded_bytes

#: What no user-facing message may contain: GDAL/libtiff internals, tracebacks.
INTERNALS = ("TIFFFetch", "TIFFRead", "See previous exception", "CPLE_", "Traceback", "RasterioIOError", "IReadBlock")


def assert_user_facing(message: str) -> None:
    """No GDAL internals and no absolute path in ``message``."""
    for word in INTERNALS:
        assert word not in message, message
    assert "/tmp/" not in message and not any(t.startswith("/") and t.count("/") > 1 for t in message.split()), \
        message

OLINDA = "l7_olinda_crop.tif"


def test_missing_file(tmp_path):
    with pytest.raises(SceneReadError, match="not found") as info:
        open_scene(tmp_path / "nope.tif")
    assert_user_facing(str(info.value))


def test_empty_file(tmp_path):
    p = tmp_path / "empty.tif"
    p.write_bytes(b"")
    with pytest.raises(SceneReadError, match="empty"):
        open_scene(p)


def test_text_file(tmp_path):
    p = tmp_path / "notes.tif"
    p.write_text("this is not an image\n" * 20)
    with pytest.raises(SceneReadError, match="not a raster"):
        open_scene(p)


def test_corrupt_tiff(tmp_path):
    p = tmp_path / "corrupt.tif"
    p.write_bytes(b"II*\x00" + os.urandom(4000))
    with pytest.raises(SceneReadError, match="cannot be read") as info:
        open_scene(p)
    assert_user_facing(str(info.value))


@pytest.mark.parametrize("compress", ["deflate", None])
def test_truncated_tiff(tmp_path, data_dir, compress):
    with rasterio.open(data_dir / OLINDA) as ds:
        data, profile = ds.read(), ds.profile
    profile.update(compress=compress)
    full = tmp_path / "full.tif"
    with rasterio.open(full, "w", **profile) as out:
        out.write(data)
    blob = full.read_bytes()
    p = tmp_path / "truncated.tif"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(SceneReadError, match="damaged|cut short|cannot be read") as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpexWarning)
            open_scene(p).read()
    assert_user_facing(str(info.value))


def test_all_nodata(tmp_path):
    p = write(tmp_path / "x.tif", np.zeros((4, 20, 20), np.uint16), nodata=0)
    with pytest.raises(SceneReadError, match="no valid pixels"):
        open_scene(p)


def test_all_nan(tmp_path):
    p = write(tmp_path / "x.tif", np.full((4, 20, 20), np.nan, np.float32))
    with pytest.raises(SceneReadError, match="no valid pixels"):
        open_scene(p)


def test_absurd_dimensions(tmp_path, data_dir):
    with pytest.raises(LimitError, match="more than the limit"):
        open_scene(data_dir / OLINDA, max_pixels=1000)


def _sparse(path, size=16000, count=4):
    """A tiny file (tens of KB: sparse deflate tiles) that declares size x size x count uint16."""
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=count, dtype="uint16",
                       compress="deflate", tiled=True, blockxsize=512, blockysize=512, sparse_ok=True,
                       crs="EPSG:32618", transform=from_origin(400000, 4200000, 10, 10)) as ds:
        ds.write(np.full((count, 64, 64), 1000, np.uint16), window=Window(0, 0, 64, 64))
    return path


def test_sparse_decompression_bomb_refused_before_reading(tmp_path):
    p = _sparse(tmp_path / "bomb.tif")
    assert p.stat().st_size < 200_000  # small on disk ...
    with pytest.raises(LimitError) as info:  # ... but 1.9 GB decoded: refused from the header alone
        open_scene(p)
    msg = str(info.value)
    assert "16,000 x 16,000" in msg and "4 bands" in msg and "1.91 GB" in msg and "gdal_translate" in msg
    assert_user_facing(msg)


def test_cli_exits_2_on_decompression_bomb(tmp_path, capsys):
    from spex.cli import main
    p = _sparse(tmp_path / "bomb.tif")
    assert main(["extract", str(p), "--query", "extract the water", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "limit" in err and "decodes to" in err
    assert_user_facing(err)


def test_decoded_limit_from_environment():
    assert max_decoded_bytes({"SPEX_MAX_DECODED_MB": "100"}) == 100 * 2**20
    with pytest.raises(ValueError, match="SPEX_MAX_DECODED_MB"):
        max_decoded_bytes({"SPEX_MAX_DECODED_MB": "lots"})


@pytest.mark.parametrize("raw, kept", [
    ("x.tif cannot be read: TIFFFetchNormalTag:IO error during reading of ExtraSamples", "header is damaged"),
    ("cannot read band B04 of x.tif (corrupt or truncated data): /tmp/gradio/ab12/x.tif: "
     "TIFFReadEncodedTile() failed. See previous exception for details.", "cannot be decoded"),
    ("/srv/app/tmp/u.tif: not recognized as being in a supported file format", "not a raster format"),
    ("invalid MTL file /tmp/gradio/9f8e7d6c/LC08_MTL.txt: no RADIANCE group", "LC08_MTL.txt"),
])
def test_clean_message_words_gdal_and_hides_paths(raw, kept):
    for exc in (SceneReadError(raw), BandError(raw)):
        msg = str(exc)
        assert kept in msg
        assert_user_facing(msg)


def test_clean_message_keeps_ordinary_slashes():
    text = "R/G/B = nir/red/green; NDVI = (nir - red) / (nir + red); 10/20/60 m bands; see https://x.org/a/b"
    assert clean_message(text) == text


def test_user_message_for_any_exception():
    from rasterio.errors import RasterioIOError
    assert_user_facing(user_message(RasterioIOError("/tmp/a/b.tif: TIFFReadDirectory: bad")))
    assert "memory" in user_message(MemoryError())
    generic = user_message(KeyError("internal_name"), action="reading the upload")
    assert "internal_name" not in generic and "reading the upload" in generic


def test_unsupported_dtype(tmp_path):
    p = write(tmp_path / "c.tif", np.ones((4, 10, 10), np.complex64))
    with pytest.raises(SceneReadError, match="complex64"):
        open_scene(p)


def test_band_count_mismatch(data_dir):
    with pytest.raises(BandError, match="6 bands"):
        open_scene(data_dir / OLINDA, bands=["blue", "green", "red", "nir"])


def test_directory_without_rasters(tmp_path):
    with pytest.raises(SceneReadError, match="no raster"):
        open_scene(tmp_path)


def test_not_georeferenced_is_accepted_with_warning(tmp_path, data_dir):
    with rasterio.open(data_dir / "solaris_ms1_BGRN_uint16.tif") as ds:
        data, desc = ds.read(), ds.descriptions
    p = tmp_path / "plain.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(p, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=4,
                           dtype=data.dtype) as out:
            out.write(data)
            out.descriptions = desc
    with pytest.warns(NotGeoreferencedWarning), pytest.warns(RelativeScalingWarning, match="plain.tif"):
        s = open_scene(p)
    with s:
        assert s.crs is None and s.pixel_area_m2 == 1.0
        assert "pixels" in s.info().to_text()


def test_several_non_georeferenced_files_rejected(tmp_path, data_dir):
    a = tmp_path / "a.tif"
    shutil.copy(data_dir / "solaris_ms1_BGRN_uint16.tif", a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(tmp_path / "b.tif", "w", driver="GTiff", width=5, height=5, count=4,
                           dtype="uint16") as out:
            out.write(np.ones((4, 5, 5), np.uint16))
        with rasterio.open(tmp_path / "c.tif", "w", driver="GTiff", width=5, height=5, count=4,
                           dtype="uint16") as out:
            out.write(np.ones((4, 5, 5), np.uint16))
    with pytest.raises(SceneReadError, match="without georeference"):
        open_scene([tmp_path / "b.tif", tmp_path / "c.tif"])


def test_only_mtl_given(tmp_path):
    p = tmp_path / "X_MTL.txt"
    p.write_text("GROUP = A\nEND_GROUP = A\n")
    with pytest.raises(SceneReadError, match="only an MTL"):
        open_scene(p)


def test_png_without_georeference_is_rgb_in_pixels(tmp_path):
    rgb = np.random.default_rng(0).integers(1, 255, size=(3, 16, 16), dtype=np.uint8)
    p = tmp_path / "photo.png"
    with warnings.catch_warnings():  # a photo has no georeference: GDAL's warning is expected here
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(p, "w", driver="PNG", width=16, height=16, count=3, dtype="uint8") as out:
            out.write(rgb)
    with (pytest.warns(NotGeoreferencedWarning), pytest.warns(SpexWarning, match="taken as RGB"),
          pytest.warns(RelativeScalingWarning, match="photo.png")):
        s = open_scene(p)
    with s:
        assert s.band_names == ("red", "green", "blue") and s.pixel_area_m2 == 1.0
