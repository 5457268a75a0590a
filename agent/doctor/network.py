"""The broker check: reach the configured broker with the device's TLS files and see it accept the
device (comms.probe), and say which part was refused."""

from __future__ import annotations

import os
import socket
import ssl
import stat
from pathlib import Path

from comms.probe import CONNACK_REASONS, BrokerProtocolError, probe_broker, tls_context

from .check import Check, fail, ok, skip, warn
from .context import Context
from .local import SUDO


def check_broker(ctx: Context) -> Check:
    if not ctx.config.uplink.enabled:
        return skip("broker", "uploading is switched off (uplink.enabled = false): segments stay on the card")
    mqtt = ctx.config.mqtt
    if not mqtt.host:
        return warn("broker", "no broker configured: segments stay on the card",
                    "enter the municipality's broker (host, port, ca_file, cert_file, key_file) in the [mqtt] section")
    problem = _tls_files_problem(mqtt)
    if problem:
        return problem
    cert, key = mqtt.resolved("cert_file"), mqtt.resolved("key_file")
    try:
        context = tls_context(mqtt)
    except ssl.SSLError as exc:
        return fail("broker", f"client certificate {cert} and key {key} do not fit together ({exc.reason})",
                    "install the certificate the CA issued for this device's client.csr")
    except PermissionError:
        return warn("broker", f"cannot read {key} as this user", SUDO)
    return _probe(mqtt, context, ctx.config.device.id)


def _tls_files_problem(mqtt) -> Check | None:
    key = mqtt.resolved("key_file")
    csr = Path(key).with_name("client.csr")
    for what, path, fix in (
            ("CA certificate", mqtt.ca_file,
             "copy the municipality CA's certificate there (see docs/INSTALL.md, enrolment)"),
            ("client certificate", mqtt.resolved("cert_file"),
             f"have the CA sign {csr} and install the certificate there"),
            ("client key", key, "run 'sudo install.sh', which creates the key and its certificate request")):
        if not path:
            return fail("broker", f"no {what} configured in [mqtt]", f"set it; {fix}")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return fail("broker", f"{what} {path} not found", fix)
        except PermissionError:
            return warn("broker", f"cannot look at {path} as this user", SUDO)
        if what == "client key" and st.st_mode & 0o077:
            return fail("broker", f"{path} has mode {stat.filemode(st.st_mode)}: other users can read the key",
                        f"run 'sudo chmod 600 {path}'")
    return None


def _probe(mqtt, context: ssl.SSLContext, device_id: str) -> Check:
    where = f"{mqtt.host}:{mqtt.port}"
    try:
        code = probe_broker(mqtt, context, client_id=device_id)
    except socket.gaierror:
        return fail("broker", f"cannot resolve {mqtt.host}", "check the host name in [mqtt] and the device's DNS")
    except ssl.SSLCertVerificationError as exc:
        return fail("broker", f"{where}: the broker's certificate is not trusted ({exc.verify_message})",
                    "check [mqtt] ca_file is the CA that signed the broker's certificate and the host name matches it")
    except ssl.SSLError as exc:
        return fail("broker", f"{where} rejected the TLS connection ({exc.reason or exc})",
                    "the broker does not accept this device's certificate: check client.crt was signed by the CA "
                    "the broker trusts and has not expired or been revoked")
    except (ConnectionRefusedError, TimeoutError) as exc:
        return fail("broker", f"cannot reach {where} ({exc.strerror or 'timed out'})",
                    "check the network, the host and port in [mqtt], and that the broker runs")
    except (OSError, BrokerProtocolError) as exc:
        return fail("broker", f"{where}: {exc}", "check the host and port in [mqtt] point to an MQTT broker over TLS")
    if code != 0:
        reason = CONNACK_REASONS.get(code, f"refused with code {code}")
        return fail("broker", f"{where} accepted TLS but refused the MQTT connection: {reason}",
                    "ask the broker's administrator to allow this device (its certificate's CN is the device id)")
    return ok("broker", f"{where}: TLS verified, client certificate accepted (MQTT CONNACK 0)")
