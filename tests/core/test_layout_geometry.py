import math

import pytest

from comic_studio.core.layout import geometry as geo

SQUARE = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]
TRIANGLE = [(0.0, 0.0), (12.0, 0.0), (0.0, 6.0)]


def test_area_bbox_centroid():
    assert geo.area(SQUARE) == 100
    assert geo.signed_area(SQUARE) > 0  # screen-clockwise is positive
    assert geo.signed_area(SQUARE[::-1]) < 0
    box = geo.bbox(TRIANGLE)
    assert (box.x, box.y, box.w, box.h) == (0, 0, 12, 6)
    assert geo.centroid(TRIANGLE) == pytest.approx((4.0, 2.0))
    assert geo.centroid(SQUARE[::-1]) == pytest.approx((5.0, 5.0))


def test_point_in_polygon_and_containment():
    assert geo.point_in_polygon((5, 5), SQUARE)
    assert not geo.point_in_polygon((11, 5), SQUARE)
    assert geo.point_in_polygon((1, 1), TRIANGLE)
    assert not geo.point_in_polygon((10, 5), TRIANGLE)
    assert geo.polygon_contains(SQUARE, [(1, 1), (2, 1), (2, 2)])
    assert not geo.polygon_contains(SQUARE, [(1, 1), (12, 1), (2, 2)])
    assert geo.polygon_contains(SQUARE[::-1], [(1, 1), (2, 1), (2, 2)])  # either winding


def test_clip_by_half_plane_keeps_the_inside():
    left = geo.clip_half_plane(SQUARE, (1.0, 0.0, 4.0))  # x <= 4
    assert geo.area(left) == pytest.approx(40)
    diag = geo.clip_half_plane(SQUARE, (1 / math.sqrt(2), 1 / math.sqrt(2), 10 / math.sqrt(2)))  # x + y <= 10
    assert geo.area(diag) == pytest.approx(50)
    assert geo.clip_half_plane(SQUARE, (1.0, 0.0, -1.0)) == []


def test_convex_hull_and_convexity():
    pts = [(0, 0), (10, 0), (10, 10), (0, 10), (5, 5), (5, 0)]
    hull = geo.convex_hull(pts)
    assert len(hull) == 4 and geo.area(hull) == 100 and geo.signed_area(hull) > 0
    assert geo.is_convex(SQUARE)
    assert not geo.is_convex([(0, 0), (10, 0), (10, 10), (5, 3), (0, 10)])


def test_cut_with_gutter_and_distances():
    first, second = geo.cut_with_gutter(SQUARE, (1.0, 1.0), 10 / math.sqrt(2) * math.sqrt(2), 2.0)
    assert geo.polygon_distance(first, second) == pytest.approx(2.0)
    assert geo.parallel_edge_distance(((0, 0), (10, 0)), ((3, 4), (0, 4))) == pytest.approx(4)
    assert geo.parallel_edge_distance(((0, 0), (10, 0)), ((0, 4), (3, 8))) is None
    assert geo.polygon_distance(SQUARE, [(13, 0), (20, 0), (20, 5)]) == pytest.approx(3)
    assert geo.overlap_area(SQUARE, [(5, 5), (15, 5), (15, 15), (5, 15)]) == pytest.approx(25)


def test_offset_line_and_intersection():
    line = (0.0, 1.0, 5.0)  # y <= 5
    assert geo.offset_line(line, 2.0) == (0.0, 1.0, 7.0)
    assert geo.intersect_lines((1.0, 0.0, 3.0), line) == pytest.approx((3.0, 5.0))
    assert geo.intersect_lines(line, (0.0, 1.0, 9.0)) is None


def test_mirror_and_canonical():
    mirrored = geo.mirror_x(TRIANGLE, 20)
    assert geo.signed_area(mirrored) == pytest.approx(geo.signed_area(TRIANGLE))
    assert sorted(mirrored) == sorted([(20, 0), (8, 0), (20, 6)])
    canon = geo.canonical([(10, 10), (0, 10), (0, 0), (5, 0), (10, 0)])
    assert canon == [(0, 0), (10, 0), (10, 10), (0, 10)]
    assert geo.min_width([(0, 0), (10, 0), (10, 3), (0, 3)]) == pytest.approx(3)
