"""The public releases of the benchmarks' data sets, and writing them in the layouts the loaders read.

Each `Release` says where a data set is published on the Hugging Face Hub, which of its configurations holds each
registry language, and how its rows become the files of the release layout (base.py: nothing reads the Hub at run
time). `fetch_release` is what `manage.py fetch_benchmarks` runs: it reads the Hub with `datasets.load_dataset`
(or a folder holding a copy of the Hub repository, for a machine without internet) and writes, per language, one
file atomically. Django-free.

What each release covers is also what the coverage page calls "supported, not downloaded".
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from annotation.languages import all_languages, get_language, normalize_language_code

# FLORES+ (the maintained FLORES-200) renamed a few configurations; the file we write keeps the FLORES-200 code.
FLORES_PLUS_ALIASES = {"zho_Hans": ("cmn_Hans",), "zho_Hant": ("cmn_Hant",)}
# Belebele's 122 language variants (FLORES-200 codes; facebook/belebele data/<code>.jsonl). Romanised variants
# (hin_Latn, urd_Latn, ...) and dialects outside the registry are not fetched.
BELEBELE_CODES = frozenset({
    "acm_Arab", "afr_Latn", "als_Latn", "amh_Ethi", "apc_Arab", "arb_Arab", "arb_Latn", "ars_Arab", "ary_Arab",
    "arz_Arab", "asm_Beng", "azj_Latn", "bam_Latn", "ben_Beng", "ben_Latn", "bod_Tibt", "bul_Cyrl", "cat_Latn",
    "ceb_Latn", "ces_Latn", "ckb_Arab", "dan_Latn", "deu_Latn", "ell_Grek", "eng_Latn", "est_Latn", "eus_Latn",
    "fin_Latn", "fra_Latn", "fuv_Latn", "gaz_Latn", "grn_Latn", "guj_Gujr", "hat_Latn", "hau_Latn", "heb_Hebr",
    "hin_Deva", "hin_Latn", "hrv_Latn", "hun_Latn", "hye_Armn", "ibo_Latn", "ilo_Latn", "ind_Latn", "isl_Latn",
    "ita_Latn", "jav_Latn", "jpn_Jpan", "kac_Latn", "kan_Knda", "kat_Geor", "kaz_Cyrl", "kea_Latn", "khk_Cyrl",
    "khm_Khmr", "kin_Latn", "kir_Cyrl", "kor_Hang", "lao_Laoo", "lin_Latn", "lit_Latn", "lug_Latn", "luo_Latn",
    "lvs_Latn", "mal_Mlym", "mar_Deva", "mkd_Cyrl", "mlt_Latn", "mri_Latn", "mya_Mymr", "nld_Latn", "nob_Latn",
    "npi_Deva", "npi_Latn", "nso_Latn", "nya_Latn", "ory_Orya", "pan_Guru", "pbt_Arab", "pes_Arab", "plt_Latn",
    "pol_Latn", "por_Latn", "ron_Latn", "rus_Cyrl", "shn_Mymr", "sin_Latn", "sin_Sinh", "slk_Latn", "slv_Latn",
    "sna_Latn", "snd_Arab", "som_Latn", "sot_Latn", "spa_Latn", "srp_Cyrl", "ssw_Latn", "sun_Latn", "swe_Latn",
    "swh_Latn", "tam_Taml", "tel_Telu", "tgk_Cyrl", "tgl_Latn", "tha_Thai", "tir_Ethi", "tsn_Latn", "tso_Latn",
    "tur_Latn", "ukr_Cyrl", "urd_Arab", "urd_Latn", "uzn_Latn", "vie_Latn", "war_Latn", "wol_Latn", "xho_Latn",
    "yor_Latn", "zho_Hans", "zho_Hant", "zsm_Latn", "zul_Latn",
})
PAWSX_CONFIGS = ("de", "en", "es", "fr", "ja", "ko", "zh")
XCOPA_CONFIGS = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
PARQUET_REVISION = "refs/convert/parquet"  # the Hub's own Parquet copy of every public data set


class HubUnavailable(Exception):
    """The Hub (or the local copy) could not be read: the message says what, why, and what to do."""


@dataclass(frozen=True)
class Release:
    dataset: str  # our dataset name: the samples folder, the BenchmarkSource name, the folder written
    hub_repo: str
    split: str
    configs: Callable[[], dict[str, tuple[str, ...]]]  # registry code -> configuration names to try, in order
    write: Callable[[Path, str, str, Iterable[dict[str, Any]]], int]  # (folder, code, config, rows) -> rows written
    terms: str = ""  # what the Hub asks before it serves the files


def _atomic_text(path: Path, text: str) -> None:
    """Write a file whole or not at all: a killed fetch never leaves half a file that a loader would read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _one_line(text: Any) -> str:
    """Line- and tab-separated layouts hold one value per line or cell: inner breaks and tabs become spaces."""
    return " ".join(str(text or "").split())


def _jsonl(rows: Iterable[dict[str, Any]], keys: tuple[str, ...] | None = None) -> tuple[str, int]:
    lines = [json.dumps({key: row.get(key) for key in keys} if keys else row, ensure_ascii=False, default=str)
             for row in rows]
    return "".join(f"{line}\n" for line in lines), len(lines)


# --- writers: rows of the Hub's schema -> the release layout the loaders read ----------------------------------

def write_flores(folder: Path, code: str, config: str, rows: Iterable[dict[str, Any]]) -> int:
    """devtest/<FLORES-200 code>.devtest, one sentence per line in the devtest order (by the rows' id, 1-1012):
    line n of every language is the same sentence, and the seed's sample indexes that order."""
    ordered = list(rows)
    if all(row.get("id") is not None for row in ordered):
        ordered.sort(key=lambda row: int(row["id"]))
    sentences = [_one_line(row.get("text", row.get("sentence"))) for row in ordered]
    if any(not sentence for sentence in sentences):
        raise HubUnavailable(f"{config}: a devtest row has no text; the download looks damaged, fetch it again")
    _atomic_text(folder / "devtest" / f"{_flores_configs()[code][0]}.devtest",  # FLORES-200's code, not FLORES+'s
                 "".join(f"{sentence}\n" for sentence in sentences))
    return len(sentences)


def write_xlsum(folder: Path, code: str, config: str, rows: Iterable[dict[str, Any]]) -> int:
    text, count = _jsonl(rows, ("id", "url", "title", "summary", "text"))
    _atomic_text(folder / f"{config}_test.jsonl", text)
    return count


def write_pawsx(folder: Path, code: str, config: str, rows: Iterable[dict[str, Any]]) -> int:
    # The released TSV is unquoted (the loader reads it with csv.QUOTE_NONE): cells hold no tab or line break.
    lines = ["id\tsentence1\tsentence2\tlabel"]
    for row in rows:
        cells = (_one_line(row.get("id")), _one_line(row.get("sentence1")), _one_line(row.get("sentence2")))
        lines.append("\t".join((*cells, str(int(row["label"])))))
    _atomic_text(folder / config / "test_2k.tsv", "".join(f"{line}\n" for line in lines))
    return len(lines) - 1


def write_xcopa(folder: Path, code: str, config: str, rows: Iterable[dict[str, Any]]) -> int:
    text, count = _jsonl(rows, ("premise", "choice1", "choice2", "question", "label", "idx"))
    _atomic_text(folder / config / f"test.{config}.jsonl", text)
    return count


def write_belebele(folder: Path, code: str, config: str, rows: Iterable[dict[str, Any]]) -> int:
    text, count = _jsonl(rows)
    _atomic_text(folder / f"{config}.jsonl", text)
    return count


# --- which configuration holds each registry language ---------------------------------------------------------

@cache
def _flores_configs() -> dict[str, tuple[str, ...]]:
    return {spec.code: (spec.flores_code, *FLORES_PLUS_ALIASES.get(spec.flores_code, ())) for spec in all_languages()}


@cache
def _xlsum_configs() -> dict[str, tuple[str, ...]]:
    from .xlsum import XLSUM_NAMES

    return {code: (name,) for name, code in XLSUM_NAMES.items() if get_language(code)}


def _by_code(configs: Iterable[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for config in configs:
        code = normalize_language_code(config)
        if code and code not in found:
            found[code] = (config,)
    return found


@cache
def _belebele_configs() -> dict[str, tuple[str, ...]]:
    return {spec.code: (spec.flores_code,) for spec in all_languages() if spec.flores_code in BELEBELE_CODES}


RELEASES: dict[str, Release] = {release.dataset: release for release in (
    Release("flores200", "openlanguagedata/flores_plus", "devtest", _flores_configs, write_flores,
            terms="a gated data set: sign in to huggingface.co, accept its terms on the data set's page, then give "
                  "this machine your token (`hf auth login`, or HF_TOKEN)"),
    Release("xlsum", "csebuetnlp/xlsum", "test", _xlsum_configs, write_xlsum),
    Release("pawsx", "google-research-datasets/paws-x", "test", lambda: _by_code(PAWSX_CONFIGS), write_pawsx),
    Release("xcopa", "cambridgeltl/xcopa", "test", lambda: _by_code(XCOPA_CONFIGS), write_xcopa),
    Release("belebele", "facebook/belebele", "test", _belebele_configs, write_belebele),
)}


def release_languages(dataset: str) -> list[str] | None:
    """Registry codes the public release of a data set covers; None when it has no public release here."""
    release = RELEASES.get(dataset)
    return sorted(release.configs()) if release else None


# --- reading the Hub (or a copy of it) -------------------------------------------------------------------------

@dataclass
class FetchReport:
    dataset: str
    folder: Path
    written: dict[str, int]  # registry code -> rows written
    missing: dict[str, str]  # registry code -> why nothing was written


def _explain(exc: BaseException, where: str, release: Release, *, remote: bool) -> str:
    """A reason a person can act on, from whatever `datasets` / `huggingface_hub` raised."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else name
    if "Gated" in name or "401" in text or "403" in text or "gated" in text.lower():
        return f"{where} refused the download ({text}); {release.terms or 'check your Hugging Face token'}"
    if name in {"OfflineModeIsEnabled"} or "offline" in text.lower():
        return (f"{where} cannot be reached: offline mode is on (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE) and the "
                f"files are not in the local cache ({text})")
    # requests, httpx and the socket layer name a missing network differently; any of these means the same.
    unreachable = ("Connect" in name or "Timeout" in name or isinstance(exc, ConnectionError | OSError | TimeoutError)
                   or any(word in text.lower() for word in ("connect", "resolve", "name or service", "network",
                                                            "couldn't reach", "temporary failure")))
    if remote and unreachable:
        return f"{where} cannot be reached from this machine, which seems to have no internet access ({name}: {text})"
    return f"{where} could not be read ({name}: {text})"


def _probe(release: Release, where: str) -> None:
    """One request, no retries: without internet `datasets` retries each file for ~25 s before it gives up."""
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise HubUnavailable(f"{where} cannot be reached: offline mode is on (HF_HUB_OFFLINE is set)")
    try:
        HfApi().dataset_info(release.hub_repo, timeout=15)
    except Exception as exc:  # noqa: BLE001 - whatever the library raised, the person gets a reason to act on
        raise HubUnavailable(_explain(exc, where, release, remote=True)) from exc


class _Reader:
    """Rows of one configuration's split, from wherever the release is: the Hub through `datasets` (repositories
    whose README names their configurations), the Hub's Parquet export (`refs/convert/parquet`: one folder per
    configuration holding `<split>/*.parquet`, the only way left to read a loading-script repository such as XL-Sum's
    now that `datasets` no longer runs scripts), or a local copy of either."""

    def __init__(self, release: Release, source: Path | None, cache: str) -> None:
        self.release, self.source, self.cache = release, source, cache
        self.where = str(source) if source is not None else f"the Hugging Face Hub ({release.hub_repo})"
        self.export: dict[str, list[str]] | None = None  # configuration -> Parquet files, in export mode

    def _fail(self, exc: BaseException, what: str = "") -> HubUnavailable:
        where = f"{self.where}, configuration {what}" if what else self.where
        return HubUnavailable(_explain(exc, where, self.release, remote=self.source is None))

    def configurations(self) -> set[str]:
        import datasets

        split = self.release.split
        if self.source is not None:
            local = {path.parent.parent.name: sorted(str(file) for file in path.parent.glob("*.parquet"))
                     for path in self.source.glob(f"*/{split}/*.parquet")}
            if local:
                self.export = local
                return set(local)
        path = str(self.source) if self.source is not None else self.release.hub_repo
        try:
            return set(datasets.get_dataset_config_names(path))
        except Exception as exc:  # noqa: BLE001 - whatever the library raised, the person gets a reason to act on
            if self.source is not None or "script" not in str(exc).lower():
                raise self._fail(exc) from exc
        try:
            from huggingface_hub import HfApi

            files = HfApi().list_repo_files(self.release.hub_repo, repo_type="dataset", revision=PARQUET_REVISION)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc) from exc
        self.export = {}
        for name in sorted(files):
            parts = name.split("/")
            if len(parts) == 3 and parts[1] == split and parts[2].endswith(".parquet"):
                self.export.setdefault(parts[0], []).append(name)
        return set(self.export)

    def rows(self, config: str) -> list[dict[str, Any]]:
        try:
            if self.export is None:
                import datasets

                path = str(self.source) if self.source is not None else self.release.hub_repo
                return list(datasets.load_dataset(path, config, split=self.release.split, cache_dir=self.cache))
            import pyarrow.parquet as pq

            files = self.export[config]
            if self.source is None:
                from huggingface_hub import hf_hub_download

                files = [hf_hub_download(self.release.hub_repo, name, repo_type="dataset", revision=PARQUET_REVISION,
                                         cache_dir=self.cache) for name in files]
            return [row for file in files for row in pq.read_table(file).to_pylist()]
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, config) from exc


def fetch_release(release: Release, dest: Path, *, languages: list[str] | None = None, source: Path | None = None,
                  cache_dir: Path | None = None, progress: Callable[[str], None] | None = None) -> FetchReport:
    """Download a release (or read `source`, a folder holding a copy of its Hub repository or of the Hub's Parquet
    export of it) and write the files of `languages` (default: every one it covers) under `dest / release.dataset`.
    Raises HubUnavailable when the Hub or the copy cannot be read; a language the release lacks is reported in
    `missing`, not raised. Each file is complete once written; a failure leaves the files written before it."""
    if source is not None and not source.is_dir():
        raise HubUnavailable(f"{source} is not a folder on this machine")
    if source is None:
        _probe(release, f"the Hugging Face Hub ({release.hub_repo})")
    import datasets

    datasets.disable_progress_bars()
    folder = dest / release.dataset
    wanted = release.configs()
    codes = list(languages or sorted(wanted))
    if release.dataset == "flores200" and "en" not in codes:
        codes.append("en")  # the pivot: both FLORES directions read eng_Latn beside the other language
    report = FetchReport(release.dataset, folder, {}, {})
    with tempfile.TemporaryDirectory(prefix="crossfeed-fetch-") as scratch:
        reader = _Reader(release, source, str(cache_dir or scratch))
        available = reader.configurations()
        for code in codes:
            config = next((name for name in wanted.get(code, ()) if name in available), None)
            if config is None:
                report.missing[code] = f"{reader.where} has no {code} configuration"
                continue
            if progress:
                progress(f"{release.dataset}: {code} ({config})")
            report.written[code] = release.write(folder, code, config, reader.rows(config))
    return report
