"""--region: parsing, the bounds check, and the mass fraction and peak inside the box."""

from __future__ import annotations

import numpy as np
import pytest

from service.cli.audit.region import Region, fraction, parse_region, peak_inside


def test_parse_region_reads_four_integers():
    assert parse_region("82,82,92,92") == Region(82, 82, 92, 92)
    assert parse_region(" 0, 1 ,2,3") == Region(0, 1, 2, 3)


@pytest.mark.parametrize(
    "text", ["1,2,3", "1,2,3,4,5", "a,b,c,d", "1.5,2,3,4", "", "1,,3,4", "²,1,2,3", "9" * 40 + ",1,2,3"]
)
def test_parse_region_refuses_anything_else_in_one_line(text):
    with pytest.raises(ValueError) as info:
        parse_region(text)
    assert str(info.value).startswith("--region ") and "expected four integers x0,y0,x1,y1" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "box", [(0, 0, 97, 10), (-1, 0, 5, 5), (5, 5, 5, 9), (5, 9, 6, 9), (10, 0, 5, 5), (0, 90, 5, 97)]
)
def test_a_box_outside_the_input_or_empty_is_refused(box):
    with pytest.raises(ValueError, match=r"^--region .*: not a non-empty box inside the model's 96x96 input"):
        Region(*box).within(96, 96)


def test_the_whole_input_is_a_region():
    region = Region(0, 0, 96, 64).within(96, 64)
    assert region.share(96, 64) == 1.0 and Region(82, 82, 92, 92).share(96, 96) == 100 / 9216


def test_fraction_is_the_share_of_the_mass_inside_the_half_open_box():
    saliency = np.zeros((4, 6), dtype=np.float32)
    saliency[1, 2] = 3.0  # inside: x=2, y=1
    saliency[1, 4] = 1.0  # x=4 = x1: outside (half-open)
    saliency[3, 0] = 4.0
    region = Region(1, 0, 4, 2)
    assert fraction(saliency, region) == pytest.approx(3 / 8)
    assert fraction(np.zeros((4, 6), np.float32), region) is None  # no mass: no fraction
    assert not peak_inside(saliency, region)
    saliency[1, 3] = 5.0
    assert peak_inside(saliency, region) and fraction(saliency, region) == pytest.approx(8 / 13)
