"""Write a benchmark's results: results.json, report.md and heatmaps (PNG)."""

from __future__ import annotations

import json
from pathlib import Path


def _fmt(x, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _rounded(obj, digits: int = 4):
    """Floats to ``digits`` places, so results.json stays small and diffs stay readable."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v, digits) for v in obj]
    return obj


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _short(lang: str) -> str:
    return lang.split("_")[0]


def _shorts(langs: list[str]) -> list[str]:
    """Codes without script, except where two scripts of one language are both present."""
    short = [_short(lg) for lg in langs]
    return [lg if short.count(s) > 1 else s for lg, s in zip(langs, short, strict=True)]


def pair_matrix(results: dict, metric: str) -> tuple[list[str], list[str], list[list]]:
    pairs = results["retrieval"]["pairs"]
    q_langs = results["languages"]["query"]
    d_langs = results["languages"]["document"]
    rows = [[(pairs[q].get(d) or {}).get(metric) if pairs[q].get(d) else None for d in d_langs]
            for q in q_langs]
    return q_langs, d_langs, rows


def heatmap(values: list[list], rows: list[str], cols: list[str], title: str, path: Path,
            vmin: float = 0.0, vmax: float = 1.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    size = max(6.0, 0.32 * max(len(rows), len(cols)) + 2)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    im = ax.imshow(data, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_xticks(range(len(cols)), _shorts(list(cols)), rotation=90, fontsize=8)
    ax.set_yticks(range(len(rows)), _shorts(list(rows)), fontsize=8)
    ax.set_xlabel("document language")
    ax.set_ylabel("query language")
    if len(rows) <= 32:
        for i in range(len(rows)):
            for j in range(len(cols)):
                if not np.isnan(data[i, j]):
                    # floor, so 0.995 shows 99: "100" only when every query succeeded
                    ax.text(j, i, f"{np.floor(data[i, j] * 100 + 1e-9):.0f}", ha="center",
                            va="center",
                            fontsize=5.5, color="white" if data[i, j] < 0.6 else "black")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def best_few_shot(topics: dict, lang: str, source: str) -> float | None:
    """Best few-shot accuracy on ``lang`` over every setting trained on ``source``."""
    accs = [res["per_language"][lang]["accuracy"]
            for key, res in topics.get("few_shot", {}).items()
            if key.startswith(source + "|") and lang in res["per_language"]]
    return max(accs) if accs else None


def write_report(results: dict, out_dir: Path) -> dict[str, Path]:
    """Write results.json, report.md, recall@5 and consistency heatmaps into ``out_dir``."""
    from .runner import RELATED

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "report.md"}
    paths["json"].write_text(json.dumps(_rounded(results), ensure_ascii=False,
                                        separators=(",", ":")) + "\n", encoding="utf-8")
    q_langs, d_langs, r5 = pair_matrix(results, "recall@5")
    paths["recall5_png"] = out_dir / "recall_at_5.png"
    heatmap(r5, q_langs, d_langs, f"recall@5, {results['model']}, {results['dataset']}",
            paths["recall5_png"])
    _, _, r1 = pair_matrix(results, "recall@1")
    paths["recall1_png"] = out_dir / "recall_at_1.png"
    heatmap(r1, q_langs, d_langs, f"recall@1, {results['model']}, {results['dataset']}",
            paths["recall1_png"])

    topics = results.get("topics") or {}
    md = [f"# xsearch benchmark: {results['dataset']} with {results['model']}", ""]
    s = results["sizes"]
    md += [f"{s['queries']} queries, {s['documents']} documents, "
           f"{len(d_langs)} document languages; run time "
           f"{results['timings'].get('total_seconds')} s. Versions: "
           + ", ".join(f"{k} {v}" for k, v in results["versions"].items()), ""]

    md += ["## Retrieval summary", ""]
    rows = []
    for metric in ("recall@1", "recall@5", "recall@10", "mrr@10"):
        summ = results["retrieval"].get(metric)
        if summ:
            rows.append([metric, summ["mean"], summ["off_diagonal_mean"],
                         ", ".join(f"{_short(w['query_lang'])}→{_short(w['doc_lang'])} "
                                   f"{w['value']:.3f}" for w in summ["worst_pairs"][:5])])
    md += [_table(["metric", "mean", "off-diagonal mean", "worst pairs"], rows), ""]

    # Per-language table: everything about one language side by side.
    summ5 = results["retrieval"]["recall@5"]
    summ1 = results["retrieval"]["recall@1"]
    tok = results.get("tokenization", {})
    lid = results.get("language_id", {})
    zs = topics.get("zero_shot", {}).get("per_language", {})
    mixed = (results.get("mixed") or {}).get("per_query_language", {})
    depth = (results.get("mixed") or {}).get("depth")
    langs = sorted(set(q_langs) | set(d_langs))  # a query-only language gets a row too
    q1 = summ1.get("per_query_lang_cross", summ1["per_query_lang"])  # older results.json
    q5 = summ5.get("per_query_lang_cross", summ5["per_query_lang"])
    d1 = summ1.get("per_doc_lang_cross", summ1["per_doc_lang"])
    d5 = summ5.get("per_doc_lang_cross", summ5["per_doc_lang"])
    pairs = results["retrieval"]["pairs"]
    same5 = {lg: (pairs.get(lg, {}).get(lg) or {}).get("recall@5") for lg in langs}
    has_same = any(v is not None for v in same5.values())
    header = ["language", "R@1 as query", "R@5 as query", "R@5 as docs", "R@1 as docs"]
    if has_same:
        header.append("R@5 same language")
    if mixed:
        header += [f"mixed mAP@{depth}", "own-lang bias of wrong hits@10"]
    if zs:  # a set without topic labels has no topic columns
        header += ["zero-shot acc", "zero-shot F1"]
    # The first source asked for (--source-lang; English unless told): few_shot's keys are
    # "source|k=...|method", the asked ones first.
    primary = next((key.split("|")[0] for key in topics.get("few_shot") or {}), "eng_Latn")
    if topics.get("few_shot"):
        header += [f"few-shot {_short(primary)} (best)", "related src",
                   "few-shot related (best)"]
    header += ["tokens/unit", "tokens vs eng", "langid acc"]
    rows = []
    flags = []
    for lang in langs:
        row = [lang, q1.get(lang), q5.get(lang), d5.get(lang), d1.get(lang)]
        if has_same:
            row.append(same5[lang])
        if mixed:
            m = mixed.get(lang, {})
            row += [m.get(f"map@{depth}"), m.get("wrong_bias", m.get("bias"))]
        if zs:
            row += [zs.get(lang, {}).get("accuracy"), zs.get(lang, {}).get("macro_f1")]
        if topics.get("few_shot"):
            row.append(best_few_shot(topics, lang, primary))
            rel = RELATED.get(lang)
            rel_acc = best_few_shot(topics, lang, rel) if rel else None
            row += [rel if rel_acc is not None else "–", rel_acc]
        t = tok.get(lang, {})
        unit = t.get("unit", "word")
        ratio = t.get("ratio_to_english")
        mark = " ⚠" if t.get("over_2x") else ""
        if t.get("over_2x"):
            flags.append(f"{lang} ({ratio:.2f}x English)")
        row += [f"{t.get('fertility', 0):.2f}/{unit}" if t else "–",
                (f"{ratio:.2f}x{mark}" if ratio else "–"),
                lid.get(lang, {}).get("accuracy")]
        rows.append(row)
    md += ["## Per language", "",
           "R@k as query: mean over document languages (other than itself) of recall@k for "
           "queries in this language; as docs: mean over query languages (other than itself)"
           + ("; same language: queries and documents both in this language" if has_same
              else "")
           + ". Tokens vs eng: total tokens for the same sentences divided by English's "
           "(tokens per unit over English's when the set has no translation groups); "
           "⚠ = over 2x.", "",
           _table(header, rows), ""]
    if flags:
        md += ["**Tokenization tax over 2x English:** " + ", ".join(flags), ""]

    for metric in ("recall@1", "recall@5"):
        q, d, mat = pair_matrix(results, metric)
        md += [f"## {metric} matrix (rows: query language, columns: document language)", "",
               _table(["q \\ d"] + _shorts(d),
                      [[qq] + list(row) for qq, row in zip(_shorts(q), mat, strict=True)]),
               ""]
    md += ["![recall@5](recall_at_5.png)", ""]

    if topics:
        md += ["## Topics", "",
               f"Labels: {', '.join(topics['labels'])}; template `{topics['template']}`; "
               f"scored on {topics['eval_groups']} translation groups not used for training.",
               ""]
        cons = topics["zero_shot"]["consistency"]
        md += [f"Zero-shot cross-lingual consistency: {cons['all_agree']:.3f} of "
               f"{cons['n_groups']} groups get the same label in all {cons['n_languages']} "
               "languages.", ""]
        if topics.get("few_shot"):
            rows = []
            for key, res in topics["few_shot"].items():
                accs = [v["accuracy"] for v in res["per_language"].values()]
                rows.append([key.replace("|", " · "), res["n_train"], sum(accs) / len(accs),
                             min(accs), res["consistency"]["all_agree"]])
            zs_accs = [v["accuracy"] for v in zs.values()]
            rows.insert(0, ["zero-shot", 0, sum(zs_accs) / len(zs_accs), min(zs_accs),
                            cons["all_agree"]])
            md += [_table(["setting", "train examples", "mean acc", "worst language acc",
                           "all-agree consistency"], rows), ""]
        if topics.get("source_ranking"):
            md += ["Few-shot source languages ranked per target (`xsearch.sources`; measured "
                   "transfer in benchmarks/results/transfer.md):", "",
                   _table(["target", "1st", "2nd", "3rd"],
                          [[t] + [r[0] for r in ranked[:3]]
                           for t, ranked in topics["source_ranking"].items()]), ""]
        agree = topics["zero_shot"]["pairwise_agreement"]
        langs = d_langs
        mat = [[1.0 if a == b else agree.get(f"{min(a, b)}|{max(a, b)}") for b in langs]
               for a in langs]
        paths["consistency_png"] = out_dir / "consistency.png"
        heatmap(mat, langs, langs, "zero-shot topic agreement per language pair",
                paths["consistency_png"])
        md += ["![consistency](consistency.png)", ""]
        conf = topics["zero_shot"]["confusion"]
        md += ["Zero-shot confusion (all languages; rows true, columns predicted):", "",
               _table(["true \\ pred"] + conf["labels"],
                      [[lb] + row for lb, row in zip(conf["labels"], conf["matrix"],
                                                      strict=True)]), ""]

    th = results.get("throughput", {})
    md += ["## Speed (this machine, this run)", "",
           _table(["measure", "value"], [
               ["embedding passages/s (uncached)", th.get("embed_passages_per_second")],
               ["embedding tokens/s", th.get("embed_tokens_per_second")],
               ["query latency p50 (ms, single)", th.get("query_ms_p50")],
               ["query latency p95 (ms, single)", th.get("query_ms_p95")],
               ["query latency batched (ms/query)", th.get("query_ms_batched_per_query")],
               ["index build, all per-language indexes (s)",
                sum(results["timings"]["index_build_seconds"].values())],
               ["mixed index build (s)", results["timings"].get("mixed_index_build_seconds")],
           ]), ""]
    paths["markdown"].write_text("\n".join(md), encoding="utf-8")
    if "consistency_png" not in paths:  # an earlier run's, in the same --out, goes
        (out_dir / "consistency.png").unlink(missing_ok=True)
    return paths
