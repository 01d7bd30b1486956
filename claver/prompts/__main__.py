"""python -m claver.prompts {generate, stats}"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..labels import DATASETS, class_names
from . import load, shipped
from .backends import OpenAIChat, PromptBackendError, Transformers, with_retries
from .fitting import clip_token_counter
from .format import FAMILIES
from .generate import generate
from .stats import family_counts, problems, retrieval_accuracy


def cmd_generate(args: argparse.Namespace) -> int:
    names = class_names(args.labels)
    try:
        if args.backend == "openai":
            if not args.base_url:
                raise PromptBackendError(
                    "--base-url is required with the openai backend (e.g. http://localhost:8000/v1)"
                )
            backend = OpenAIChat(args.base_url, args.model, args.api_key_env, args.timeout, args.temperature)
        else:
            backend = Transformers(args.model, args.temperature)
        generate(
            names,
            with_retries(backend, retries=args.retries, backoff=args.backoff),
            args.out,
            dataset=args.dataset or Path(args.labels).stem,
            families=args.families,
            variants=args.variants,
            concurrency=args.concurrency,
            count_tokens=clip_token_counter(),
            generator_info={"model": args.model, "backend": args.backend, "settings": backend.settings()},
        )
    except PromptBackendError as e:
        print(f"claver.prompts: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    count = clip_token_counter()
    print("label lists:")
    for ds in DATASETS:
        print(f"  {ds:12s} {len(class_names(ds)):4d} classes")
    targets = [(p, None) for p in args.files] or [(ds, ds) for ds in shipped()]
    bad = 0
    for target, dataset in targets:
        pf = load(target)
        labels = class_names(dataset or pf.dataset) if (dataset or pf.dataset) in DATASETS else None
        print(f"prompts {target}: {len(pf.classes)} classes, generator {pf.generator.get('model', '?')}")
        for fam, (n, lo, hi) in family_counts(pf).items():
            print(f"  {fam:14s} {n:5d} descriptions, {lo}-{hi} per class")
        print(f"  retrieval accuracy {retrieval_accuracy(pf):.2f} (descriptions alone, class-name words removed)")
        found = problems(pf, labels, count, args.min_variants)
        for p in found:
            print(f"  problem: {p}")
        print(f"  {len(found)} problems")
        bad += len(found)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    # Run with -m, sys.argv[0] is this file's path, which names no command a user could type.
    prog = "python -m claver.prompts" if os.path.basename(sys.argv[0]) == "__main__.py" else None
    ap = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write interpretive descriptions for a label list with an LLM")
    g.add_argument("--labels", required=True, help="'id,name' CSV, or a shipped list: " + ", ".join(DATASETS))
    g.add_argument("--out", required=True, help="prompt file to write (its cache goes beside it)")
    g.add_argument("--backend", choices=["openai", "transformers"], default="openai")
    g.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://localhost:8000/v1")
    g.add_argument("--model", required=True, help="model name on the server, or a Hugging Face model id")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    g.add_argument("--variants", type=int, default=2, help="samples per class and family")
    g.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    g.add_argument("--concurrency", type=int, default=4)
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    g.add_argument("--retries", type=int, default=3)
    g.add_argument("--backoff", type=float, default=1.0, help="first retry delay in seconds (doubles)")
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--dataset", help="dataset name recorded in the file (default: the labels file name)")
    s = sub.add_parser("stats", help="counts per dataset and family, and any problems")
    s.add_argument("files", nargs="*", help="prompt files (default: the shipped ones)")
    s.add_argument("--min-variants", type=int, default=2)
    args = ap.parse_args(argv)
    return cmd_generate(args) if args.cmd == "generate" else cmd_stats(args)


if __name__ == "__main__":
    sys.exit(main())
