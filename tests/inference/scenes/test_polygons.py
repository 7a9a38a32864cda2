"""Field polygons: areas in hectares against pixel counts, holes, minimum area, CRS handling, summary."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.transform import from_origin
from shapely.geometry import shape

from inference.scenes.polygons import extract_polygons, polygons_geojson, summarize, valid_area_ha

UTM = CRS.from_epsg(32633)
WGS84 = CRS.from_epsg(4326)


def blobs(height: int = 777, width: int = 1000) -> np.ndarray:
    """Fields of several shapes: rectangles, an ellipse, a ring with a hole, and a few tiny specks."""
    yy, xx = np.mgrid[:height, :width]
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[50:250, 60:400] = 1
    mask[((yy - 500) / 150.0) ** 2 + ((xx - 300) / 220.0) ** 2 <= 1] = 1
    ring = (((yy - 350) / 120.0) ** 2 + ((xx - 780) / 150.0) ** 2 <= 1) & (
        ((yy - 350) / 50.0) ** 2 + ((xx - 780) / 60.0) ** 2 > 1
    )
    mask[ring] = 1
    mask[700:703, 900:903] = 1  # 9-pixel specks
    mask[10:12, 950:952] = 1
    return mask


def _labels(mask: np.ndarray, polys, transform) -> list[int]:
    """Pixel count of the mask under each polygon (rasterised back on the same grid)."""
    counts = []
    for geom in polys.geometries:
        burned = rasterize([geom], out_shape=mask.shape, transform=transform, fill=0, default_value=1)
        counts.append(int((burned & mask).sum()))
    return counts


@pytest.mark.parametrize(
    "origin, pixel",
    [((500_000.0, 5_000_000.0), 10.0), ((300_000.0, 6_500_000.0), 30.0), ((710_000.0, 4_200_000.0), 3.0)],
)
def test_utm_areas_match_pixel_count_times_pixel_area(origin: tuple[float, float], pixel: float) -> None:
    mask = blobs()
    transform = from_origin(*origin, pixel, pixel)
    polys = extract_polygons(mask, transform, UTM, simplify_px=1.0)
    pixel_ha = pixel * pixel / 10_000
    assert polys.areas_ha.sum() == pytest.approx(mask.sum() * pixel_ha, rel=0.01)
    assert len(polys.geometries) == 5
    for area, count in zip(polys.areas_ha, _labels(mask, polys, transform)):
        assert area == pytest.approx(count * pixel_ha, rel=0.01)


def test_holes_are_not_counted() -> None:
    mask = np.zeros((200, 200), dtype=np.uint8)
    mask[20:180, 20:180] = 1
    mask[80:120, 80:120] = 0
    polys = extract_polygons(mask, from_origin(500_000.0, 5_000_000.0, 10.0, 10.0), UTM)
    assert len(polys.geometries) == 1 and len(polys.geometries[0].interiors) == 1
    assert polys.areas_ha[0] == pytest.approx((160 * 160 - 40 * 40) * 0.01, rel=0.01)


def test_wgs84_areas_match_geodesic_pixel_areas() -> None:
    mask = blobs(400, 500)
    transform = from_origin(15.0, 60.0, 2e-4, 2e-4)  # ~11 x 22 m pixels at 60 N, shrinking northwards
    polys = extract_polygons(mask, transform, WGS84)
    geod = Geod(ellps="WGS84")
    north = 60.0 - 2e-4 * np.arange(400)
    row_m2 = np.array(
        [abs(geod.polygon_area_perimeter([15.0, 15.0002, 15.0002, 15.0], [n, n, n - 2e-4, n - 2e-4])[0]) for n in north]
    )
    expected_ha = float((mask.sum(axis=1) * row_m2).sum()) / 10_000
    assert polys.areas_ha.sum() == pytest.approx(expected_ha, rel=0.01)


def test_min_area_drops_small_polygons() -> None:
    mask = blobs()
    transform = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
    kept = extract_polygons(mask, transform, UTM, min_area_ha=1.0)  # specks are 0.09 and 0.04 ha
    assert len(kept.geometries) == 3 and (kept.areas_ha >= 1.0).all()


def test_geojson_is_rfc7946_lon_lat_right_hand_and_areas_match_the_returned_outline(rfc7946) -> None:
    transform = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
    polys = extract_polygons(blobs(), transform, UTM, min_area_ha=1.0)
    collection = polygons_geojson(polys)
    assert rfc7946(collection) == [] and "crs" not in collection
    assert any(len(f["geometry"]["coordinates"]) > 1 for f in collection["features"])  # the ring's hole
    lon, lat = np.asarray(collection["features"][0]["geometry"]["coordinates"][0]).T
    assert 14.9 < lon.min() and lon.max() < 15.2 and 45.0 < lat.min() and lat.max() < 45.2
    geod = Geod(ellps="WGS84")
    for feature in collection["features"]:
        measured_ha = abs(geod.geometry_area_perimeter(shape(feature["geometry"]))[0]) / 10_000
        assert feature["properties"]["area_ha"] == pytest.approx(measured_ha, rel=1e-3)


def test_areas_are_of_the_simplified_outline() -> None:
    yy, xx = np.mgrid[:40, :40]
    mask = (((yy - 20) ** 2 + (xx - 20) ** 2) <= 36).astype(np.uint8)  # a 113-pixel disc: simplifying shows
    transform = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
    exact = extract_polygons(mask, transform, UTM, simplify_px=0.0)
    simple = extract_polygons(mask, transform, UTM, simplify_px=1.0)
    assert exact.geometries[0].area == mask.sum() * 100.0  # m2 in UTM: the pixel outline
    assert len(simple.geometries[0].exterior.coords) < len(exact.geometries[0].exterior.coords)
    planar_ratio = simple.geometries[0].area / exact.geometries[0].area
    assert abs(planar_ratio - 1.0) > 0.02  # the outline returned is not the pixel outline
    assert simple.areas_ha[0] / exact.areas_ha[0] == pytest.approx(planar_ratio, rel=1e-6)


def test_summary_reports_valid_area_and_fraction() -> None:
    transform = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
    mask = blobs()
    valid = np.ones_like(mask, dtype=bool)
    valid[:, :40] = False
    mask[~valid] = 0
    polys = extract_polygons(mask, transform, UTM)
    summary = summarize(polys, valid, transform, UTM)
    assert summary.valid_ha == pytest.approx(valid.sum() * 0.01, rel=0.01)
    assert summary.arable_ha == pytest.approx(mask.sum() * 0.01, rel=0.01)
    assert summary.arable_fraction == pytest.approx(mask.sum() / valid.sum(), rel=0.01)
    assert summary.n_polygons == 5 and summary.crs == "EPSG:32633"
    assert valid_area_ha(np.zeros((5, 5), dtype=bool), transform, UTM) == 0.0


def test_empty_mask_gives_empty_collection() -> None:
    transform = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
    polys = extract_polygons(np.zeros((30, 40), dtype=np.uint8), transform, UTM)
    assert polys.geometries == [] and polys.areas_ha.size == 0
    assert polygons_geojson(polys)["features"] == []


def test_sieve_removes_specks_fills_small_holes_and_keeps_nodata_out() -> None:
    from inference.scenes.polygons import sieve_mask

    mask = np.zeros((60, 60), dtype=np.uint8)
    mask[10:40, 10:40] = 1
    mask[20, 20] = 0  # a one-pixel hole in the field
    mask[50, 50] = mask[2, 2:4] = 1  # specks of one and two pixels
    valid = np.ones(mask.shape, dtype=bool)
    valid[30, 30] = False  # nodata inside the field stays not arable
    mask[30, 30] = 0
    sieved = sieve_mask(mask, 4, valid)
    assert sieved[20, 20] == 1 and sieved[50, 50] == 0 and not sieved[2, 2:4].any() and sieved[30, 30] == 0
    assert np.array_equal(sieve_mask(mask, 1, valid), mask) and np.array_equal(sieve_mask(mask, 0), mask)
    transform = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
    assert len(extract_polygons(mask, transform, UTM, sieve_px=0).geometries) == 3
    assert len(extract_polygons(mask, transform, UTM, sieve_px=4, valid=valid).geometries) == 1


def test_polygon_cap_counts_what_would_be_answered() -> None:
    from inference.scenes.polygons import TooManyPolygons

    mask = np.zeros((90, 90), dtype=np.uint8)
    mask[::3, ::3] = 1  # 900 one-pixel regions of 0.01 ha
    transform = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
    with pytest.raises(TooManyPolygons) as raised:
        extract_polygons(mask, transform, UTM, max_polygons=100)
    assert not raised.value.exact and raised.value.limit == 100  # stopped while vectorising
    with pytest.raises(TooManyPolygons) as raised:
        extract_polygons(mask, transform, UTM, min_area_ha=0.001, max_polygons=100)
    assert raised.value.exact and raised.value.count == 900
    assert extract_polygons(mask, transform, UTM, min_area_ha=0.02, max_polygons=100).geometries == []
    assert len(extract_polygons(mask, transform, UTM, max_polygons=900).geometries) == 900
