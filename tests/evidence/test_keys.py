"""Key files: stock-age compatible, private files 0600, never overwritten, clear errors when damaged."""

import os
import stat
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from base.errors import BodycamError
from evidence.keys import KeyFileError, generate_device_key, generate_evidence_keys, load_device_public_keys, load_evidence_identities, load_recipients, load_signing_key, parse_device_public_key, recipient_bytes


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_evidence_key_is_a_stock_age_identity_file(tmp_path):
    files = generate_evidence_keys(tmp_path)
    text = files.identity_path.read_text()
    assert mode(files.identity_path) == 0o600
    assert text.startswith("# created: ")
    assert f"# public key: {files.recipient}\n" in text
    assert text.splitlines()[-1].startswith("AGE-SECRET-KEY-1")
    assert files.recipient_path.read_text() == files.recipient + "\n"
    # age-keygen -y derives the recipient from the identity file: same as evidence.pub
    derived = subprocess.run(["age-keygen", "-y", str(files.identity_path)], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert derived == files.recipient
    assert str(load_evidence_identities(files.identity_path)[0].to_public()) == files.recipient


def test_age_keygen_files_load_too(tmp_path):
    path = tmp_path / "k.txt"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    os.chmod(path, 0o600)
    assert len(load_evidence_identities(path)) == 1


def test_device_key_files(tmp_path):
    files = generate_device_key(tmp_path, device_id="kod-07")
    assert mode(files.key_path) == 0o600
    assert files.key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    line = files.pub_path.read_text().strip()
    assert line.startswith("ed25519:") and line.endswith(" kod-07")
    key = load_signing_key(files.key_path)
    assert key.key_id == files.public.key_id
    assert len(key.key_id) == 16 and int(key.key_id, 16) >= 0
    pub = parse_device_public_key(line)
    assert pub.device_id == "kod-07"
    assert pub.verify(key.sign(b"x"), b"x") and not pub.verify(key.sign(b"x"), b"y")


@pytest.mark.parametrize("generate", [generate_evidence_keys, generate_device_key])
def test_existing_keys_are_never_overwritten_without_force(tmp_path, generate):
    first = generate(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(KeyFileError, match="already exists"):
        generate(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    second = generate(tmp_path, force=True)
    assert second != first
    assert {p.name for p in tmp_path.iterdir()} == set(before)  # no tmp files left
    assert mode(next(p for p in tmp_path.iterdir() if p.name.endswith(".key"))) == 0o600


def test_half_a_pair_blocks_creation_without_writing_the_other_half(tmp_path):
    (tmp_path / "evidence.pub").write_text("age1old\n")
    with pytest.raises(KeyFileError, match="evidence.pub already exists"):
        generate_evidence_keys(tmp_path)
    assert not (tmp_path / "evidence.key").exists()


def test_missing_output_dir(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        generate_evidence_keys(tmp_path / "nope")


@pytest.mark.parametrize("content, message", [
    ("AGE-SECRET-KEY-1QQQQ\n", "damaged age identity"),
    ("# only a comment\n", "holds no age identity"),
    ("hello world\n", "not an age identity"),
    (b"\xff\xfe\x00", "not a text key file"),
])
def test_corrupt_identity_files(tmp_path, content, message):
    path = tmp_path / "evidence.key"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=message):
        load_evidence_identities(path)


def test_identity_not_matching_its_public_key_comment(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    generate_evidence_keys(a)
    other = generate_evidence_keys(b)
    lines = (a / "evidence.key").read_text().splitlines()
    lines[1] = f"# public key: {other.recipient}"
    (a / "evidence.key").write_text("\n".join(lines) + "\n")
    with pytest.raises(KeyFileError, match="does not match"):
        load_evidence_identities(a / "evidence.key")


def test_private_keys_readable_by_others_are_refused(tmp_path):
    generate_evidence_keys(tmp_path)
    generate_device_key(tmp_path)
    for name, load in (("evidence.key", load_evidence_identities), ("device.key", load_signing_key)):
        (tmp_path / name).chmod(0o644)
        with pytest.raises(KeyFileError, match="chmod 600"):
            load(tmp_path / name)


def test_missing_key_files(tmp_path):
    for load in (load_evidence_identities, load_signing_key):
        with pytest.raises(KeyFileError, match="not found"):
            load(tmp_path / "nope.key")
    with pytest.raises(KeyFileError, match="not found"):
        load_recipients([tmp_path / "nope.pub"])
    with pytest.raises(KeyFileError, match="not found"):
        load_device_public_keys([tmp_path / "nope.pub"])


def test_corrupt_and_wrong_type_device_keys(tmp_path):
    bad = tmp_path / "device.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    bad.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a readable PEM"):
        load_signing_key(bad)
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    bad.write_bytes(ec_pem)
    with pytest.raises(KeyFileError, match="must be Ed25519"):
        load_signing_key(bad)
    for line in ("ed25519:!!!", "ed25519:AAAA", "ssh-ed25519 AAAA", "ed25519:" + "A" * 43 + "= Bad Id"):
        with pytest.raises(KeyFileError):
            parse_device_public_key(line)


def test_recipients_must_not_be_empty_or_damaged(tmp_path):
    with pytest.raises(KeyFileError, match="no recipients"):
        load_recipients([])
    empty = tmp_path / "r.pub"
    empty.write_text("# nothing here\n")
    with pytest.raises(KeyFileError, match="no age1"):
        load_recipients([empty])
    with pytest.raises(KeyFileError, match="damaged age recipient"):
        load_recipients(["age1qqqqqqqqqqqqqqqqqqqqqqqqqqqq"])
    files = generate_evidence_keys(tmp_path)
    # a string and a file holding the same key count once
    assert len(load_recipients([files.recipient, files.recipient_path])) == 1


def test_device_key_dir_skips_age_recipients_and_needs_one_key(tmp_path):
    generate_evidence_keys(tmp_path)
    with pytest.raises(KeyFileError, match="no enrolled device"):
        load_device_public_keys([tmp_path])
    (tmp_path / "d").mkdir()
    files = generate_device_key(tmp_path / "d", device_id="kod-07")
    keys = load_device_public_keys([tmp_path])
    assert list(keys) == [files.public.key_id]


def test_recipient_bytes_checks_the_bech32_checksum(tmp_path):
    recipient = generate_evidence_keys(tmp_path).recipient
    assert len(recipient_bytes(recipient)) == 32
    damaged = recipient[:-1] + ("q" if recipient[-1] != "q" else "p")
    with pytest.raises(KeyFileError, match="checksum"):
        recipient_bytes(damaged)
    with pytest.raises(KeyFileError):
        recipient_bytes("age1" + recipient[4:-7] + recipient[-6:])  # one character short


def test_key_errors_are_bodycam_errors():
    assert issubclass(KeyFileError, BodycamError)


def test_a_command_key_can_never_be_enrolled_as_a_device(tmp_path, caplog):
    from evidence.keys import COMMAND_PUB_PREFIX, KEY_KINDS, generate_command_key, load_command_public_key

    files = generate_command_key(tmp_path)
    line = files.pub_path.read_text().strip()
    assert line.startswith(COMMAND_PUB_PREFIX)
    with pytest.raises(KeyFileError, match="not a device public key|expected"):
        parse_device_public_key(line)
    with pytest.raises(KeyFileError):
        load_device_public_keys([files.pub_path])
    assert load_command_public_key(files.pub_path).key_id == files.public.key_id
    assert stat.S_IMODE(os.stat(files.key_path).st_mode) == 0o600
    signer = load_signing_key(files.key_path)
    assert files.public.verify(signer.sign(b"start"), b"start")
    prefixes = [kind.public_prefix for kind in KEY_KINDS]
    assert len(set(prefixes)) == len(prefixes) == 5  # one prefix per kind, none a prefix of another's line
    assert not any(a != b and b.startswith(a) for a in prefixes for b in prefixes)


def test_an_old_command_pub_with_the_device_prefix_still_loads_with_a_warning(tmp_path, caplog):
    import base64

    from evidence.keys import generate_command_key, load_command_public_key

    files = generate_command_key(tmp_path)
    raw = base64.b64encode(files.public.key.public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw)).decode()
    old = tmp_path / "old-command.pub"
    old.write_text(f"ed25519:{raw} command\n")  # as 'bodycam keys command' wrote it before key kinds had prefixes
    with caplog.at_level("WARNING"):
        key = load_command_public_key(old)
    assert key.key_id == files.public.key_id
    assert "re-issue it with 'bodycam keys command'" in caplog.text


def test_the_office_audit_key_is_a_kind_of_its_own(tmp_path):
    from evidence.keys import OFFICE_PUB_PREFIX, generate_office_key, load_office_public_key, load_office_signing_key

    files = generate_office_key(tmp_path)
    line = files.pub_path.read_text().strip()
    assert line.startswith(OFFICE_PUB_PREFIX)
    assert stat.S_IMODE(os.stat(files.key_path).st_mode) == 0o600
    with pytest.raises(KeyFileError):
        parse_device_public_key(line)
    signer = load_office_signing_key(files.key_path)
    assert load_office_public_key(files.pub_path).verify(signer.sign(b"log"), b"log")
    with pytest.raises(KeyFileError, match="not an office public key"):
        load_office_public_key(files.pub_path.with_name("x.pub").write_text(line.replace("office", "command")) and
                               files.pub_path.with_name("x.pub"))
