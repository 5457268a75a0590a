"""The live picture for the grey and colour panels: YUV→RGB, RGB565 packing, the crop and the flip."""

from __future__ import annotations

import numpy as np

from ui.picture import picture, rgb565, yuv_to_rgb


def _planes(y: int, u: int, v: int, size=(4, 6)):
    rows, cols = size
    return (np.full(size, y, np.uint8), np.full((rows // 2, cols // 2), u, np.uint8),
            np.full((rows // 2, cols // 2), v, np.uint8))


def test_bt601_primaries_and_the_grey_axis():
    def one(y, u, v):
        return tuple(int(c) for c in yuv_to_rgb(*(np.array([[p]], np.uint8) for p in (y, u, v)))[0, 0])

    assert one(16, 128, 128) == (0, 0, 0)
    assert one(235, 128, 128) == (255, 255, 255)
    r, g, b = one(81, 90, 240)  # BT.601 studio-range red
    assert r >= 250 and g <= 3 and b <= 3
    r, g, b = one(41, 240, 110)  # blue
    assert b >= 250 and r <= 3 and g <= 3


def test_rgb565_is_big_endian_five_six_five():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    assert rgb565(rgb) == bytes.fromhex("f800 07e0 001f ffff")
    assert len(rgb565(np.zeros((240, 320, 3), np.uint8))) == 320 * 240 * 2


def test_colour_picture_from_three_planes_and_grey_from_luma():
    y, u, v = _planes(81, 90, 240)
    r, g, b = picture((y, u, v), 8, 4, flip=True, colour=True).getpixel((3, 2))
    assert r > 240 and g < 10 and b < 10
    assert picture((y, u, v), 8, 4, flip=True, colour=False).getpixel((3, 2)) == picture(
        y, 8, 4, flip=True, colour=True).getpixel((3, 2))  # luma only: grey on a colour panel too


def test_the_picture_is_mirrored_left_right():
    y = np.zeros((9, 16), np.uint8)
    y[:, :4] = 235  # a bright left edge
    u = np.full((5, 8), 128, np.uint8)
    flipped = np.asarray(picture((y, u, u), 16, 9, flip=True, colour=True))
    straight = np.asarray(picture((y, u, u), 16, 9, flip=False, colour=True))
    assert flipped[4, -1, 0] > 200 and flipped[4, 0, 0] < 50
    assert straight[4, 0, 0] > 200 and straight[4, -1, 0] < 50


def test_the_cameras_planes_are_never_written():
    planes = _planes(120, 100, 150)
    for plane in planes:
        plane.flags.writeable = False
    picture(planes, 8, 4, flip=True, colour=True)
    picture(planes[0], 8, 4, flip=True, colour=False)
