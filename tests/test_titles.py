"""Invented titles (poster_studio/generate/invent.py, blurbs.py, train/train_titles.py): new (never a data title,
checked against the data's titles themselves, case- and accent-insensitively), reproducible by seed, free of
blocked words; the checkpoint holds hashes, not the titles; the training script writes a checkpoint folder from
a tiny labels file in seconds.

The shipped-checkpoint tests skip when checkpoints/titles is missing; those against the data skip without it."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter

import pytest

from conftest import DATA_DIR, ROOT, checkpoint_missing, checkpoints_dir, needs_posters
from poster_studio import genres as G
from poster_studio.generate import blurbs
from poster_studio.generate import invent as I


@pytest.fixture(scope="module")
def shipped():
    reason = checkpoint_missing("titles")
    if reason:
        pytest.skip(reason)
    return I.TitleModel.load()


def test_normalise_is_case_accent_and_punctuation_insensitive():
    assert I.normalise("Amélie") == I.normalise("AMELIE") == "amelie"
    assert I.normalise("  Crouching Tiger,   Hidden Dragon! ") == "crouching tiger hidden dragon"
    assert I.normalise("Fast & Furious") == I.normalise("fast and furious")
    assert I.repair("Le coeur des hommes: cinÃ©ma") == "Le coeur des hommes: cinéma"
    assert I.title_case("night of the living things") == "Night of the Living Things"


@needs_posters
def test_invented_titles_are_new_and_reproducible_by_seed(shipped):
    from poster_studio.data import read_labels

    rows = read_labels(DATA_DIR / "labels.csv")
    data = {I.normalise(t) for r in rows for t in (r.title, I.repair(r.title))}
    stats = Counter()
    for genre in G.GENRES:
        titles = [shipped.invent([genre], key, stats=stats) for key in range(60)]
        assert titles == [shipped.invent([genre], key) for key in range(60)]  # the same seed, the same title
        assert len(set(titles)) >= 50, titles  # different seeds, (almost always) different titles
        assert not [t for t in titles if I.normalise(t) in data]  # never a data title, in any case or accent
        assert all(1 <= len(t.split()) <= 5 and len(t) <= shipped.max_chars for t in titles)
    assert stats["exists"] > 0  # the model does reproduce data titles ... and they are thrown away
    # the check answers for the data's titles, in other cases and without accents, and for their franchises
    for r in random.Random(1).sample([r for r in rows if "Ã" not in r.title and r.title.strip()], 200):
        assert shipped.exists(r.title.upper()) == "exists", r.title
        assert shipped.exists(I.normalise(r.title)) == "exists", r.title


def test_the_checkpoint_holds_hashes_not_titles(shipped):
    folder = checkpoints_dir() / "titles"
    assert {"config.json", "model.safetensors", "README.md", "words.json"} <= {p.name for p in folder.iterdir()}
    blob = b"".join((folder / name).read_bytes() for name in ("config.json", "model.safetensors", "words.json",
                                                              "README.md", "metrics.json"))
    words = json.loads((folder / "words.json").read_text())["words"]
    assert all(" " not in w for w in words)  # single words, never titles
    if (DATA_DIR / "labels.csv").is_file():
        from poster_studio.data import read_labels

        long_titles = [r.title for r in read_labels(DATA_DIR / "labels.csv") if len(r.title.split()) >= 3]
        for t in random.Random(2).sample(long_titles, 300):
            assert t.encode() not in blob and t.lower().encode() not in blob, t
    assert shipped.titles.numel() > 14000 and shipped.titles.dtype.is_floating_point is False


def test_blocked_words_never_appear(monkeypatch, shipped):
    """The blocklist is hashes (blocklist.txt); a word put on it never appears in an invented title, tagline or
    name (here a harmless word stands in for a slur: the check is the same)."""
    assert len(I.blocklist()) >= 60
    titles = [shipped.invent(["Horror_Thriller"], k) for k in range(200)]
    common = Counter(w for t in titles for w in I.normalise(t).split() if len(w) > 3).most_common(1)[0][0]
    stand_in = I._word_hash(common)
    monkeypatch.setattr(I, "blocklist", lambda: frozenset({stand_in}))
    assert I.blocked(f"The {common.upper()} Returns") and I.blocked(f"{common}-ish") and not I.blocked("The Returns")
    shipped._cache.clear()
    again = [shipped.invent(["Horror_Thriller"], k) for k in range(200)]
    assert not [t for t in again if common in I.normalise(t).split()]
    monkeypatch.setattr(I, "blocklist", lambda: frozenset({I._word_hash("door"), I._word_hash("mara")}))
    monkeypatch.setattr(blurbs, "blocked", I.blocked)
    rng = random.Random(0)
    assert not [s for s in (blurbs.tagline(["Horror_Thriller"], rng) for _ in range(200)) if "door" in s.lower()]
    assert not [n for n in (blurbs.name(rng) for _ in range(200)) if n.startswith("Mara ")]


def test_names_taglines_and_billing_are_generic_and_seeded():
    a, b = random.Random("k"), random.Random("k")
    assert blurbs.names(a, 3) == blurbs.names(b, 3)
    for n in blurbs.names(random.Random(3), 20):
        first, last = n.split(" ")
        assert first in blurbs.FIRST_NAMES and last in blurbs.LAST_NAMES
    units, ranks = blurbs.billing(random.Random(4), ("Ana Lima", "Kai Tamura"))
    assert len(units) == len(ranks) >= 9 and any(u.startswith("a ") and u.endswith(" film") for u in units)
    assert min(ranks) == 0
    for genre in G.GENRES:
        line = blurbs.tagline([genre], random.Random(genre))
        assert line and "{" not in line and line[0].isupper()
        assert "{" not in blurbs.release([genre], random.Random(genre))


def test_train_titles_writes_a_checkpoint_from_a_tiny_labels_file(tmp_path):
    titles = ["The Dark Harbor", "Night of the Harbor", "A Dark Night", "The Long Night", "Harbor Lights",
              "The Long Harbor Road", "Dark Road", "Night Road Home", "The Quiet Road", "Quiet Night Lights"]
    lines = ["id,title,year,genres,split"] + [f"p{i},{t},2000,{'Horror_Thriller' if i % 2 else 'Drama'},train"
                                              for i, t in enumerate(titles)]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "words").write_text("\n".join("the a of dark harbor night long lights road home quiet".split()))
    out = tmp_path / "titles"
    r = subprocess.run([sys.executable, str(ROOT / "train" / "train_titles.py"), "--data", str(tmp_path), "--out",
                        str(out), "--dictionary", str(tmp_path / "words"), "--eval", "5", "--order", "4"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {"config.json", "model.safetensors", "README.md", "words.json", "metrics.json"} <= \
        {p.name for p in out.iterdir()}
    model = I.TitleModel.load(directory=out)
    assert model.order == 4 and model.words == set("the a of dark harbor night long lights road home quiet".split())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["invented_titles_found_in_data"] == 0 and metrics["titles_in_data"] == 10
    for key in range(5):
        t = model.invent(["Drama"], key)
        assert I.normalise(t) not in {I.normalise(x) for x in titles}
        assert model.exists(t) is None or t == "Untitled"
    card = (out / "README.md").read_text()
    assert "salted 64-bit hash" in card and "The Dark Harbor" not in card
