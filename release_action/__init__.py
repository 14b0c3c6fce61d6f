"""Publish a release with its build artifacts to a git forge: GitFlic, SourceCraft, GitVerse, Gitea or Forgejo.

The package reads as the product works: ``inputs`` -> ``forges`` (find or
create the release) -> ``uploads`` -> ``verification`` -> ``attestations``
(``provenance``, ``checksums``, ``signing``) -> ``outputs``; ``publish``
tells that story in one function and ``cli`` runs it.
"""

__version__ = "0.1.0"
