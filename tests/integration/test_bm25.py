"""Server-side BM25 inference: `Document`s (`{"text", "model": "qdrant/bm25", "options"}`) in
upserts, vector updates and queries become sparse vectors on the server. Local mode does not run
this model, so the vectors are checked against a reference written here: Qdrant's pipeline (word
tokens, lowercase, English stopwords, Qdrant's Snowball stemmer through `py_rust_stemmers`),
murmur3 token indices (`mmh3`) and the BM25 term-frequency formula; and, in other languages,
against Qdrant's own engine (`qdrant-edge-py`)."""

import random
import re

import mmh3
import pytest
import qdrant_edge
import stopwordsiso
from py_rust_stemmers import SnowballStemmer
from qdrant_client import models

# Qdrant's English stopwords (NLTK's list), contraction fragments included.
ENGLISH_STOPWORDS = set("""a about above after again against ain all am an and any are aren aren't as at be because been before being
below between both but by can couldn couldn't d did didn didn't do does doesn doesn't doing don don't down
during each few for from further had hadn hadn't has hasn hasn't have haven haven't having he her here hers
herself him himself his how i if in into is isn isn't it it's its itself just ll m ma me mightn mightn't more
most mustn mustn't my myself needn needn't no nor not now o of off on once only or other our ours ourselves
out over own re s same shan shan't she she's should should've shouldn shouldn't so some such t than that
that'll the their theirs them themselves then there these they this those through to too under until up ve
very was wasn wasn't we were weren weren't what when where which while who whom why will with won won't wouldn
wouldn't y you you'd you'll you're you've your yours yourself yourselves""".split())
STEM = SnowballStemmer("english").stem_word
DOCS = [
    "The quick brown fox jumps over the lazy dog; the dog sleeps.",
    "Running runners ran through running water, RUNNING fast!",
    "Vector databases store embeddings and search them quickly.",
    "Qdrant-compatible servers: sparse vectors, dense vectors, hybrid search...",
    "Café owners serve coffee and croissants to 42 hungry students",
    "It's Apple's format; don't parse S-Lang or mach-O files, won't you?",
    "",
    "and the of to",
]


def reference(text, k=1.2, b=0.75, avg_len=256.0, stem=True, stopwords=ENGLISH_STOPWORDS, query=False, prefix=None):
    """`prefix`: (min_token_len, max_token_len) of the prefix tokenizer, whose document words
    stand for their prefixes and whose query words (stopwords kept) are cut to the maximum."""
    tokens = [t.lower() for t in re.findall(r"[^\W_]+", text)]
    if prefix and query:
        low, high = prefix
        return {abs(mmh3.hash(t[:high], signed=True)): 1.0 for t in map(STEM if stem else str, tokens) if len(t) >= low}
    tokens = [t for t in tokens if t not in stopwords]
    if stem:
        tokens = [STEM(t) for t in tokens]
    if prefix:
        low, high = prefix
        tokens = [t[:n] for t in tokens if len(t) >= low for n in range(low, min(len(t), high) + 1)]
    index = lambda t: abs(mmh3.hash(t, signed=True))
    if query:
        return {index(t): 1.0 for t in tokens}
    counts = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    return {index(t): n * (k + 1) / (k * (1 - b + b * len(tokens) / avg_len) + n) for t, n in counts.items()}


def as_dict(sparse):
    return dict(zip(sparse.indices, sparse.values))


def check(got, want):
    assert sorted(got) == sorted(want)
    for i in want:
        assert got[i] == pytest.approx(want[i], rel=1e-6)


@pytest.mark.qdrant_client
def test_documents_become_bm25_vectors(node):
    client = node.client(timeout=30)
    client.create_collection("c", vectors_config={"dense": models.VectorParams(size=2, distance=models.Distance.DOT)},
                             sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    doc = lambda text, **options: {"text": text, "model": "qdrant/bm25", **({"options": options} if options else {})}
    # The list form, the batch form, and a vector update.
    r = node.put("/collections/c/points?wait=true", json={"points": [
        {"id": i, "vector": {"dense": [1, i], "bm25": doc(text)}, "payload": {"text": text}} for i, text in enumerate(DOCS[:4])]})
    assert r.status_code == 200, r.text
    r = node.put("/collections/c/points?wait=true", json={"batch": {
        "ids": [4, 5, 6, 7], "vectors": {"dense": [[1, 4], [1, 5], [1, 6], [1, 7]], "bm25": [doc(t) for t in DOCS[4:]]}}})
    assert r.status_code == 200, r.text
    stored = {p.id: as_dict(p.vector["bm25"]) for p in client.retrieve("c", list(range(8)), with_vectors=True)}
    for i, text in enumerate(DOCS):
        check(stored[i], reference(text))
    assert stored[6] == {} and stored[7] == {}
    r = node.put("/collections/c/points/vectors?wait=true", json={"points": [
        {"id": 7, "vector": {"bm25": doc("Dogs and foxes", k=2.0, b=0.0, avg_len=10)}}]})
    assert r.status_code == 200, r.text
    check(as_dict(client.retrieve("c", [7], with_vectors=True)[0].vector["bm25"]), reference("Dogs and foxes", k=2.0, b=0.0, avg_len=10))

    # Options: no stemming, custom stopwords, no language processing at all.
    for i, (options, kwargs) in enumerate([
        ({"stemmer": {"type": "none"}}, dict(stem=False)),
        ({"stopwords": {"custom": ["quick", "fox"]}}, dict(stopwords={"quick", "fox"})),
        ({"language": "none"}, dict(stem=False, stopwords=set())),
        # Languages Qdrant does not know (it is case-sensitive) turn both off too.
        ({"language": "English"}, dict(stem=False, stopwords=set())),
        ({"language": "en", "stemmer": {"type": "none"}}, dict(stem=False)),
        ({"language": "german", "stemmer": {"type": "none"}, "stopwords": {"custom": ["the"]}}, dict(stem=False, stopwords={"the"})),
        ({"tokenizer": "prefix"}, dict(prefix=(1, 10**9))),
        ({"tokenizer": "prefix", "min_token_len": 2, "max_token_len": 4}, dict(prefix=(2, 4))),
    ]):
        r = node.put("/collections/c/points?wait=true", json={"points": [{"id": 100 + i, "vector": {"bm25": doc(DOCS[0], **options)}}]})
        assert r.status_code == 200, r.text
        check(as_dict(client.retrieve("c", [100 + i], with_vectors=True)[0].vector["bm25"]), reference(DOCS[0], **kwargs))

    # A query Document is the query embedding: the same answer as the reference query vector.
    for text in ("running dogs", "sparse vector search", "coffee for students"):
        want = reference(text, query=True)
        expected = client.query_points("c", query=models.SparseVector(indices=list(want), values=list(want.values())), using="bm25", limit=5).points
        got = client.query_points("c", query=models.Document(text=text, model="qdrant/bm25"), using="bm25", limit=5).points
        assert [(p.id, p.score) for p in got] == [(p.id, p.score) for p in expected] and got
    # The prefix tokenizer's query: whole words (stopwords kept) cut to `max_token_len`.
    for text in ("quick jumping", "the lazy dogs"):
        options = {"tokenizer": "prefix", "max_token_len": 4}
        want = reference(text, query=True, prefix=(1, 4))
        expected = client.query_points("c", query=models.SparseVector(indices=list(want), values=list(want.values())), using="bm25", limit=5).points
        got = client.query_points("c", query=models.Document(text=text, model="qdrant/bm25", options=options), using="bm25", limit=5).points
        assert [(p.id, p.score) for p in got] == [(p.id, p.score) for p in expected] and got
    top = client.query_points("c", query=models.Document(text="runner running", model="qdrant/bm25"), using="bm25", limit=1).points
    assert top[0].id == 1
    # In a hybrid query: a BM25 prefetch fused with a dense one.
    r = node.post("/collections/c/points/query", json={"prefetch": [
        {"query": {"text": "lazy dog", "model": "qdrant/bm25"}, "using": "bm25", "limit": 5},
        {"query": [1, 0], "using": "dense", "limit": 5}], "query": {"fusion": "rrf"}, "limit": 3})
    assert r.status_code == 200 and r.json()["result"]["points"][0]["id"] == 0, r.text

    # Other models, images, bad options: a 400 naming them.
    r = node.put("/collections/c/points", json={"points": [{"id": 9, "vector": {"bm25": {"text": "x", "model": "sentence-transformers/all-minilm-l6-v2"}}}]})
    assert r.status_code == 400 and "sentence-transformers/all-minilm-l6-v2" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query", json={"query": {"image": "http://x/y.png", "model": "clip"}, "using": "bm25"})
    assert r.status_code == 400 and "image" in r.json()["status"]["error"]
    r = node.put("/collections/c/points", json={"points": [{"id": 9, "vector": {"bm25": doc("x", b=2)}}]})
    assert r.status_code == 400 and "b must be" in r.json()["status"]["error"]
    r = node.put("/collections/c/points", json={"points": [{"id": 9, "vector": {"bm25": doc("x", language="tajik")}}]})
    assert r.status_code == 400 and "tajik" in r.json()["status"]["error"]


# Sentences with inflected words, per language Quiver has stopwords and a stemmer for.
SENTENCES = {
    "english": ["The children were running through the gardens, laughing loudly.", "Databases store vectors; searches find the nearest ones."],
    "german": ["Die Kinder spielten gestern in den grünen Gärten ihrer Großeltern.", "Wir haben unsere Häuser verkauft, dass sie schöner werden."],
    "french": ["Les enfants mangeaient des pommes dans les jardins de leurs grands-parents.", "Nous avons cherché les vecteurs les plus proches."],
    "spanish": ["Los niños estaban jugando en los jardines mientras sus padres trabajaban.", "Hemos sentido que las búsquedas rápidas son necesarias."],
    "italian": ["I bambini giocavano nei giardini mentre i genitori lavoravano.", "Abbiamo trovato le soluzioni più semplici."],
    "dutch": ["De kinderen speelden in de tuinen terwijl hun ouders werkten.", "Wij hebben de dichtstbijzijnde vectoren gevonden."],
    "swedish": ["Barnen lekte i trädgårdarna medan deras föräldrar arbetade.", "Vi har hittat de närmaste vektorerna."],
    "norwegian": ["Barna lekte i hagene mens foreldrene deres arbeidet.", "Vi har funnet de nærmeste vektorene."],
    "danish": ["Børnene legede i haverne, mens deres forældre arbejdede.", "Vi har fundet de nærmeste vektorer."],
    "finnish": ["Lapset leikkivät puutarhoissa, kun heidän vanhempansa työskentelivät.", "Olemme löytäneet lähimmät vektorit."],
    "russian": ["Дети играли в садах, пока их родители работали.", "Мы нашли ближайшие векторы ещё вчера, её книгами."],
}
ISO = {"english": "en", "german": "de", "french": "fr", "spanish": "es", "italian": "it", "dutch": "nl", "swedish": "sv",
       "norwegian": "no", "danish": "da", "finnish": "fi", "russian": "ru"}


def usable(language, word):
    """Words on which Qdrant's older Snowball stemmers and Quiver's agree (see README): French
    words ending in ë or beginning with ï and Finnish words with å differ."""
    return not (language == "french" and (word.endswith("ë") or word.startswith("ï"))) and not (language == "finnish" and "å" in word)


@pytest.mark.qdrant_client
def test_bm25_in_other_languages_agrees_with_qdrants_engine(node):
    """Documents and queries in each language Quiver has stopwords and a stemmer for (by name and
    by code) give the vectors Qdrant's engine gives; every candidate word (the language's words
    in stopwords-iso, and the sentences') is a stopword on both sides or on neither."""
    client = node.client(timeout=60)
    client.create_collection("c", vectors_config={}, sparse_vectors_config={"bm25": models.SparseVectorParams()})
    rng = random.Random(71)
    next_id = 0
    for language, sentences in SENTENCES.items():
        vocabulary = sorted({w for w in stopwordsiso.stopwords(ISO[language]) | {w.lower() for t in sentences for w in re.findall(r"[^\W_]+", t)}
                             if re.fullmatch(r"[^\W_]+", w) and usable(language, w)})
        docs = sentences + [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 40))) for _ in range(40)] + vocabulary
        for name in (language, ISO[language]):
            edge = qdrant_edge.Bm25(qdrant_edge.Bm25Config(language=name))
            ids = list(range(next_id, next_id + len(docs)))
            next_id += len(docs)
            for start in range(0, len(docs), 500):
                r = node.put("/collections/c/points?wait=true", json={"points": [
                    {"id": i, "vector": {"bm25": {"text": t, "model": "qdrant/bm25", "options": {"language": name}}}}
                    for i, t in zip(ids[start:start + 500], docs[start:start + 500])]}, timeout=60)
                assert r.status_code == 200, r.text
            stored = {p.id: p.vector.get("bm25") for p in client.retrieve("c", ids, with_vectors=True)}
            for i, text in zip(ids, docs):
                want = edge.embed_document(text)
                got = stored[i]
                assert sorted(zip(got.indices, got.values)) == [(a, pytest.approx(b, rel=1e-6)) for a, b in sorted(zip(want.indices, want.values))], (name, text)
            # A query: the server's inference finds what Qdrant's query vector finds.
            for text in sentences + [docs[len(sentences)]]:
                want = edge.embed_query(text)
                expected = client.query_points("c", query=models.SparseVector(indices=list(want.indices), values=list(want.values)),
                                               using="bm25", limit=10).points
                got = client.query_points("c", query=models.Document(text=text, model="qdrant/bm25", options={"language": name}),
                                          using="bm25", limit=10).points
                assert [(p.id, p.score) for p in got] == [(p.id, p.score) for p in expected] and got, (name, text)
    # The prefix tokenizer, against Qdrant's engine too (words of Latin, Cyrillic and Devanagari
    # script, a combining accent written apart).
    texts = SENTENCES["german"] + SENTENCES["russian"] + ["किताबें पढ़ना", "cafe\u0301s and the theory of everything"]
    for limits in ({}, {"min_token_len": 2, "max_token_len": 4}):
        edge = qdrant_edge.Bm25(qdrant_edge.Bm25Config(language="english", tokenizer=qdrant_edge.TokenizerType.Prefix, **limits))
        options = {"language": "english", "tokenizer": "prefix", **limits}
        ids = list(range(next_id, next_id + len(texts)))
        next_id += len(texts)
        r = node.put("/collections/c/points?wait=true", json={"points": [
            {"id": i, "vector": {"bm25": {"text": t, "model": "qdrant/bm25", "options": options}}} for i, t in zip(ids, texts)]})
        assert r.status_code == 200, r.text
        stored = {p.id: p.vector.get("bm25") for p in client.retrieve("c", ids, with_vectors=True)}
        for i, text in zip(ids, texts):
            want = edge.embed_document(text)
            assert sorted(zip(stored[i].indices, stored[i].values)) == [(a, pytest.approx(b, rel=1e-6)) for a, b in sorted(zip(want.indices, want.values))], (limits, text)
            want = edge.embed_query(text)
            expected = client.query_points("c", query=models.SparseVector(indices=list(want.indices), values=list(want.values)), using="bm25", limit=10).points
            got = client.query_points("c", query=models.Document(text=text, model="qdrant/bm25", options=options), using="bm25", limit=10).points
            assert [(p.id, p.score) for p in got] == [(p.id, p.score) for p in expected] and got, (limits, text)
    # Languages Qdrant knows and Quiver has no stopword list or stemmer for are a 400 naming them,
    # unless both are given.
    for language in ("romanian", "jp", "armenian"):
        r = node.put("/collections/c/points", json={"points": [{"id": 0, "vector": {"bm25": {"text": "x", "model": "qdrant/bm25", "options": {"language": language}}}}]})
        assert r.status_code == 400 and "not available" in r.json()["status"]["error"], r.text
    options = {"language": "romanian", "stopwords": {"custom": []}, "stemmer": {"type": "snowball", "language": "romanian"}}
    r = node.put("/collections/c/points?wait=true", json={"points": [{"id": 0, "vector": {"bm25": {"text": "copiii se jucau", "model": "qdrant/bm25", "options": options}}}]})
    assert r.status_code == 200, r.text
    stem = SnowballStemmer("romanian").stem_word
    tokens = [stem(w) for w in ("copiii", "se", "jucau")]
    want = {abs(mmh3.hash(t, signed=True)): 2.2 / (1.2 * (0.25 + 0.75 * 3 / 256) + 1) for t in tokens}
    check(as_dict(client.retrieve("c", [0], with_vectors=True)[0].vector["bm25"]), want)
