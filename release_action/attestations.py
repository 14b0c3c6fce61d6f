"""What the release publishes about its files, after them: provenance, checksums, signatures.

Each is one more file of the release, made from the digests the uploads computed, and published
and verified like the others. With a key, the provenance and the release attestation (the list of
every file) are signed DSSE envelopes (``*.intoto.jsonl``). A re-run changes none of them when nothing
they speak of changed: a statement of the same build is kept with its first run's details, and a
signature or envelope already on the release is kept while it verifies, with this run's key, over
the bytes published now.
"""

from __future__ import annotations

import datetime
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import checksums, envelopes, provenance, release_attestation
from .artifacts import Artifact, local_file
from .errors import ActionError, ForgeError, InputError
from .provenance import CiRun
from .retries import RetryPolicy

if TYPE_CHECKING:  # the forges bring the HTTP stack, which --help and input errors do without
    from .forges import Asset, Forge, Release
    from .signing import Signer

log = logging.getLogger(__name__)

#: A signature is under a kilobyte; one on the forge larger than this is not one of ours.
MAX_SIGNATURE_BYTES = 64 << 10


@dataclass(frozen=True)
class Attestations:
    """What a run adds about its files; ``None`` fields add nothing."""

    tag: str
    checksums: str | None
    algorithm: str
    #: The provenance statement's file name.
    provenance: str | None
    signer: Signer | None
    #: Sign every published file, not only the checksums file.
    sign_all: bool
    run: CiRun
    started: datetime.datetime

    def signing(self) -> tuple[Signer, str] | None:
        """The key and the checksums file it signs; None when nothing is signed."""
        if self.signer is None:
            return None
        # Inputs refuse a key without a checksums file, and a run with no file drops both.
        assert self.checksums, "a signing key comes with a checksums file"
        return self.signer, self.checksums

    def names(self, artifacts: list[Artifact]) -> list[str]:
        """The files this adds to a release that publishes ``artifacts``, in the order they are made."""
        own = [name for name in (self.provenance, self.checksums) if name]
        signing = self.signing()
        if signing is None:
            return own
        signer, sums = signing
        signed = [*(artifact.name for artifact in artifacts), *own] if self.sign_all else [sums]
        return [*own, *(signer.signature_name(name) for name in signed), release_attestation.FILE_NAME]

    def describe(self, artifacts: list[Artifact]) -> list[str]:
        """The dry run's lines: what would be published, and with which key."""
        lines = []
        if self.provenance:
            lines.append(
                f"publish {self.provenance}, the provenance of {len(artifacts)} file(s)"
                " (left as it is when it describes the same build)"
            )
        if self.checksums:
            listed = len(artifacts) + bool(self.provenance)
            lines.append(
                f"publish {self.checksums}, the {self.algorithm} of {listed} file(s), written after the"
                " uploads (left as it is when identical)"
            )
        if self.signer is not None:
            signatures = [name for name in self.names(artifacts) if name.endswith(self.signer.suffix)]
            lines.append(
                f"sign with the {self.signer.format} key {self.signer.key_id}: {', '.join(signatures)}"
                " (a signature on the release that verifies is left as it is)"
            )
            lines.append(f"publish {release_attestation.FILE_NAME}, the signed list of every file of the release")
        return lines

    def make(
        self, forge: Forge, release: Release | None, published: list[Artifact], folder: Path, policy: RetryPolicy
    ) -> list[Artifact]:
        """Write this run's files about ``published`` in ``folder``, reusing what ``release`` holds that
        is still true."""
        made: list[Artifact] = []
        if self.provenance:
            made.append(self._statement(self.provenance, forge, release, published, folder, policy))
        listed = published + made
        if self.checksums:
            made.append(checksums.write(listed, self.checksums, self.algorithm, folder))
        if self.signer is not None:
            targets = [*listed, made[-1]] if self.sign_all else [made[-1]]
            made.extend(self._signature(self.signer, forge, release, target, folder, policy) for target in targets)
            made.append(self._release_attestation(self.signer, forge, release, published + made, folder, policy))
        return made

    def _statement(
        self,
        name: str,
        forge: Forge,
        release: Release | None,
        published: list[Artifact],
        folder: Path,
        policy: RetryPolicy,
    ) -> Artifact:
        wanted = provenance.statement(
            published,
            tag=self.tag,
            repository=forge.repository_url,
            run=self.run,
            started=self.started,
            finished=_now(),
        )
        same = lambda found: provenance.same_build(found, wanted)  # noqa: E731
        if self.signer is not None:
            return self._envelope(self.signer, forge, release, name, provenance.dumps(wanted), same, folder, policy)
        data = provenance.dumps(wanted)
        for asset in release.assets_named(name) if release else []:
            stored = _stored(forge, asset, provenance.MAX_BYTES, policy)
            if stored is not None and same(stored):
                data = stored  # the same build: its first run's details stay true
                break
        path = folder / name
        path.write_bytes(data)
        return local_file(path, name)

    def _release_attestation(
        self,
        signer: Signer,
        forge: Forge,
        release: Release | None,
        files: list[Artifact],
        folder: Path,
        policy: RetryPolicy,
    ) -> Artifact:
        wanted = release_attestation.dumps(
            release_attestation.statement(
                files, tag=self.tag, repository=forge.repository, repository_url=forge.repository_url
            )
        )
        return self._envelope(
            signer, forge, release, release_attestation.FILE_NAME, wanted, wanted.__eq__, folder, policy
        )

    def _envelope(
        self,
        signer: Signer,
        forge: Forge,
        release: Release | None,
        name: str,
        payload: bytes,
        same: Callable[[bytes], bool],
        folder: Path,
        policy: RetryPolicy,
    ) -> Artifact:
        """The signed envelope of a statement: the one on the release when it says the ``same`` and is this
        key's, else a new one."""
        data = None
        for asset in release.assets_named(name) if release else []:
            stored = _stored(forge, asset, envelopes.MAX_BYTES, policy)
            if stored is not None and _kept(signer, stored, same):
                data = stored
                break
        if data is None:
            data = envelopes.dumps(_seal(signer, payload))
            if not _kept(signer, data, lambda found: found == payload):
                raise ActionError(
                    f"The signature made for {name} does not verify with the key that made it;"
                    " nothing signed was published."
                )
        path = folder / name
        path.write_bytes(data)
        return local_file(path, name)

    def _signature(
        self, signer: Signer, forge: Forge, release: Release | None, target: Artifact, folder: Path, policy: RetryPolicy
    ) -> Artifact:
        name = signer.signature_name(target.name)
        path = folder / name
        for asset in release.assets_named(name) if release else []:
            stored = _stored(forge, asset, MAX_SIGNATURE_BYTES, policy)
            if stored is not None and signer.verifies(target.path, stored, tag=self.tag, name=target.name):
                path.write_bytes(stored)
                break
        else:
            signer.sign(target.path, path, tag=self.tag, name=target.name)
            if not signer.verifies(target.path, path.read_bytes(), tag=self.tag, name=target.name):
                target.check_unchanged()  # a file rewritten while it was signed is said to be so
                raise ActionError(
                    f"The signature made for {target.name} does not verify with the key that made it;"
                    " nothing signed was published."
                )
        # The file signed must be the one uploaded: a build that rewrote it since fails here.
        target.check_unchanged()
        return local_file(path, name)


def how_to_verify(signer: Signer, sums: str, algorithm: str) -> str:
    """The release notes' block for someone who downloads: the key of ``signer``, which signs the checksums
    file ``sums``, then the commands to run."""
    sum_command = f"{algorithm}sum -c {shlex.quote(sums)}"
    if signer.format == "openpgp":
        key = (
            f"The files are listed in `{sums}`, signed with the OpenPGP key `{signer.key_id}`. Import the key"
            " (below, or from where its owner publishes it), check that gpg shows this fingerprint, then run,"
            " in the folder of the downloaded files:"
        )
        public = f"\n\n<details><summary>Public key</summary>\n\n```\n{signer.public_key.strip()}\n```\n\n</details>"
    else:
        key = (
            f"The files are listed in `{sums}`, signed with the minisign key `{signer.key_id}`"
            f" (public key `{signer.public_key}`). In the folder of the downloaded files, run:"
        )
        public = ""
    commands = "\n".join([*signer.commands(signer.signature_name(sums), sums), sum_command])
    key_file = "release-key.asc" if signer.format == "openpgp" else signer.public_key
    everything = (
        f"Or check every file, signature and attestation at once with `release-action verify --dir ."
        f" --key {key_file}` (`pip install release-action`)."
    )
    return f"### Verifying this release\n\n{key}\n\n```sh\n{commands}\n```\n\n{everything}{public}\n"


def refuse_changes(forge: Forge, release: Release | None, names: list[str], changes: bool, *, immutable: bool) -> None:
    """Before any change: where a file cannot be replaced (a forge that cannot, an immutable release that
    is published), this run's own files cannot be brought up to date."""
    if (forge.can_delete_assets and not immutable) or release is None or not changes:
        return
    stale = [name for name in names if release.assets_named(name)]
    if stale and immutable:
        raise InputError(
            f"Release {release.tag} is published and immutable, and already has {', '.join(stale)}, which would"
            " have to change to speak of the files this run adds; nothing was changed: publish them under a new tag."
        )
    if stale:
        raise ActionError(
            f"Release {release.tag} already has {', '.join(stale)}, and {forge.title} cannot replace it through its"
            " API, so it would not speak of the files this run adds; remove it in the web interface and run again,"
            " or publish under a new tag."
        )


def _seal(signer: Signer, payload: bytes) -> envelopes.Envelope:
    signed = envelopes.pae(envelopes.PAYLOAD_TYPE, payload)
    return envelopes.Envelope(
        payload=payload, payload_type=envelopes.PAYLOAD_TYPE, key_id=signer.key_id, signature=signer.sign_bytes(signed)
    )


def _kept(signer: Signer, data: bytes, same: Callable[[bytes], bool]) -> bool:
    """Whether an envelope is ``signer``'s, over a statement that says the ``same``."""
    try:
        envelope = envelopes.loads(data)
    except envelopes.EnvelopeError:
        return False
    return (
        envelope.payload_type == envelopes.PAYLOAD_TYPE
        and envelope.key_id == signer.key_id
        and signer.public.verifies_bytes(envelope.signed_bytes, envelope.signature)
        and same(envelope.payload)
    )


def _stored(forge: Forge, asset: Asset, limit: int, policy: RetryPolicy) -> bytes | None:
    """A small file as the forge stores it; None when it is larger than any file of ours."""
    if asset.size > limit:
        return None

    def download() -> bytes | None:
        data = bytearray()
        for piece in forge.download(asset):
            data += piece
            if len(data) > limit:
                return None
        return bytes(data)

    try:
        return policy.call(download, what=f"downloading {asset.name} to compare it")
    except ForgeError as error:
        raise ForgeError(
            f"{asset.name} is already on the release but could not be read to compare it ({error})", error.status
        ) from None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
