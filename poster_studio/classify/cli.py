"""`python -m poster_studio classify | evaluate-classifier`."""
from __future__ import annotations

import json

from .. import genres as G
from .evaluate import evaluate_classifier
from .service import Classifier


def _cmd_classify(args) -> int:
    clf = Classifier.load(hub_repo=args.hub_repo)
    results = []
    for f in args.files:
        a = clf.analyze(f, k=5 if clf.index is not None else 0)
        results.append({"file": f, "scores": a.scores, "labels": a.labels, "top": a.top, "similar": a.similar,
                        "notes": a.notes})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['file']}: {', '.join(G.DISPLAY_NAMES[g] for g in r['labels']) or '(no genre above threshold)'}")
            for g, s in sorted(r["scores"].items(), key=lambda kv: -kv[1]):
                print(f"  {G.DISPLAY_NAMES[g]:<20} {s:.3f}")
            for s in r["similar"]:
                print(f"  similar: {s['title']} ({s['year']})  id={s['id']}  distance={s['distance']:.3f}")
    return 0


def _cmd_evaluate(args) -> int:
    clf = Classifier.load(hub_repo=args.hub_repo, directory=args.checkpoint)
    print(json.dumps(evaluate_classifier(args.images, args.labels, args.split, clf, args.limit), indent=2))
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("classify", help="Genres, probabilities and similar posters for poster images.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--hub-repo", default=None)
    p.set_defaults(func=_cmd_classify)
    e = sub.add_parser("evaluate-classifier", help="Multi-label metrics of the classifier on a labelled split (JSON).")
    e.add_argument("--images", required=True, help="folder of <id>.jpg posters")
    e.add_argument("--labels", required=True, help="labels CSV")
    e.add_argument("--split", default="val", help="split to evaluate (default val; 'all' for every row)")
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--checkpoint", default=None, help="checkpoint folder (default checkpoints/classifier)")
    e.add_argument("--hub-repo", default=None)
    e.set_defaults(func=_cmd_evaluate)
