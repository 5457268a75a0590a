"""ui.oled's numpy packing sends exactly the bytes luma.oled's own drivers send, for every rotation."""

from __future__ import annotations

import numpy as np
import pytest
from luma.core.interface.serial import i2c
from luma.oled.device import sh1106, ssd1306, ssd1309
from PIL import Image

from ui.oled import DRIVERS


class RecordingBus:
    def __init__(self):
        self.log = []

    def write_i2c_block_data(self, address, register, data):
        self.log.append((address, register, list(data)))


STOCK = {"ssd1306": ssd1306, "ssd1309": ssd1309, "sh1106": sh1106}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # luma.oled's own packing uses Image.getdata
@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("size", [(128, 64), (128, 32)])
@pytest.mark.parametrize("rotate", [0, 1, 2, 3])
def test_same_bus_traffic_as_luma(driver, size, rotate):
    rng = np.random.default_rng(rotate)
    buses = {}
    for name, cls in (("ours", DRIVERS[driver]), ("luma", STOCK[driver])):
        bus = RecordingBus()
        device = cls(i2c(bus=bus, address=0x3C), width=size[0], height=size[1], rotate=rotate)
        bus.log.clear()
        for _ in range(3):
            frame = Image.fromarray(rng.random((device.height, device.width)) > 0.5)
            device.display(frame)
        rng = np.random.default_rng(rotate)  # the same frames for the other driver
        buses[name] = bus.log
    assert buses["ours"] == buses["luma"] and buses["ours"]


def test_a_frame_of_the_wrong_size_is_refused():
    device = DRIVERS["ssd1306"](i2c(bus=RecordingBus()))
    with pytest.raises(ValueError, match=r"the display needs 1 \(128, 64\)"):
        device.display(Image.new("1", (64, 32)))
