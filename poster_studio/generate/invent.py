"""Invented titles: a character n-gram model of the data's movie titles per genre (`TitleModel`, checkpoint
`checkpoints/titles/`, trained by train/train_titles.py in seconds).

The model is an interpolated absolute-discounting character n-gram (order 7 by default) over all titles, with the
counts of the wanted genre(s) weighted up (`genre_weight`), so a Horror title reads like the horror titles but
borrows letters from every title. Counts seen once are pruned above order 2 (less memorising). Sampling is seeded
(`invent(genres, key)`: the same key gives the same title) and a sample is kept only when it

- has a poster title's shape (1-5 words, at most `max_chars` characters, no digits, balanced punctuation),
- is made of known English words (the data's title words that a dictionary lists in lower case: no names,
  no brands; `words.json`),
- holds no word of the blocklist (blocklist.txt, hashed),
- is new: neither the title nor its parts (before and after a colon, without a leading article) is a data title,
  a data title's part or a franchise name ("Star Wars"), no run of two words or more in it is one, it shares no
  run of four words with a data title, and a title of two to four words is not a run of a data title ("The
  Grizzly Maze" of "Into the Grizzly Maze"). Plurals do not make a title new ("The Puffy Chairs"). The data's
  titles are not shipped: the checkpoint holds salted 64-bit hashes of them and of their runs of 2-4 words
  (normalised: accents stripped, case folded, punctuation dropped; mojibake repaired and not), which answer "is
  this a data title (or part of one)?" and nothing else.
"""
from __future__ import annotations

import functools
import hashlib
import random
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..data import repair_title as repair  # noqa: F401  (re-exported: the titles' helpers live here)
from .. import genres as G
from .. import hub
from ..errors import CheckpointError

CHECKPOINT_NAME = "titles"
WORDS_FILE = "words.json"
BOS, EOS = "\x02", "\x03"
BLOCKLIST_FILE = Path(__file__).resolve().parent / "blocklist.txt"
SMALL = frozenset("a an and as at but by for from in into nor of on or over the to up with".split())


# ------------------------------------------------------------------------------------------ text helpers
def normalise(text: str) -> str:
    """Case- and accent-insensitive form of a title: NFKD, combining marks dropped, case folded, "&" -> "and",
    anything but letters and digits -> one space."""
    text = unicodedata.normalize("NFKD", text.replace("&", " and "))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def loose(norm: str) -> str:
    """A normalised title with plural-like endings dropped ("the puffy chairs" -> "the puffy chair"), so that a
    title differing from a data title only in a plural is not new."""
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in norm.split())


def title_hash(salt: str, norm: str) -> int:
    """Salted 64-bit hash (signed, to fit an int64 tensor) of a normalised title (in its loose form)."""
    digest = hashlib.blake2b(f"{salt}\x1f{loose(norm)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def word_windows(norm: str, n: int) -> list[str]:
    words = norm.split()
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


@functools.lru_cache(maxsize=1)
def blocklist() -> frozenset[str]:
    """The blocked words' hashes (blocklist.txt: first 16 hex digits of SHA-256 of the lower-case word)."""
    lines = BLOCKLIST_FILE.read_text().splitlines() if BLOCKLIST_FILE.is_file() else []
    return frozenset(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


def _word_hash(word: str) -> str:
    return hashlib.sha256(word.encode()).hexdigest()[:16]


def blocked(text: str, extra: Iterable[str] = ()) -> bool:
    """True when a word of `text` (or a part of a hyphenated word, or its stem before 's) is on the blocklist
    (or among `extra` plain words, for tests)."""
    hashes = blocklist() | {_word_hash(normalise(w)) for w in extra}
    for word in normalise(text).split():  # hyphenated words are split by normalise
        if any(_word_hash(form) in hashes for form in (word, word[:-1] if word.endswith("s") else word,
                                                        word[:-2] if word.endswith("es") else word)):
            return True
    return False


def title_case(text: str) -> str:
    """Poster title case: each word capitalised except small words inside the title ("Night of the Hunter")."""
    words = text.split()
    out = []
    for i, w in enumerate(words):
        bare = w.strip("\"'(").lower()
        if 0 < i < len(words) - 1 and bare in SMALL and not words[i - 1].endswith(":"):
            out.append(w.lower())
        else:
            out.append("-".join(p[:1].upper() + p[1:] for p in w.split("-")))
    return " ".join(out)


def _tokens(title: str) -> list[str]:
    """The words of a title for the vocabulary check (lower case, outer punctuation and 's stripped, hyphenated
    words split)."""
    out = []
    for w in title.split():
        w = w.strip(".,:;!?\"()").lower()
        for part in w.split("-"):
            part = part.strip("'")
            if part.endswith("'s"):
                part = part[:-2]
            if part:
                out.append(part)
    return out


# ------------------------------------------------------------------------------------------ the model
class TitleModel(nn.Module, hub.HubMixin):
    """Character n-gram model of movie titles per genre (statistics in buffers; see the module docstring)."""

    def __init__(self, genres: Sequence[str] = G.GENRES, alphabet: str = BOS + EOS, order: int = 7,
                 n_contexts: Sequence[int] = (), n_pairs: Sequence[int] = (), n_titles: int = 0, n_windows: int = 0,
                 window: int = 4, salt: str = "", genre_weight: float = 12.0, discount: float = 0.75,
                 temperature: float = 0.75, max_chars: int = 32, max_words: int = 5, count_bits: int = 16):
        super().__init__()
        self.genres, self.alphabet, self.order = list(genres), alphabet, int(order)
        self.window, self.salt = int(window), salt
        self.genre_weight, self.discount, self.temperature = float(genre_weight), float(discount), float(temperature)
        self.max_chars, self.max_words = int(max_chars), int(max_words)
        n_contexts = list(n_contexts) or [1] + [0] * (self.order - 1)
        n_pairs = list(n_pairs) or [0] * self.order
        for k in range(self.order):
            if k:
                self.register_buffer(f"ctx{k}", torch.zeros(n_contexts[k], k, dtype=torch.int16))
            self.register_buffer(f"ptr{k}", torch.zeros(n_contexts[k] + 1, dtype=torch.int32))
            self.register_buffer(f"next{k}", torch.zeros(n_pairs[k], dtype=torch.int16))
            self.register_buffer(f"count{k}", torch.zeros(n_pairs[k], len(self.genres),
                                                          dtype=torch.int16 if count_bits == 16 else torch.int32))
        self.register_buffer("titles", torch.zeros(n_titles, dtype=torch.int64))
        self.register_buffer("windows", torch.zeros(n_windows, dtype=torch.int64))
        self.words: frozenset[str] = frozenset()
        self._tables = None
        self._title_set: Optional[set[int]] = None
        self._window_set: Optional[set[int]] = None
        self._cache: dict = {}

    @classmethod
    def load(cls, directory: Optional[str | Path] = None, hub_repo: Optional[str] = None) -> "TitleModel":
        """The checkpoint (config.json, model.safetensors, words.json); CheckpointError naming the fix."""
        import json

        folder = hub.resolve(CHECKPOINT_NAME, hub_repo=hub_repo, directory=directory)
        model = hub.load_model(cls, CHECKPOINT_NAME, directory=folder)
        try:
            model.words = frozenset(json.loads((folder / WORDS_FILE).read_text())["words"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"Missing or corrupt {folder / WORDS_FILE} ({exc}): retrain with "
                                  "python train/train_titles.py.") from None
        return model

    # -- fitting
    @classmethod
    def fit(cls, titles: Iterable[tuple[str, Sequence[str]]], known_titles: Iterable[str], words: Iterable[str], *,
            order: int = 7, prune_above: int = 2, salt: Optional[str] = None, **config) -> "TitleModel":
        """Count the (title, genres) pairs; `known_titles` are every title that must never be invented (all of the
        data, any form), `words` the vocabulary invented titles may use."""
        titles = [(t, tuple(gs)) for t, gs in titles if t]
        genres = list(config.pop("genres", G.GENRES))
        gidx = {g: i for i, g in enumerate(genres)}
        chars = Counter(ch for t, _ in titles for ch in t)
        alphabet = BOS + EOS + "".join(sorted(chars))
        cid = {ch: i for i, ch in enumerate(alphabet)}
        tables: list[dict[str, dict[int, np.ndarray]]] = [dict() for _ in range(order)]
        for t, gs in titles:
            s = BOS * (order - 1) + t + EOS
            gv = np.zeros(len(genres), np.int64)
            for g in gs:
                if g in gidx:
                    gv[gidx[g]] = 1
            for i in range(order - 1, len(s)):
                nxt = cid[s[i]]
                for k in range(order):
                    row = tables[k].setdefault(s[i - k:i], {})
                    if nxt in row:
                        row[nxt] += gv
                    else:
                        row[nxt] = gv.copy()
        salt = salt if salt is not None else hashlib.sha256(repr(sorted(chars.items())).encode()).hexdigest()[:16]
        window = int(config.get("window", 4))
        n_contexts, n_pairs, bufs = [], [], {}
        for k in range(order):
            ctxs, ptr, nxts, counts = [], [0], [], []
            for ctx in sorted(tables[k]):
                row = {n: c for n, c in tables[k][ctx].items() if k <= prune_above or c.sum() > 1}
                if not row:
                    continue
                ctxs.append([cid[ch] for ch in ctx])
                for n in sorted(row):
                    nxts.append(n)
                    counts.append(row[n])
                ptr.append(len(nxts))
            n_contexts.append(len(ptr) - 1)
            n_pairs.append(len(nxts))
            if k:
                bufs[f"ctx{k}"] = torch.tensor(ctxs, dtype=torch.int16).reshape(-1, k)
            bufs[f"ptr{k}"] = torch.tensor(ptr, dtype=torch.int32)
            bufs[f"next{k}"] = torch.tensor(nxts, dtype=torch.int16)
            bufs[f"count{k}"] = torch.tensor(np.array(counts, np.int64).reshape(-1, len(genres)))
        norms = {normalise(t) for t in known_titles} - {""}
        # franchise names count as titles too: the part before a colon ("star wars" of "Star Wars: Episode IV"),
        # and two leading words without a small word that begin two data titles or more ("harry potter")
        # and the part after it ("damnation" of "Resident Evil: Damnation"); titles without a leading article
        known_titles = list(known_titles)
        mains = {normalise(t.split(":")[0]) for t in known_titles if ":" in t}
        subtitles = {normalise(t.split(":", 1)[1]) for t in known_titles if ":" in t}
        starts = Counter(" ".join(n.split()[:2]) for n in norms if len(n.split()) > 2)
        franchises = {s for s, c in starts.items() if c >= 2 and not set(s.split()) & SMALL}
        bare = {" ".join(n.split()[1:]) for n in norms if n.split()[0] in ("the", "a", "an") and len(n.split()) > 2}
        norms |= {m for m in mains if len(m.split()) >= 2} | franchises | bare | (subtitles - {""})
        title_hashes = sorted({title_hash(salt, n) for n in norms})
        window_hashes = sorted({title_hash(salt, w) for n in norms for k in range(2, window + 1)
                                for w in word_windows(n, k)})
        bits = 16 if max(int(bufs[f"count{k}"].max()) if bufs[f"count{k}"].numel() else 0
                         for k in range(order)) < 2**15 else 32
        for k in range(order):
            bufs[f"count{k}"] = bufs[f"count{k}"].to(torch.int16 if bits == 16 else torch.int32)
        model = cls(genres=genres, alphabet=alphabet, order=order, n_contexts=n_contexts, n_pairs=n_pairs,
                    n_titles=len(title_hashes), n_windows=len(window_hashes), salt=salt, count_bits=bits, **config)
        bufs["titles"] = torch.tensor(title_hashes, dtype=torch.int64)
        bufs["windows"] = torch.tensor(window_hashes, dtype=torch.int64)
        model.load_state_dict(bufs)
        model.words = frozenset(words)
        return model

    # -- lookups
    def _lookup(self):
        if self._tables is None:
            tables = []
            for k in range(self.order):
                ptr = getattr(self, f"ptr{k}").numpy()
                if k:
                    ids = getattr(self, f"ctx{k}").numpy()
                    keys = ["".join(self.alphabet[i] for i in row) for row in ids.tolist()]
                else:
                    keys = [""]
                tables.append(({key: (int(ptr[i]), int(ptr[i + 1])) for i, key in enumerate(keys)},
                               getattr(self, f"next{k}").numpy().astype(np.int64),
                               getattr(self, f"count{k}").numpy().astype(np.float64)))
            self._tables = tables
        return self._tables

    def exists(self, title: str) -> Optional[str]:
        """Why `title` is not new ("exists", "contains", "copies"), or None when it is."""
        if self._title_set is None:
            self._title_set = set(self.titles.tolist())
            self._window_set = set(self.windows.tolist())
        norm = normalise(title)
        words = norm.split()
        h = functools.partial(title_hash, self.salt)
        main = normalise(title.split(":")[0])
        sub = normalise(title.split(":", 1)[1]) if ":" in title else ""
        forms = {norm, main, sub, *(" ".join(f.split()[1:]) for f in (norm, main) if f.split()[:1] in (["the"], ["a"],
                                                                                                        ["an"]))}
        if any(h(f) in self._title_set for f in forms if f):
            return "exists"
        for i in range(len(words)):
            for j in range(i + 2, len(words) + 1):
                if (j - i) < len(words) and h(" ".join(words[i:j])) in self._title_set:
                    return "contains"
        bare = " ".join(words[1:]) if words[:1] in (["the"], ["a"], ["an"]) else norm
        if (1 < len(words) <= self.window and (h(norm) in self._window_set or h(bare) in self._window_set)) or \
                any(h(w) in self._window_set for w in word_windows(norm, self.window)):
            return "copies"
        return None

    def reject_reason(self, title: str, extra_blocked: Iterable[str] = ()) -> Optional[str]:
        """Why a sampled title is not kept ("shape", "vocabulary", "blocklist", or exists()'s reasons), or None."""
        words = title.split()
        if not (2 <= len(title) <= self.max_chars and 1 <= len(words) <= self.max_words):
            return "shape"
        if any(ch.isdigit() for ch in title) or re.search(r"[()\[\]\"“”«»/\\#@*_+=|<>{}]", title):
            return "shape"
        if title[-1] in ":-,;&" or title[0] in ":-,;&.'!?" or "  " in title or title.count(":") > 1:
            return "shape"
        if self.words and not all(t in self.words for t in _tokens(title)):
            return "vocabulary"
        if blocked(title, extra_blocked):
            return "blocklist"
        return self.exists(title)

    # -- sampling
    def _gids(self, genres: Sequence[str]) -> tuple[int, ...]:
        ids = tuple(sorted({self.genres.index(g) for g in genres if g in self.genres}))
        return ids or tuple(range(len(self.genres)))

    def _dist(self, context: str, gids: tuple[int, ...]) -> np.ndarray:
        key = (gids, context)
        p = self._cache.get(key)
        if p is not None:
            return p
        tables = self._lookup()
        V, D, Wg = len(self.alphabet), self.discount, self.genre_weight
        p = None
        for k in range(self.order):
            index, nxt, counts = tables[k]
            span = index.get(context[len(context) - k:] if k else "")
            if span is None:
                break
            a, b = span
            c = counts[a:b]
            m = c.sum(1) + Wg * c[:, list(gids)].mean(1)
            total = m.sum()
            if total <= 0:
                break
            q = np.zeros(V)
            if p is None:
                q[nxt[a:b]] = m / total
            else:
                q[nxt[a:b]] = np.maximum(m - D, 0.0) / total
                q += (D * (b - a) / total) * p
            p = q
        if p is None:  # an empty model: end at once
            p = np.zeros(V)
            p[1] = 1.0
        p = p ** (1.0 / self.temperature)
        p = p / p.sum()
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = p
        return p

    def sample(self, genres: Sequence[str], rng: random.Random) -> str:
        """One raw sample (not checked)."""
        gids = self._gids(genres)
        ctx, out = BOS * (self.order - 1), []
        for _ in range(self.max_chars * 2):
            p = self._dist(ctx, gids)
            i = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
            i = min(i, len(p) - 1)
            if i == 1 or self.alphabet[i] in (BOS, EOS):
                break
            out.append(self.alphabet[i])
            ctx = (ctx + self.alphabet[i])[-(self.order - 1):] if self.order > 1 else ""
        return title_case(" ".join("".join(out).split()))

    def invent(self, genres: Sequence[str], key: int | str = 0, *, stats: Optional[Counter] = None,
               max_tries: int = 400, extra_blocked: Iterable[str] = ()) -> str:
        """A new title for the genre set (empty = every genre), the same for the same (genres, key): samples until
        one passes `reject_reason` (counted in `stats` by reason, "kept" for the one returned)."""
        genres = [G.parse_genre(g) for g in genres]
        rng = random.Random(f"title:{'|'.join(sorted(genres))}:{key}")
        extra_blocked = tuple(extra_blocked)
        for _ in range(max_tries):
            title = self.sample(genres, rng)
            reason = self.reject_reason(title, extra_blocked)
            if stats is not None:
                stats[reason or "kept"] += 1
            if reason is None:
                return title
        words = sorted(w for w in self.words if len(w) > 3 and w.isalpha())
        for _ in range(1000 if words else 0):  # practically never: a plain "The X of Y" from the vocabulary
            title = title_case(f"the {rng.choice(words)} of {rng.choice(words)}")
            if self.reject_reason(title, extra_blocked) is None:
                return title
        return "Untitled"


def load_title_model(directory: Optional[str | Path] = None, hub_repo: Optional[str] = None) -> TitleModel:
    return TitleModel.load(directory=directory, hub_repo=hub_repo)
