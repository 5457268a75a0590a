"""Message formats (comms.protocol), receipts (evidence.receipts), the receipt key files and the settings."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from base.config import parse_section
from base.errors import ConfigError
from evidence.keys import KeyFileError, generate_device_key, generate_receipt_key, load_device_public_keys, load_receipt_public_key, load_receipt_signing_key
from evidence.spool import CorruptSegmentError
from comms import protocol
from comms.protocol import Offer, ProtocolError, Status, decode_chunk, encode_chunk
from evidence.receipts import ReceiptError, sign_receipt, verify_receipt
from backoffice.settings import EXAMPLE_RECEIVER_TOML, loads_receiver_config
from comms.settings import MqttSettings, UplinkSettings
from comms.transfer import BytesSource, Phase, SegmentTransfer

SHA = "ab" * 32


# -- topics -----------------------------------------------------------------------------------------------

def test_topics_are_confined_to_the_device_namespace():
    assert protocol.up_topic("duisburg", "kod-07", "chunk") == "bodycam/duisburg/kod-07/up/seg/chunk"
    assert protocol.down_topic("duisburg", "kod-07", "receipt") == "bodycam/duisburg/kod-07/down/seg/receipt"
    assert protocol.receiver_filter("rx") == "$share/rx/bodycam/+/+/up/seg/+"
    route = protocol.parse_topic("bodycam/duisburg/kod-07/up/seg/offer")
    assert (route.site, route.device, route.direction, route.kind) == ("duisburg", "kod-07", "up", "offer")
    for bad in ("bodycam/duisburg/kod-07/up/seg/receipt", "bodycam/Duisburg/kod-07/up/seg/offer",
                "bodycam/duisburg/+/up/seg/offer", "other/duisburg/kod-07/up/seg/offer", "bodycam/a/b/up/offer"):
        with pytest.raises(ProtocolError):
            protocol.parse_topic(bad)
    with pytest.raises(ProtocolError):
        protocol.up_topic("duisburg", "kod/07", "chunk")


# -- offers, chunks, status -------------------------------------------------------------------------------

def test_offer_round_trip_and_its_checks():
    manifest = b'{"format":"bodycam-segment/1"}\n'
    offer = Offer("kod-07-0000000042", 42, 1_000_000, SHA, 256 * 1024, manifest)
    back = Offer.decode(offer.encode())
    assert back == offer and back.chunks == 4 and back.manifest == manifest
    doc = json.loads(offer.encode())
    for change, code in [({"chunks": 5}, "malformed"), ({"v": 2}, "unsupported_version"), ({"seq": 41}, "malformed"),
                         ({"chunk_size": 5000}, "malformed"), ({"sha256": "xyz"}, "malformed")]:
        with pytest.raises(ProtocolError) as err:
            Offer.decode(json.dumps({**doc, **change}).encode())
        assert err.value.code == code
        assert err.value.stem == ("kod-07-0000000042" if code == "malformed" else None)
    with pytest.raises(ProtocolError) as err:
        Offer.decode(b"x" * (protocol.MAX_OFFER_BYTES + 1))
    assert err.value.code == "oversize"


def test_chunk_round_trip_and_damage():
    data = os.urandom(8192)
    payload = encode_chunk("kod-07-0000000001", 2, 5, 2 * 8192, memoryview(data), SHA, 8192)
    header, body = decode_chunk(payload, 1 << 20)
    assert (header.index, header.chunks, header.offset, header.length, header.chunk_size) == (2, 5, 16384, 8192, 8192)
    assert bytes(body) == data and header.sha256 == hashlib.sha256(data).hexdigest()
    damaged = bytearray(payload)
    damaged[-1] ^= 1
    with pytest.raises(ProtocolError) as err:
        decode_chunk(bytes(damaged), 1 << 20)
    assert err.value.code == "bad_chunk" and err.value.stem == "kod-07-0000000001"
    assert decode_chunk(bytes(damaged), 1 << 20, verify=False)[0].index == 2  # the receiver checks at assembly
    for bad, code in [(b"XXXX" + payload[4:], "malformed"), (payload[:10], "malformed"),
                      (payload[:4] + b"\x09" + payload[5:], "unsupported_version")]:
        with pytest.raises(ProtocolError) as err:
            decode_chunk(bad, 1 << 20)
        assert err.value.code == code
    with pytest.raises(ProtocolError) as err:
        decode_chunk(payload, 4096)
    assert err.value.code == "oversize"
    wrong_offset = encode_chunk("kod-07-0000000001", 2, 5, 1000, data, SHA, 8192)
    with pytest.raises(ProtocolError):
        decode_chunk(wrong_offset, 1 << 20)


def test_status_round_trip_and_ranges():
    assert protocol.to_ranges({0, 1, 2, 5, 7, 8}) == ((0, 3), (5, 6), (7, 9))
    st = Status("kod-07-0000000001", protocol.RECEIVING, "bo-recv-1", ((0, 3), (5, 6)), sha256=SHA, chunk_size=8192)
    back = Status.decode(st.encode())
    assert back == st and back.indices() == {0, 1, 2, 5}
    rej = Status(None, protocol.REJECTED, "bo-recv-1", code="unknown_device", reason="not enrolled")
    assert Status.decode(rej.encode()).code == "unknown_device"
    with pytest.raises(ProtocolError):
        Status.decode(b'{"v":1,"type":"status","stem":null,"state":"rejected","receiver":"r","have":[]}')
    with pytest.raises(ProtocolError):
        Status.decode(b'{"v":1,"type":"status","stem":null,"state":"receiving","receiver":"r","have":[[3,1]]}')


# -- receipts and the receipt key -------------------------------------------------------------------------

@pytest.fixture
def receipt_keys(tmp_path):
    generate_receipt_key(tmp_path)
    return load_receipt_signing_key(tmp_path / "receipt.key"), load_receipt_public_key(tmp_path / "receipt.pub")


def make_receipt(key, **change):
    fields = dict(device_id="kod-07", site="duisburg", stem="kod-07-0000000001", seq=1, incident_id="inc-1",
                  ciphertext_sha256=SHA, ciphertext_bytes=10, manifest_sha256="cd" * 32, receiver_id="bo-recv-1",
                  chain="first", received_at=time.time())
    fields.update(change)
    return sign_receipt(key, **fields)


def test_receipts_verify_with_the_receipt_key_only(tmp_path, receipt_keys):
    private, public = receipt_keys
    data = make_receipt(private)
    receipt = verify_receipt(data, public)
    assert (receipt.stem, receipt.ciphertext_sha256, receipt.chain) == ("kod-07-0000000001", SHA, "first")
    (tmp_path / "other").mkdir()
    generate_receipt_key(tmp_path / "other")
    with pytest.raises(ReceiptError, match="not with the configured receipt key"):
        verify_receipt(make_receipt(load_receipt_signing_key(tmp_path / "other" / "receipt.key")), public)
    doc = json.loads(data)
    doc["ciphertext_sha256"] = "00" * 32
    forged = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    with pytest.raises(ReceiptError, match="does not verify"):
        verify_receipt(forged, public)
    with pytest.raises(ReceiptError, match="canonical"):
        verify_receipt(json.dumps(json.loads(data), indent=1).encode(), public)
    with pytest.raises(ReceiptError):
        verify_receipt(b"garbage", public)
    with pytest.raises(ReceiptError, match="cannot sign"):
        make_receipt(private, chain="maybe")


def test_the_receipt_key_cannot_pass_as_a_device_key_nor_the_reverse(tmp_path, receipt_keys):
    (tmp_path / "devices").mkdir()
    os.link(tmp_path / "receipt.pub", tmp_path / "devices" / "receipt.pub")
    with pytest.raises(KeyFileError, match="not a device public key"):
        load_device_public_keys([tmp_path / "devices"])
    generate_device_key(tmp_path / "devices", device_id="kod-07")
    with pytest.raises(KeyFileError, match="not a receipt public key"):
        load_receipt_public_key(tmp_path / "devices" / "device.pub")
    os.chmod(tmp_path / "receipt.key", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_receipt_signing_key(tmp_path / "receipt.key")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        generate_receipt_key(tmp_path)


# -- settings ---------------------------------------------------------------------------------------------

def test_device_sections_validate_like_the_agents_own():
    up = parse_section(UplinkSettings, {"chunk_kib": 64, "window": 8}, "uplink", "agent.toml")
    assert up.chunk_kib == 64 and up.segments_ahead == 4
    with pytest.raises(ConfigError, match="uplink.chunk_kib = 2 is out of range"):
        parse_section(UplinkSettings, {"chunk_kib": 2}, "uplink", "agent.toml")
    with pytest.raises(ConfigError, match="unknown key"):
        parse_section(UplinkSettings, {"chunk_size": 64}, "uplink", "agent.toml")
    with pytest.raises(ConfigError, match="multiple of 4"):
        parse_section(UplinkSettings, {"chunk_kib": 6}, "uplink", "agent.toml")
    mqtt = parse_section(MqttSettings, {"host": "mqtt.city", "port": 8883, "session_expiry_s": 3600}, "mqtt", "x")
    assert mqtt.client_id == "" and mqtt.keepalive_s == 30
    with pytest.raises(ConfigError, match="whole number"):
        parse_section(MqttSettings, {"port": "8883"}, "mqtt", "x")


def test_receiver_config_file(tmp_path, monkeypatch):
    cfg = loads_receiver_config(EXAMPLE_RECEIVER_TOML, "receiver.toml")
    assert cfg.receiver.id == "receiver-1" and cfg.mqtt.port == 8883 and cfg.receiver.share_group == ""
    with pytest.raises(ConfigError, match=r"unknown section \[uplink\]"):
        loads_receiver_config("[uplink]\nwindow = 3\n", "r.toml")
    with pytest.raises(ConfigError, match="receiver.id"):
        loads_receiver_config('[receiver]\nid = "Receiver One"\n', "r.toml")
    with pytest.raises(ConfigError, match="reconnect_min_s"):
        loads_receiver_config("[mqtt]\nreconnect_min_s = 10.0\nreconnect_max_s = 1.0\n", "r.toml")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    mqtt = parse_section(MqttSettings, {"key_file": "client.key"}, "mqtt", "x")
    assert mqtt.resolved("key_file") == str(tmp_path / "client.key")


# -- a transfer's bookkeeping -------------------------------------------------------------------------------

class FailingSource(BytesSource):
    """The card starts returning errors after ``good`` reads."""

    def __init__(self, data: bytes, good: int):
        super().__init__(data)
        self.good, self.closed = good, False

    def read(self, offset: int, length: int) -> bytes:
        if self.good == 0:
            raise CorruptSegmentError("the card returned other bytes")
        self.good -= 1
        return super().read(offset, length)

    def close(self) -> None:
        self.closed = True


def test_a_transfer_reads_chunks_from_its_source_and_keeps_them_queued_when_a_read_fails():
    data = os.urandom(10 * 1024 + 5)
    sha = hashlib.sha256(data).hexdigest()
    t = SegmentTransfer(stem="kod-07-0000000001", seq=1, sha256=sha, size=len(data), chunk_size=4096)
    source = FailingSource(data, good=2)
    t.loaded(source, b"{}")
    t.offered(deadline=0.0)
    t.receiver_has(set())
    sent = [t.next_chunk(), t.next_chunk()]
    assert [index for index, _ in sent] == [0, 1]
    header, body = protocol.decode_chunk(sent[1][1], 4096)
    assert bytes(body) == data[4096:8192] and header.offset == 4096
    with pytest.raises(CorruptSegmentError):
        t.next_chunk()
    assert list(t.to_send) == [2] and t.inflight == {0, 1}  # nothing changed by the failed read
    source.good = 1
    assert t.next_chunk()[0] == 2
    assert t.next_chunk() is None  # every chunk is in flight
    for index in (0, 1, 2):
        t.acked(index, ok=True)
    assert t.phase is Phase.SENT and source.closed and t.source is None  # the file is closed once all is sent
