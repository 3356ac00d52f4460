"""Repository encryption: sealing objects, keyed blob ids, passphrase-wrapped keys.

``cipher`` seals and opens every stored object and names blobs; ``keys`` keeps the
master key wrapped once per passphrase in ``keys/<id>``; ``kdf`` is the scrypt
derivation shared with encrypted backup folders; ``password`` finds the passphrase.
docs/design.md ("Encryption") is the format; docs/security.md the threat model.
"""
from .cipher import PLAIN, Cipher, MasterKey
from .password import get_password

__all__ = ["PLAIN", "Cipher", "MasterKey", "get_password"]
