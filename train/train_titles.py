"""Train the title model (poster_studio.generate.invent.TitleModel) on the data's titles, and measure it.

  python train/train_titles.py --data ../shared/data/posters

Reads the titles of labels.csv (mojibake repaired: "cinÃ©ma" -> "cinéma"), builds the vocabulary invented titles may
use (the title words that --dictionary lists in lower case: common English words, no names or brands; without a
dictionary, words of at least 3 titles), counts character n-grams per genre over the titles made of those words
and without digits (--all-titles: every title), and writes the checkpoint (config.json + model.safetensors +
words.json + model card) to --out. Every title of the data, in every form, goes into the checkpoint only as a
salted 64-bit hash (what invented titles are checked against). It then invents --eval titles per genre (keys
0..N-1, as the app does) and records what was kept and what was rejected and why, checks the kept ones against the
data's titles themselves (not the hashes) and puts the figures and examples in the model card.

Seconds on one CPU core; there is nothing to resume (rerunning rebuilds the same checkpoint). The dictionary is
Debian's wamerican (`apt-get install wamerican`: /usr/share/dict/words), needed only here, not at run time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio import genres as G  # noqa: E402
from poster_studio import hub  # noqa: E402
from poster_studio.data import default_data_dir, read_labels  # noqa: E402
from poster_studio.generate.invent import TitleModel, _tokens, blocked, normalise, repair  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(default_data_dir()), help="poster folder (labels.csv)")
    p.add_argument("--out", default=str(ROOT / "checkpoints" / "titles"), help="checkpoint folder")
    p.add_argument("--dictionary", default="/usr/share/dict/words",
                   help="word list whose lower-case entries are the allowed words ('' = title words of >= 3 titles)")
    p.add_argument("--order", type=int, default=7, help="n-gram order (characters of context + 1)")
    p.add_argument("--prune-above", type=int, default=2, help="drop n-grams seen once above this context length")
    p.add_argument("--genre-weight", type=float, default=12.0, help="extra weight of the wanted genre's counts")
    p.add_argument("--temperature", type=float, default=0.75)
    p.add_argument("--max-chars", type=int, default=32)
    p.add_argument("--all-titles", action="store_true", help="count every title, not only those of known words")
    p.add_argument("--eval", type=int, default=200, help="titles invented per genre for the model card (0 = none)")
    return p.parse_args(argv)


def vocabulary(titles: list[str], dictionary: str) -> tuple[set[str], str]:
    words = Counter(w for t in titles for w in set(_tokens(t)))
    path = Path(dictionary) if dictionary else None
    if path is not None and path.is_file():
        common = {w.strip() for w in path.read_text(errors="replace").splitlines()
                  if w[:1].islower() and "'" not in w}
        vocab = {w for w in words if w in common and w.isalpha()}
        how = f"title words listed in lower case by {path} ({len(common):,} common words)"
    else:
        vocab = {w for w, n in words.items() if n >= 3 and w.isalpha()}
        how = "title words of at least 3 titles (no dictionary found)"
    return {w for w in vocab if not blocked(w)}, how


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    rows = read_labels(Path(args.data) / "labels.csv")
    fixed = [(repair(r.title).strip(), r.genres) for r in rows if r.title.strip()]
    clean = [(t, gs) for t, gs in fixed if "Ã" not in t]  # mojibake that could not be repaired
    words, how = vocabulary([t for t, _ in clean], args.dictionary)
    train = [(t, gs) for t, gs in clean if args.all_titles or
             (not any(ch.isdigit() for ch in t) and all(w in words for w in _tokens(t)))]
    known = {r.title for r in rows} | {t for t, _ in fixed}
    model = TitleModel.fit(train, known, words, order=args.order, prune_above=args.prune_above,
                           genre_weight=args.genre_weight, temperature=args.temperature, max_chars=args.max_chars)
    train_s = time.perf_counter() - t0
    print(json.dumps({"titles": len(rows), "trained_on": len(train), "vocabulary": len(words),
                      "n_pairs": sum(getattr(model, f"next{k}").numel() for k in range(model.order)),
                      "train_s": round(train_s, 2)}), flush=True)

    metrics: dict = {"titles_in_data": len(rows), "titles_trained_on": len(train), "vocabulary_words": len(words),
                     "title_hashes": int(model.titles.numel()), "window_hashes": int(model.windows.numel()),
                     "train_seconds": round(train_s, 2)}
    examples: dict[str, list[str]] = {}
    if args.eval:
        data_norms = {normalise(t) for t in known}
        stats, per_genre, t1 = Counter(), {}, time.perf_counter()
        for g in G.GENRES:
            s = Counter()
            titles = [model.invent([g], key, stats=s) for key in range(args.eval)]
            stats.update(s)
            per_genre[g] = {"distinct": len(set(titles)) / len(titles),
                            "samples_per_title": sum(s.values()) / len(titles),
                            "in_data": sum(normalise(t) in data_norms for t in titles)}
            examples[g] = titles[:6]
        n = args.eval * len(G.GENRES)
        sampled = sum(stats.values())
        metrics.update({
            "invented_titles": n, "samples_drawn": sampled,
            "rejected_existing": stats["exists"], "rejected_containing_a_title": stats["contains"],
            "rejected_copying_4_words": stats["copies"], "rejected_vocabulary": stats["vocabulary"],
            "rejected_shape": stats["shape"], "rejected_blocklist": stats["blocklist"],
            "kept_share_of_samples": stats["kept"] / max(1, sampled),
            "distinct_share": sum(v["distinct"] for v in per_genre.values()) / len(per_genre),
            "invented_titles_found_in_data": sum(v["in_data"] for v in per_genre.values()),
            "ms_per_title": 1000 * (time.perf_counter() - t1) / n, "per_genre": per_genre,
        })
        print(json.dumps({k: v for k, v in metrics.items() if k != "per_genre"}, indent=1), flush=True)
        for g, ts in examples.items():
            print(f"{g}: {' | '.join(ts)}")

    def write_words(path: Path) -> None:
        path.write_text(json.dumps({"how": how, "words": sorted(words)}, ensure_ascii=False, indent=0))

    example_md = "\n".join(f"- **{G.DISPLAY_NAMES[g]}**: " + "; ".join(ts) for g, ts in examples.items())
    hub.save_checkpoint(
        model, args.out,
        description=("Invented movie titles per genre for Poster Studio's typography: an interpolated "
                     f"absolute-discounting character {args.order}-gram model over the data's titles, the wanted "
                     f"genre's counts weighted x{1 + args.genre_weight:g} (temperature {args.temperature}); "
                     "samples are kept only when made of known English words (words.json), free of blocked words, "
                     "and new (see poster_studio/generate/invent.py)."
                     + (f"\n\nExamples (keys 0-5, as the app draws them):\n\n{example_md}" if examples else "")),
        data=(f"Titles of the poster data's labels.csv ({len(rows):,} posters; the IMDb titles of the Kaggle 'Movie "
              f"Genre from its Poster' set), mojibake repaired; counted: the {len(train):,} titles "
              + ("(all)" if args.all_titles else "made only of vocabulary words and without digits")
              + f". Vocabulary: {len(words):,} {how}. Every data title (raw and repaired) is shipped only as a "
              "salted 64-bit hash (`titles`, with franchise names such as the part before a colon), with the hashes "
              "of their runs of 2-4 words (`windows`): the title list itself is not in the checkpoint. The "
              "dictionary is used only here (Debian's wamerican)."),
        training=(f"Counting, {train_s:.1f} s on one CPU core (`python train/train_titles.py`); n-grams seen once "
                  f"are pruned above context length {args.prune_above}. The metrics come from {args.eval} titles "
                  "invented per genre (keys 0..N-1); `invented_titles_found_in_data` checks them against the data's "
                  "titles themselves, not the hashes."),
        metrics=metrics, extra_files={"words.json": write_words})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
