"""DSSE, the Dead Simple Signing Envelope: how an in-toto statement travels signed.

An attestation file (``*.intoto.jsonl``) is one line of JSON: the statement's bytes in base64
(``payload``), their type, and one signature over DSSE's pre-authentication encoding (PAE) of the
two, never over the JSON itself. The signature is the release key's: plain Ed25519 over the PAE for
a minisign key (which securesystemslib's ``SSlibKey`` checks with the raw public key), a binary
detached OpenPGP signature over the PAE for an OpenPGP key (which ``sqv`` and ``gpg`` check).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

#: What the payload is: an in-toto statement, as the in-toto attestation framework names it.
PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: An envelope is a few kilobytes per hundred files; a larger file named like one is not ours.
MAX_BYTES = 32 << 20


class EnvelopeError(ValueError):
    """A file that is not one envelope as this program writes it; the message says what is wrong."""


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    #: The signer's key id, as the envelope names it (not proof of anything: the signature is).
    key_id: str
    signature: bytes

    @property
    def signed_bytes(self) -> bytes:
        return pae(self.payload_type, self.payload)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1's pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def dumps(envelope: Envelope) -> bytes:
    """The attestation file: one JSON line, with its line break."""
    document = {
        "payloadType": envelope.payload_type,
        "payload": base64.b64encode(envelope.payload).decode("ascii"),
        "signatures": [{"keyid": envelope.key_id, "sig": base64.b64encode(envelope.signature).decode("ascii")}],
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8") + b"\n"


def loads(data: bytes) -> Envelope:
    """The one envelope in an attestation file written as ``dumps`` writes it; EnvelopeError otherwise.
    A second line, a second signature or anything else around it would let the file say two things."""
    if len(data) > MAX_BYTES:
        raise EnvelopeError(f"it is larger than {MAX_BYTES >> 20} MiB")
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise EnvelopeError("it is not one line of JSON (a DSSE envelope)") from None
    if not isinstance(document, dict) or set(document) != {"payloadType", "payload", "signatures"}:
        raise EnvelopeError("it is not a DSSE envelope (payloadType, payload, signatures)")
    signatures = document["signatures"]
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], dict):
        raise EnvelopeError("it does not hold exactly one signature")
    try:
        envelope = Envelope(
            payload=_base64(document["payload"]),
            payload_type=document["payloadType"],
            key_id=signatures[0]["keyid"],
            signature=_base64(signatures[0]["sig"]),
        )
    except (KeyError, TypeError):
        raise EnvelopeError("its signature lacks a keyid or a sig") from None
    if not isinstance(envelope.payload_type, str) or not isinstance(envelope.key_id, str):
        raise EnvelopeError("its payloadType or keyid is not text")
    if dumps(envelope) != data:
        raise EnvelopeError("it is not written as this program writes an envelope (one line, nothing else)")
    return envelope


def _base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("its payload or signature is not base64") from None
