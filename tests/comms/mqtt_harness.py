"""The comms tests' broker and PKI: the product's own throw-away broker (comms.localbroker)."""

from comms.localbroker import HOST, MOSQUITTO, Broker, Credentials, Pki, acl_text, free_port  # noqa: F401
