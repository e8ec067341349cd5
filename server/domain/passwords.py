"""Password policy, generation and hashing (SPEC §6, NIST SP 800-63B rev. 4).

Policies are per tenant. ``default`` follows NIST: 8 to 128 characters, any printable or
Unicode character, not the username, not on the bundled list of common and breached
passwords, no composition rules. ``classic`` adds what many school systems still demand: an
upper-case letter, a lower-case letter and a digit. Every generated password satisfies both.

Hashes are Argon2id. The parameters are OWASP's recommended minimum (m=19 MiB, t=2, p=1)
rather than argon2-cffi's defaults (m=64 MiB, t=3, p=4): a class of 30 signing in at the same
moment then needs about 570 MiB instead of nearly 2 GiB. Hashes made with other parameters are
upgraded at the next successful sign-in (:func:`needs_rehash`).
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.errors import PasswordRejected

MIN_LENGTH = 8
MAX_LENGTH = 128
PRESETS = ("default", "classic")

# No look-alikes: no 0/O/o, 1/l/I, 5/S, 2/Z, 8/B.
_UPPER = "ACDEFGHJKLMNPQRTUVWXY"
_LOWER = "abcdefghijkmnpqrstuvwxyz"
_DIGITS = "34679"

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@dataclass(frozen=True)
class PasswordPolicy:
    """A tenant's password rules."""

    preset: str = "default"
    min_length: int = MIN_LENGTH

    def check(self, password: str, *, username: str | None = None) -> None:
        """Raise :class:`PasswordRejected` naming the first rule the password breaks.

        >>> PasswordPolicy().check("correct horse battery")
        >>> PasswordPolicy("classic").check("correct horse battery")
        Traceback (most recent call last):
        ...
        server.errors.PasswordRejected: The password needs at least one upper-case letter.
        """
        for problem in self.problems(password, username=username):
            raise PasswordRejected(problem, field="password")

    def problems(self, password: str, *, username: str | None = None) -> list[str]:
        """Every rule the password breaks, as messages for the person choosing it."""
        found: list[str] = []
        length = len(unicodedata.normalize("NFC", password))
        if length < self.min_length:
            found.append(f"The password must be at least {self.min_length} characters long.")
        if length > MAX_LENGTH:
            found.append(f"The password can be at most {MAX_LENGTH} characters long.")
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in password):
            found.append("The password contains a control character.")
        if username and password.casefold() == username.casefold():
            found.append("The password cannot be the same as the username.")
        if password.casefold() in common_passwords():
            found.append("This password is too common: it is on a list of breached passwords.")
        if self.preset == "classic":
            if not any(ch.isupper() for ch in password):
                found.append("The password needs at least one upper-case letter.")
            if not any(ch.islower() for ch in password):
                found.append("The password needs at least one lower-case letter.")
            if not any(ch.isdigit() for ch in password):
                found.append("The password needs at least one digit.")
        return found

    @property
    def description(self) -> str:
        text = f"At least {self.min_length} characters, not a common password"
        if self.preset == "classic":
            text += ", with an upper-case letter, a lower-case letter and a digit"
        return text + "."


def policy_for(settings: dict[str, object]) -> PasswordPolicy:
    preset = str(settings.get("password_policy") or "default")
    if preset not in PRESETS:
        preset = "default"
    min_length = settings.get("password_min_length")
    return PasswordPolicy(
        preset, max(MIN_LENGTH, int(min_length)) if isinstance(min_length, int) else MIN_LENGTH
    )


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common and breached passwords, case-folded."""
    return frozenset(_bundled_lines("common-passwords.txt"))


@cache
def word_list() -> tuple[str, ...]:
    """Short, child-friendly words for young-student passwords."""
    return tuple(_bundled_lines("words.txt"))


def _bundled_lines(name: str) -> list[str]:
    text = resources.files("server.data").joinpath(name).read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [line.casefold() for line in lines if line and not line.startswith("#")]


def generate_password(mode: str = "strong", length: int = 12) -> str:
    """A readable random password: ``strong`` (``Hq7kTmx4Rwpe``) or ``words`` (``Tiger-plum-47``).

    Both kinds satisfy every preset: an upper-case letter, a lower-case letter, a digit, at
    least 8 characters, and never a common password.
    """
    while True:
        password = _word_password() if mode == "words" else _strong_password(length)
        if not PasswordPolicy("classic").problems(password):
            return password


def _strong_password(length: int) -> str:
    alphabet = _UPPER + _LOWER + _DIGITS
    chars = [secrets.choice(_UPPER), secrets.choice(_LOWER), secrets.choice(_DIGITS)]
    chars += [secrets.choice(alphabet) for _ in range(max(length, MIN_LENGTH) - 3)]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def _word_password() -> str:
    words = word_list()
    first, second = secrets.choice(words), secrets.choice(words)
    return f"{first.capitalize()}-{second}-{secrets.randbelow(90) + 10}"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; never raises for a wrong or malformed hash."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def burn_verification_time() -> None:
    """Spend the time of one verification, so an unknown username answers as slowly as a known
    one (no user enumeration by timing)."""
    verify_password(_dummy_hash(), "not the password")


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))
