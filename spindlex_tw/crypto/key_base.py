"""The :class:`PKey` base class: identity, signatures, loading and saving.

A key is an immutable value identified by its SSH public key blob (RFC 4253
section 6.6, RFC 5656, RFC 8709): two keys are equal, and hash alike, when
their blobs are equal, whether or not they hold the private half.  All the
arithmetic is ``cryptography``'s; each key keeps its ``cryptography`` object
so that signing costs one library call.

Each key type lives in its own module and registers itself here when its
class is defined (key type names, generation name, cryptography class), so
loading dispatches by table.  Import :mod:`spindlex_tw.crypto.pkey`, which
defines them all, rather than this module.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from typing import Any, ClassVar, Literal, Self, TypeVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from spindlex_tw.core.errors import DecodeError
from spindlex_tw.core.wire import Reader, string
from spindlex_tw.crypto import openssh_format, pem_format
from spindlex_tw.crypto.key_errors import (
    KeyFileError,
    KeyFormatError,
    describe_os_error,
)

KeyFileFormat = Literal["openssh", "pem", "pkcs8"]
Password = str | bytes | None

_MAX_KEY_FILE_SIZE = 1 << 20
_LOAD_ACTION = "load key"  # any key file: a host key, a user's key, a CA
_SAVE_ACTION = "save key"

_T = TypeVar("_T")


def password_bytes(password: Password) -> bytes | None:
    # An empty passphrase means "not encrypted", as with ssh-keygen -N "".
    if not password:
        return None
    return password.encode("utf-8") if isinstance(password, str) else bytes(password)


def require_private(private: _T | None) -> _T:
    if private is None:
        raise ValueError("this key has no private part")
    return private


@contextlib.contextmanager
def format_errors(what: str) -> Iterator[None]:
    """Turn any parse failure (ours, the wire reader's, cryptography's) into one type."""
    try:
        yield
    except KeyFormatError:
        raise
    except (DecodeError, ValueError, OverflowError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"malformed {what}") from exc


# Filled in by PKey.__init_subclass__ as each key type is defined.
_BLOB_TYPES: dict[str, type[PKey]] = {}
_GENERATE_TYPES: dict[str, type[PKey]] = {}
_PRIVATE_TYPES: list[tuple[type[Any], type[PKey]]] = []


def key_class_for(name: str) -> type[PKey] | None:
    """The class that parses public keys of SSH type ``name`` (a certificate reads its key so)."""
    return _BLOB_TYPES.get(name)


class PKey(ABC):
    """An SSH public key, possibly with its private half.

    ``comment`` is free text (from a .pub line or an OpenSSH key file) and
    takes no part in equality.  ``allow_sha1`` (default False) lets an RSA
    key sign and verify legacy "ssh-rsa" (SHA-1) signatures by default.
    """

    # Registration of a key type: the SSH key type names it parses, its name
    # for generate(key_type=...) and the cryptography private key class.
    _BLOB_NAMES: ClassVar[tuple[str, ...]] = ()
    _GENERATE_NAME: ClassVar[str] = ""
    _PRIVATE_CLASS: ClassVar[type[Any]] = type(None)
    # Signature algorithms the key type supports but never offers unasked.
    _LEGACY_ALGORITHMS: ClassVar[tuple[str, ...]] = ()
    # How each PEM-family format maps to what cryptography can write for it.
    _PEM_FORMATS: ClassVar[dict[str, pem_format.PemFormat]] = {"pem": "pem", "pkcs8": "pkcs8"}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Only a class that declares these itself is a key type; a user's
        # subclass of, say, Ed25519Key must not take over its registration.
        declared = vars(cls)
        for name in declared.get("_BLOB_NAMES", ()):
            _BLOB_TYPES[name] = cls
        if "_GENERATE_NAME" in declared:
            _GENERATE_TYPES[cls._GENERATE_NAME] = cls
        if "_PRIVATE_CLASS" in declared:
            _PRIVATE_TYPES.append((cls._PRIVATE_CLASS, cls))

    def __init__(self, comment: str = "") -> None:
        self.comment = comment
        self.allow_sha1 = False
        self._blob = self._encode_public_blob()

    # -- what each key type provides -------------------------------------

    @abstractmethod
    def get_name(self) -> str:
        """The SSH key type name, e.g. "ssh-ed25519"."""

    @abstractmethod
    def get_bits(self) -> int:
        """Key size in bits as ``ssh-keygen -l`` reports it."""

    @abstractmethod
    def can_sign(self) -> bool:
        """True when the private half is present."""

    @abstractmethod
    def host_key_algorithms(self) -> list[str]:
        """Signature algorithms this key can sign with, strongest first."""

    @abstractmethod
    def _encode_public_blob(self) -> bytes: ...

    @abstractmethod
    def _sign_raw(self, data: bytes, algorithm: str) -> bytes:
        """The signature proper: the second string of the SSH signature blob."""

    @abstractmethod
    def _verify_raw(self, data: bytes, signature: bytes, algorithm: str) -> None:
        """Raise InvalidSignature, ValueError or DecodeError unless valid."""

    @abstractmethod
    def _private_object(self) -> PrivateKeyTypes:
        """The cryptography private key; ValueError for a public-only key."""

    @abstractmethod
    def _openssh_private_fields(self) -> bytes:
        """Key type string and private fields as OpenSSH's container stores them."""

    @classmethod
    @abstractmethod
    def _from_public_fields(cls, name: str, reader: Reader) -> PKey: ...

    @classmethod
    @abstractmethod
    def _from_openssh_fields(cls, name: str, reader: Reader) -> PKey: ...

    @classmethod
    @abstractmethod
    def _from_private_object(cls, private: Any) -> PKey:
        """Wrap a cryptography private key of this type (_PRIVATE_CLASS)."""

    @classmethod
    @abstractmethod
    def _generate(cls, bits: int | None, curve: str | None) -> PKey: ...

    # -- identity ---------------------------------------------------------

    @property
    def algorithm_name(self) -> str:
        """SpindleX name for :meth:`get_ssh_type`."""
        return self.get_ssh_type()

    def get_ssh_type(self) -> str:
        """The algorithm name SpindleX gives this key: the key type, except for RSA."""
        return self.get_name()

    def get_public_key_bytes(self) -> bytes:
        """The SSH public key blob, as sent on the wire and in authorized_keys."""
        return self._blob

    def get_base64(self) -> str:
        return base64.b64encode(self._blob).decode("ascii")

    def get_fingerprint(self, hash_algorithm: str = "sha256") -> str:
        """``SHA256:<unpadded base64>`` (or ``MD5:aa:bb:...``), as ssh-keygen -l prints."""
        if hash_algorithm.lower() == "sha256":
            digest = hashlib.sha256(self._blob).digest()
            return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")
        if hash_algorithm.lower() == "md5":
            digest = hashlib.md5(self._blob, usedforsecurity=False).digest()
            return "MD5:" + ":".join(f"{octet:02x}" for octet in digest)
        raise ValueError(f"unsupported fingerprint hash {hash_algorithm!r}")

    def get_openssh_string(self) -> str:
        """``type base64``, the SpindleX form of a public key line without comment."""
        return f"{self.get_name()} {self.get_base64()}"

    def get_public_line(self) -> str:
        """``type base64 comment``, as in a .pub file or authorized_keys."""
        line = self.get_openssh_string()
        return f"{line} {self.comment}" if self.comment else line

    def get_public_key(self) -> Self:
        """A copy of this key without its private half."""
        public = type(self).from_public_blob(self._blob)
        public.comment = self.comment
        return public

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PKey) and self._blob == other._blob

    def __hash__(self) -> int:
        return hash(self._blob)

    def __repr__(self) -> str:
        half = "private" if self.can_sign() else "public"
        return f"<{type(self).__name__} {self.get_name()} {self.get_fingerprint()} {half}>"

    # -- signatures -------------------------------------------------------

    def _signing_algorithms(self) -> list[str]:
        legacy = list(self._LEGACY_ALGORITHMS) if self.allow_sha1 else []
        return self.host_key_algorithms() + legacy

    def sign_ssh(self, data: bytes, algorithm: str | None = None) -> bytes:
        """Sign ``data``; return ``string(algorithm) || string(signature)``.

        ``algorithm`` defaults to the first of :meth:`host_key_algorithms`.
        ValueError if the key cannot sign with it or has no private half.
        """
        permitted = self._signing_algorithms()
        chosen = permitted[0] if algorithm is None else algorithm
        if chosen not in permitted:
            raise ValueError(f"a {self.get_name()} key cannot sign with {chosen!r}")
        return string(chosen) + string(self._sign_raw(bytes(data), chosen))

    def verify_ssh(
        self,
        data: bytes,
        signature_blob: bytes,
        algorithms: Collection[str] | None = None,
    ) -> bool:
        """True only if ``signature_blob`` is a valid SSH signature of ``data``.

        The algorithm named in the blob must suit this key and be among
        ``algorithms`` (default: :meth:`host_key_algorithms`); so legacy
        "ssh-rsa" is refused unless listed.  Never raises on a bad blob.
        """
        if isinstance(algorithms, str):
            algorithms = (algorithms,)
        try:
            reader = Reader(signature_blob)
            algorithm = reader.ascii()
            signature = reader.string()
            reader.done()
        except DecodeError:
            return False
        if algorithms is None:
            permitted = self._signing_algorithms()
        else:
            suitable = self.host_key_algorithms() + list(self._LEGACY_ALGORITHMS)
            permitted = [name for name in suitable if name in algorithms]
        if algorithm not in permitted:
            return False
        try:
            self._verify_raw(bytes(data), signature, algorithm)
        except (InvalidSignature, DecodeError, ValueError, OverflowError):
            return False
        return True

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        """SpindleX name for :meth:`sign_ssh`."""
        return self.sign_ssh(data, algorithm)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """SpindleX name for :meth:`verify_ssh` (note: signature first)."""
        return self.verify_ssh(data, signature)

    # -- loading ----------------------------------------------------------

    @classmethod
    def _narrow(cls, key: PKey) -> Self:
        if not isinstance(key, cls):
            raise KeyFormatError(f"expected a {cls.__name__}, got a {key.get_name()} key")
        return key

    @classmethod
    def from_public_blob(cls, blob: bytes) -> Self:
        """A public-only key from its SSH blob; KeyFormatError if malformed.

        Only the canonical encoding is accepted, so that
        ``from_public_blob(b).get_public_key_bytes() == b`` always holds.
        """
        with format_errors("public key blob"):
            reader = Reader(blob)
            name = reader.ascii()
            key_class = _BLOB_TYPES.get(name)
            if key_class is None:
                raise KeyFormatError(f"unsupported key type {name[:64]!r}")
            key = key_class._from_public_fields(name, reader)
            reader.done()
        if key._blob != bytes(blob):
            raise KeyFormatError("non-canonical public key encoding")
        return cls._narrow(key)

    @classmethod
    def from_string(cls, data: bytes) -> Self:
        """SpindleX name for :meth:`from_public_blob`."""
        return cls.from_public_blob(data)

    @classmethod
    def from_public_line(cls, line: str) -> Self:
        """A public key from ``type base64 [comment]`` (a .pub or authorized_keys line)."""
        fields = line.strip().split(None, 2)
        if len(fields) < 2:
            raise KeyFormatError("expected 'type base64 [comment]'")
        try:
            blob = base64.b64decode(fields[1], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyFormatError("malformed base64 in public key line") from exc
        key = cls.from_public_blob(blob)
        if key.get_name() != fields[0]:
            raise KeyFormatError(f"line says {fields[0][:64]!r} but holds a {key.get_name()} key")
        key.comment = fields[2] if len(fields) > 2 else ""
        return key

    @classmethod
    def from_private_key(cls, data: bytes | str, password: Password = None) -> Self:
        """A private key from OpenSSH, PEM or PKCS#8 text (format detected)."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        secret = password_bytes(password)
        label, block = pem_format.find_block(raw)
        if label == openssh_format.LABEL:
            key = _load_openssh(block, secret)
        elif pem_format.is_private_label(label):
            key = _wrap_private_object(pem_format.load(label, block, secret))
        else:
            raise KeyFormatError("not a private key")
        return cls._narrow(key)

    @classmethod
    def from_private_key_file(
        cls, filename: str | os.PathLike[str], password: Password = None
    ) -> Self:
        """Load a private key file; every failure is a one-line :class:`KeyFileError`."""
        try:
            with open(filename, "rb") as handle:
                data = handle.read(_MAX_KEY_FILE_SIZE + 1)
        except OSError as exc:
            raise KeyFileError(filename, describe_os_error(exc), _LOAD_ACTION) from exc
        if len(data) > _MAX_KEY_FILE_SIZE:
            raise KeyFileError(filename, "file too large for a key", _LOAD_ACTION)
        try:
            return cls.from_private_key(data, password)
        except KeyFormatError as exc:
            raise KeyFileError(filename, str(exc), _LOAD_ACTION) from exc

    # SpindleX's keys start empty and are filled in place; these keep that
    # working. The key changes identity, so do not call them on a key that is
    # already in a set or a dict.
    def load_private_key(self, key_data: bytes, password: Password = None) -> None:
        """Make this key the private key in ``key_data`` (OpenSSH, PEM or PKCS#8), same type."""
        self._become(type(self).from_private_key(key_data, password))

    def load_public_key(self, key_data: bytes) -> None:
        """Make this key the public-only key in ``key_data``, an SSH blob of the same type."""
        self._become(type(self).from_public_blob(key_data))

    def _become(self, other: PKey) -> None:
        self.__dict__.clear()
        self.__dict__.update(other.__dict__)

    # -- generating -------------------------------------------------------

    @classmethod
    def generate(
        cls, key_type: str | None = None, bits: int | None = None, curve: str | None = None
    ) -> Self:
        """A new key pair.

        On a subclass ``key_type`` may be omitted (``RSAKey.generate(bits=4096)``,
        ``ECDSAKey.generate(curve="nistp384")``); on :class:`PKey` it picks the
        class ("ed25519", "rsa" or "ecdsa"; default "ed25519", as SpindleX).
        """
        target: type[PKey] = _GENERATE_TYPES["ed25519"] if cls is PKey else cls
        if key_type is not None:
            named = _GENERATE_TYPES.get(key_type.lower())
            if named is None or not issubclass(named, cls):
                raise ValueError(f"{cls.__name__} cannot generate {key_type!r} keys")
            target = named
        return cls._narrow(target._generate(bits, curve))

    # -- saving -----------------------------------------------------------

    def get_private_bytes(
        self, password: Password = None, format: KeyFileFormat = "openssh"
    ) -> bytes:
        """The private key file contents in ``format`` ("openssh", "pem" or "pkcs8").

        With a passphrase: OpenSSH uses bcrypt (16 rounds) + aes256-ctr as
        ssh-keygen does; PEM and PKCS#8 use AES-256-CBC.  ValueError for an
        unknown format or a public-only key.
        """
        secret = password_bytes(password)
        private = self._private_object()
        if format == "openssh":
            return openssh_format.encode(
                self._blob, self._openssh_private_fields(), self.comment, secret
            )
        pem_kind = self._PEM_FORMATS.get(format)
        if pem_kind is None:
            raise ValueError(f"unknown key file format {format!r}")
        return pem_format.dump(private, pem_kind, secret)

    def save_to_file(
        self,
        filename: str | os.PathLike[str],
        password: Password = None,
        format: KeyFileFormat = "openssh",
    ) -> None:
        """Write the private key to ``filename`` with mode 0600.

        The bytes go to a new 0600 file beside ``filename`` that then replaces
        it, so the key is never readable by others nor left half written, even
        when ``filename`` existed with looser permissions.
        """
        data = self.get_private_bytes(password, format)
        target = os.fspath(filename)
        directory, name = os.path.split(target)
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = os.open(temporary, flags, 0o600)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise KeyFileError(target, describe_os_error(exc), _SAVE_ACTION) from exc


def _wrap_private_object(private: PrivateKeyTypes) -> PKey:
    for crypto_class, key_class in _PRIVATE_TYPES:
        if isinstance(private, crypto_class):
            return key_class._from_private_object(private)
    raise KeyFormatError(f"unsupported key type {type(private).__name__}")


def _load_openssh(block: bytes, password: bytes | None) -> PKey:
    section = openssh_format.decode(block, password)
    with format_errors("OpenSSH private key"):
        name = section.fields.ascii()
        key_class = _BLOB_TYPES.get(name)
        if key_class is None:
            raise KeyFormatError(f"unsupported key type {name[:64]!r}")
        key = key_class._from_openssh_fields(name, section.fields)
        key.comment = openssh_format.read_trailer(section.fields)
    if key._blob != section.public_blob:
        raise KeyFormatError("public and private parts of the key file differ")
    return key
