"""Seeded building blocks: English-like text, prefixed ids, timestamps, embeddings.

Everything is drawn from a ``random.Random`` passed in by the caller, so the
same seed always yields the same content and no external data is needed.
"""
from __future__ import annotations

import base64
import json
import random
import sys
import uuid
from array import array
from datetime import datetime, timezone
from typing import Any

EMBEDDING_DIM = 4096
"""Mirix pads every vector to MAX_EMBEDDING_DIM before storing it."""
ACTIVE_DIM = 768
"""Dimensions the (fake) embedding model really produces; the rest are zeros."""

# 768 float32 = 3072 bytes, a multiple of 3, so base64(prefix) + base64(zeros)
# equals base64(prefix + zeros): the zero tail is encoded once.
_ZERO_TAIL_B64 = base64.b64encode(bytes(4 * (EMBEDDING_DIM - ACTIVE_DIM))).decode("ascii")

HISTORY_START = datetime(2025, 1, 6, 8, 0, 0)
"""Fixed origin of the agent's history, so content never depends on the clock."""

PEOPLE = [
    "Alice", "Bob", "Carmen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ingrid",
    "Jamal", "Keiko", "Liam", "Maya", "Nikolai", "Olivia", "Priya", "Quentin",
    "Rosa", "Sven", "Tariq", "Uma", "Victor", "Wen", "Yusuf", "Zoe", "the user",
    "the user's manager", "the landlord", "the dentist", "the project lead",
]
VERBS_PAST = [
    "reviewed", "rescheduled", "finished", "started", "abandoned", "praised",
    "criticised", "summarised", "shared", "postponed", "approved", "rewrote",
    "debugged", "planned", "cancelled", "bookmarked", "compared", "migrated",
    "organised", "questioned", "ordered", "returned", "archived", "sketched",
]
VERBS_BASE = [
    "review", "send", "book", "renew", "update", "draft", "call", "pay", "check",
    "back up", "clean up", "prepare", "rehearse", "publish", "file", "benchmark",
]
ADJECTIVES = [
    "quarterly", "overdue", "detailed", "rough", "final", "confidential", "shared",
    "unfinished", "urgent", "annual", "weekly", "experimental", "revised",
    "handwritten", "encrypted", "lengthy", "brief", "noisy", "surprising", "stable",
]
NOUNS = [
    "report", "budget", "presentation", "contract", "itinerary", "invoice", "recipe",
    "playlist", "schedule", "dataset", "prototype", "manuscript", "spreadsheet",
    "lease", "pull request", "design document", "benchmark", "workout plan",
    "grocery list", "tax return", "slide deck", "research paper", "photo album",
    "database migration", "backup policy", "meeting agenda", "birthday gift",
]
TOPICS = [
    "machine learning", "gardening", "marathon training", "home renovation",
    "jazz piano", "sourdough baking", "retirement savings", "the trip to Lisbon",
    "vector databases", "Rust programming", "climate policy", "bird watching",
    "the new apartment", "sleep habits", "Japanese grammar", "chess openings",
    "the quarterly roadmap", "photography", "electric cars", "memory systems",
]
PLACES = [
    "the office", "home", "the cafe on Main Street", "the library", "the airport",
    "the gym", "a video call", "the conference in Berlin", "the train", "the park",
    "the kitchen", "the co-working space", "the hospital", "the hardware store",
]
TIMES = [
    "this morning", "yesterday afternoon", "last week", "on Monday", "before lunch",
    "late at night", "over the weekend", "during the commute", "after the standup",
    "two days ago", "on Friday evening", "at dawn",
]
ADVERBS = [
    "carefully", "quickly", "reluctantly", "twice", "again", "finally", "quietly",
    "enthusiastically", "in detail", "without much progress", "with some help",
]
FREQUENCIES = ["every day", "most weekends", "once a month", "rarely", "on Tuesdays", "whenever possible"]

_TEMPLATES = [
    "{P} {V} the {A} {N} {T}.",
    "The {A} {N} about {O} was {V} {D}.",
    "{P} prefers to discuss {O} at {L} {F}.",
    "We talked about {O} and agreed to {B} the {N} by {T2}.",
    "Remember that {P} cares a lot about {O}.",
    "During a visit to {L}, {P} mentioned the {A} {N}.",
    "{P} asked the assistant to {B} the {N} {T}.",
    "It seems {P} {V} the {N} {D} after thinking about {O}.",
    "Note to self: {B} the {A} {N} before {T2}.",
    "{P} and {P2} {V} the {N} at {L} {T}.",
]


def sentence(rng: random.Random) -> str:
    """One plausible sentence; ten templates times large word lists give variety."""
    template = rng.choice(_TEMPLATES)
    text = template.format(
        P=rng.choice(PEOPLE), P2=rng.choice(PEOPLE), V=rng.choice(VERBS_PAST),
        B=rng.choice(VERBS_BASE), A=rng.choice(ADJECTIVES), N=rng.choice(NOUNS),
        O=rng.choice(TOPICS), L=rng.choice(PLACES), T=rng.choice(TIMES),
        T2=rng.choice(TIMES), D=rng.choice(ADVERBS), F=rng.choice(FREQUENCIES),
    )
    return text[0].upper() + text[1:]


def paragraph(rng: random.Random, low: int, high: int) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(low, high)))


def title(rng: random.Random) -> str:
    return f"{rng.choice(ADJECTIVES).title()} {rng.choice(NOUNS)} on {rng.choice(TOPICS)}"


def new_id(rng: random.Random, prefix: str) -> str:
    """Mirix-style id: a prefix and a random uuid4, which scatters B-tree inserts."""
    return f"{prefix}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def db_time(moment: datetime) -> str:
    """How SQLAlchemy's DateTime stores a naive UTC timestamp on SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_db_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")


def iso_utc(moment: datetime) -> str:
    return moment.replace(tzinfo=timezone.utc).isoformat()


def to_json(value: Any) -> str:
    """Serialise like SQLAlchemy's JSON type does (plain json.dumps)."""
    return json.dumps(value)


def embedding(rng: random.Random) -> str:
    """Base64 of 4096 little-endian float32: 768 random values, then zeros."""
    vector = array("f", [(rng.random() - 0.5) * 0.125 for _ in range(ACTIVE_DIM)])
    if sys.byteorder == "big":
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode("ascii") + _ZERO_TAIL_B64


def decode_embedding(text: str | bytes) -> array:
    """Inverse of :func:`embedding`, for tests and tools that inspect vectors."""
    vector = array("f", base64.b64decode(text))
    if sys.byteorder == "big":
        vector.byteswap()
    return vector
