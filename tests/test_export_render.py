"""Preview and overlay PNGs (band choice, stretch, sizes, nodata, region colours, numbers) and their light copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_export_support import FILL_COLS, HEIGHT, LAKE, WIDTH, make_extraction, open_test_scene

from spex.errors import BandError, ExportError
from spex.export import encode_lossy, preview_image, render_overlay, render_preview, write_lossy_copy
from spex.export.palette import REGION_PALETTE, class_colour
from spex.export.render import NODATA_RGB, choose_display_bands, downsample_labels


def test_band_choice_and_fallbacks() -> None:
    assert choose_display_bands(["blue", "green", "red", "nir"]) == (("red", "green", "blue"), None)
    assert choose_display_bands(["blue", "green", "red", "nir"], false_colour=True) == (("nir", "red", "green"),
                                                                                       None)
    bands, note = choose_display_bands(["green", "red", "nir08", "swir1"], false_colour=True)
    assert bands == ("nir08", "red", "green") and "nir/red/green" in note
    bands, note = choose_display_bands(["red", "nir", "swir1"], false_colour=True)
    assert bands == ("swir1", "nir", "red") and note
    bands, note = choose_display_bands(["nir", "swir1", "swir2"])  # no visible bands at all
    assert bands == ("swir2", "swir1", "nir") and "not available" in note
    bands, note = choose_display_bands(["green", "red", "nir"])  # true colour asked, blue missing
    assert bands == ("nir", "red", "green") and "false colour" in note
    assert choose_display_bands(["pan"])[0] == ("pan", "pan", "pan")
    assert choose_display_bands(["thermal", "swir2", "nir", "cirrus"])[0] == ("swir2", "nir", "thermal")
    with pytest.raises(BandError):
        choose_display_bands([])


def test_block_max_downsampling_keeps_small_regions() -> None:
    labels = np.zeros((100, 100), dtype=np.int32)
    labels[13, 57] = 7
    small = downsample_labels(labels, (25, 25))
    assert small.shape == (25, 25) and small[13 // 4, 57 // 4] == 7 and (small > 0).sum() == 1


def test_preview_stretch_and_nodata(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        preview = preview_image(scene)
    assert preview.rgb.shape == (HEIGHT, WIDTH, 3) and preview.rgb.dtype == np.uint8
    assert preview.bands == ("red", "green", "blue") and preview.scale == 1.0
    assert np.all(preview.rgb[:, :FILL_COLS] == NODATA_RGB)
    assert not preview.valid[:, :FILL_COLS].any() and preview.valid[:, FILL_COLS:].all()
    valid_rgb = preview.rgb[:, FILL_COLS:]
    assert valid_rgb.min() == 0 and valid_rgb.max() == 255  # 2-98 % stretch saturates both ends
    assert preview.rgba()[..., 3][:, :FILL_COLS].max() == 0


def test_render_preview_downsamples_and_enlarges(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        small = render_preview(scene, tmp_path / "small.png", max_size=80, min_size=1)
        big = render_preview(scene, tmp_path / "big.png", false_colour=True)
    with Image.open(small) as image:
        assert image.size == (80, 60)
    with Image.open(big) as image:
        assert image.size == (WIDTH * 4, HEIGHT * 4)  # enlarged to >= 512 px by an integer factor
        assert "nir/red/green" in image.text["spex:bands"]


def test_overlay_colours_regions_and_numbers_them(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        preview = render_preview(scene, tmp_path / "preview.png")
        overlay = render_overlay(scene, extraction, tmp_path / "overlay.png")
    with Image.open(preview) as p, Image.open(overlay) as o:
        base, over = np.asarray(p.convert("RGB")), np.asarray(o.convert("RGB"))
        rows = int(o.text["spex:image_rows"])
    factor = base.shape[0] // HEIGHT
    assert rows == base.shape[0] and over.shape[1] == base.shape[1]
    assert over.shape[0] > rows  # caption strip below the picture
    image = over[:rows].astype(int)
    lake = np.zeros((HEIGHT, WIDTH), dtype=bool)
    lake[LAKE] = True
    lake &= extraction.labels == extraction.regions[0].label
    lake_big = np.repeat(np.repeat(lake, factor, 0), factor, 1)
    changed = np.abs(image - base.astype(int)).sum(axis=2) > 30
    assert changed[lake_big].mean() > 0.95  # the mask is visibly coloured
    outside = ~np.repeat(np.repeat(extraction.mask, factor, 0), factor, 1)
    assert changed[outside].mean() < 0.15  # only outlines/halo and tags touch the background
    # region #1 has the first palette colour: its outline pixels are exactly that colour
    assert np.all(image == np.array(REGION_PALETTE[0]), axis=2)[lake_big].sum() > 100
    # smaller regions beyond the top ten use the class colour
    assert len(extraction.regions) > 10
    assert np.all(image == np.array(class_colour(("water",))), axis=2).sum() > 0
    # the caption is not blank
    assert over[rows:].std() > 10


def test_overlay_rejects_mismatched_labels(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        extraction.labels = extraction.labels[:10]
        with pytest.raises(ExportError, match="does not match"):
            render_overlay(scene, extraction, tmp_path / "bad.png")


def test_overlay_of_empty_extraction(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene, mask=np.zeros((HEIGHT, WIDTH), dtype=bool))
        out = render_overlay(scene, extraction, tmp_path / "empty.png", max_size=100, min_size=1)
    with Image.open(out) as image:
        assert image.width == 100 and image.height > 75


def test_lossy_copy_is_small_and_faithful(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        overlay = render_overlay(scene, make_extraction(scene), tmp_path / "overlay.png")
    light = write_lossy_copy(overlay, tmp_path / "chat" / "overlay.png")
    assert light == tmp_path / "chat" / "overlay.webp" and light.read_bytes()[8:12] == b"WEBP"
    assert light.stat().st_size < 0.75 * overlay.stat().st_size  # tiny crop; ~8x smaller on full-size scenes
    with Image.open(overlay) as full, Image.open(light) as copy:
        rows = int(full.text["spex:image_rows"])
        a, b = np.asarray(full.convert("RGB"), dtype=float), np.asarray(copy.convert("RGB"), dtype=float)
    assert a.shape == b.shape
    assert np.abs(a[rows:] - b[rows:]).mean() < 4.0  # caption text intact (8-bit levels)
    # the synthetic scene is per-pixel colour noise, the worst case for lossy coding: the colours stay unbiased
    np.testing.assert_allclose(a[:rows].mean(axis=(0, 1)), b[:rows].mean(axis=(0, 1)), atol=1.0)


def test_lossy_copy_without_webp_support(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save = Image.Image.save

    def no_webp(self: Image.Image, fp, format=None, **params):  # noqa: A002, ANN001, ANN003, ANN202
        if format == "WEBP":
            raise KeyError("WEBP")
        return save(self, fp, format, **params)

    monkeypatch.setattr(Image.Image, "save", no_webp)
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    data, mime = encode_lossy(Image.fromarray(rgb))
    assert mime == "image/jpeg" and data[:2] == b"\xff\xd8"
    data, mime = encode_lossy(Image.fromarray(np.dstack([rgb, rgb[..., :1]])))
    assert mime == "image/png" and data[:4] == b"\x89PNG"  # JPEG has no alpha
    src = tmp_path / "a.png"
    Image.fromarray(rgb).save(src)
    assert write_lossy_copy(src, tmp_path / "b.png").suffix == ".jpg"
    with pytest.raises(ExportError, match="cannot read picture"):
        write_lossy_copy(tmp_path / "missing.png", tmp_path / "c.png")
    with pytest.raises(ValueError, match="quality"):
        encode_lossy(Image.fromarray(rgb), quality=0)


def test_outlines_equal_skimage_find_boundaries() -> None:
    from skimage.segmentation import find_boundaries

    from spex.export.render import outlines

    rng = np.random.default_rng(3)
    for shape in ((1, 7), (9, 1), (40, 53)):
        labels = rng.integers(0, 5, shape)
        labels[rng.random(shape) < 0.4] = 0
        inner, outer = outlines(labels)
        assert np.array_equal(inner, find_boundaries(labels, mode="inner") & (labels > 0))
        assert np.array_equal(outer, find_boundaries(labels, mode="outer") & (labels == 0))


def test_screen_jpeg_and_kept_preview_draw_the_same_overlay(tmp_path: Path) -> None:
    with open_test_scene(tmp_path) as scene:
        extraction = make_extraction(scene)
        png = render_overlay(scene, extraction, tmp_path / "overlay.png")
        kept = preview_image(scene)
        again = render_overlay(scene, extraction, tmp_path / "again.png", preview=kept)
        jpg = render_overlay(scene, extraction, tmp_path / "view.jpg", preview=kept)
        with pytest.raises(ValueError, match="does not fit"):
            render_overlay(scene, extraction, tmp_path / "bad.png", preview=kept, max_size=10)
    with Image.open(png) as a, Image.open(again) as b, Image.open(jpg) as c:
        assert c.format == "JPEG" and c.size == a.size
        full, same, lossy = (np.asarray(i.convert("RGB"), dtype=float) for i in (a, b, c))
    assert np.array_equal(full, same)  # a kept preview changes nothing
    assert np.abs(full - lossy).mean() < 3.0  # 4:4:4 JPEG: faithful to the lossless picture
