"""Officer check-out: the badge table the back office provisions reads, and the NFC reader answers."""

from __future__ import annotations

from base.errors import BodycamError

from ..badgetable import BadgeTable
from .check import Check, fail, ok, skip
from .context import Context

PROVISION = ("the back office provisions it (docs/OFFICER.md): badge UID = pseudonymous officer id under "
             "[badges]; checkout.badges names the file")
WIRING = ("check the PN532 HAT's I2C mode switches and wiring, 'i2cdetect -y {port}' (it answers at 0x{address:02x}), "
          "and checkout.nfc_i2c_port / nfc_i2c_address")


def check_checkout(ctx: Context) -> Check:
    """With check-out on: the badge table parses (and how many badges it lists), and the PN532 answers with its
    firmware version. Officers can still be assigned by the back office's command when either fails."""
    co = ctx.config.checkout
    if not co.enabled:
        return skip("checkout", "officer check-out is off (checkout.enabled = false)")
    table = BadgeTable(co.badges)
    try:
        table.officer("00000000")  # reads and checks the whole file
    except BodycamError as exc:
        return fail("checkout", f"badge table: {exc}", PROVISION)
    badges = f"badge table {co.badges}: {len(table)} badge(s)"
    if co.nfc_reader == "none":
        return ok("checkout", f"{badges}; no NFC reader (assignment by the back office's command only)")
    from ui.nfc import open_pn532

    try:
        reader = open_pn532(co.nfc_i2c_port, co.nfc_i2c_address, bus=ctx.i2c_bus)
    except BodycamError as exc:
        return fail("checkout", f"{badges}; the NFC reader does not answer ({exc})",
                    WIRING.format(port=co.nfc_i2c_port, address=co.nfc_i2c_address))
    try:
        ic, version, revision, _ = reader.firmware_version()
    finally:
        reader.close()
    return ok("checkout", f"{badges}; NFC reader PN5{ic:02x} firmware {version}.{revision} on I2C bus "
                          f"{co.nfc_i2c_port} at 0x{co.nfc_i2c_address:02x}")
