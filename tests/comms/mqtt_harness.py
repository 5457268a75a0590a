"""The comms tests' broker and PKI: the product's own throw-away broker (backoffice.localbroker)."""

from backoffice.localbroker import HOST, MOSQUITTO, Broker, Credentials, Pki, acl_text, free_port  # noqa: F401
